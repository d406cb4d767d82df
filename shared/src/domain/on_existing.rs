/// What an import does with a lead whose email the `leads` table already holds
/// (`onExisting`). Chosen per import, carried by each of its stream entries, applied by the
/// drain in the transaction that claims the entry (docs/design.md, "Leads that already exist").
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OnExisting {
    /// The lead fails with `email_exists`: the seed's behaviour.
    #[default]
    Fail,
    /// The lead is counted as skipped; the stored one is left as it is.
    Skip,
    /// The stored lead takes the import's name, phone, status, source and attributes (unless a
    /// later-accepted import wrote it already); its `createdBy` and `importId` stay.
    Update,
}

impl OnExisting {
    pub const ALL: [OnExisting; 3] = [OnExisting::Fail, OnExisting::Skip, OnExisting::Update];

    /// `fail`, `skip` or `update`, in any case; `Err` is the sentence a `400` shows.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| "onExisting must be fail, skip or update".to_owned())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OnExisting::Fail => "fail",
            OnExisting::Skip => "skip",
            OnExisting::Update => "update",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_parses_back_from_its_name_in_any_case() {
        for mode in OnExisting::ALL {
            assert_eq!(OnExisting::parse(mode.as_str()), Ok(mode));
            assert_eq!(OnExisting::parse(&mode.as_str().to_uppercase()), Ok(mode));
        }
        assert_eq!(OnExisting::default(), OnExisting::Fail);
    }

    #[test]
    fn documents_name_it_as_parse_reads_it() {
        for mode in OnExisting::ALL {
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{}\"", mode.as_str()));
            assert_eq!(serde_json::from_str::<OnExisting>(&json).unwrap(), mode);
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_allowed_values() {
        for raw in ["", "replace", "upsert", "fail,skip"] {
            assert_eq!(
                OnExisting::parse(raw),
                Err("onExisting must be fail, skip or update".to_owned())
            );
        }
    }
}
