use std::fmt;

/// The client's name for one import job.
///
/// It becomes part of Redis keys (`import:job:{id}`) and URLs, so only 1 to 128 characters of
/// `[A-Za-z0-9._:-]`, starting with a letter or digit, are allowed: nothing else can reach a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImportId(String);

const MAX_LEN: usize = 128;

impl ImportId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let Some(first) = raw.chars().next() else {
            return Err("importId must not be empty".into());
        };
        if raw.len() > MAX_LEN {
            return Err(format!("importId must be at most {MAX_LEN} characters"));
        }
        if !first.is_ascii_alphanumeric() {
            return Err("importId must start with a letter or a digit".into());
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
        {
            return Err("importId may contain only letters, digits and . _ : -".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// A fresh, time-ordered id for a request that did not bring one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_charset() {
        for ok in [
            "unique-import-id",
            "a",
            "2024.01.01_batch:7",
            &"x".repeat(128),
        ] {
            assert_eq!(ImportId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_what_could_reach_another_key() {
        for bad in [
            "",
            "-leading",
            ".x",
            "a b",
            "a*",
            "a{b}",
            "import/1",
            "é",
            &"x".repeat(129),
            "a\n",
        ] {
            assert!(ImportId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn generated_ids_parse() {
        let id = ImportId::generate();
        assert_eq!(ImportId::parse(id.as_str()).unwrap(), id);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::strategies::text;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn only_the_charset_passes_and_parsing_is_idempotent(raw in text()) {
            match ImportId::parse(&raw) {
                Ok(id) => {
                    prop_assert_eq!(ImportId::parse(id.as_str()), Ok(id.clone()));
                    prop_assert!((1..=MAX_LEN).contains(&id.as_str().len()));
                    prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b)));
                }
                Err(message) => prop_assert!(!message.is_empty()),
            }
        }

        #[test]
        fn every_id_in_the_charset_passes(id in "[A-Za-z0-9][A-Za-z0-9._:-]{0,127}") {
            prop_assert_eq!(ImportId::parse(&id).map(|p| p.as_str().to_owned()), Ok(id));
        }
    }
}
