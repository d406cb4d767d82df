use super::closed_set;

closed_set!(
    /// Where a lead stands in the sales funnel; `NEW` when the import does not say.
    LeadStatus, field = "status", default = NEW,
    [NEW, CONTACTED, QUALIFIED, UNQUALIFIED, CONVERTED, LOST]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_new_and_ignores_case() {
        assert_eq!(LeadStatus::parse(None).unwrap(), LeadStatus::NEW);
        assert_eq!(
            LeadStatus::parse(Some(" qualified ")).unwrap(),
            LeadStatus::QUALIFIED
        );
    }

    #[test]
    fn names_the_allowed_values_when_refusing() {
        let err = LeadStatus::parse(Some("HOT")).unwrap_err();
        assert_eq!((err.field, err.code), ("status", "invalid_status"));
        assert!(
            err.message
                .contains("NEW, CONTACTED, QUALIFIED, UNQUALIFIED, CONVERTED, LOST")
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::strategies::text;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_and_normalization_is_idempotent(raw in text()) {
            match LeadStatus::parse(Some(&raw)) {
                Ok(value) => prop_assert_eq!(LeadStatus::parse(Some(value.as_str())), Ok(value)),
                Err(e) => {
                    prop_assert_eq!(e.field, "status");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }

        #[test]
        fn any_case_and_padding_of_a_value_parses_to_it(
            value in prop::sample::select(LeadStatus::ALL),
            upper in prop::collection::vec(any::<bool>(), 16),
            pad in "[ \t]{0,2}",
        ) {
            let typed: String = value
                .as_str()
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            prop_assert_eq!(LeadStatus::parse(Some(&format!("{pad}{typed}{pad}"))), Ok(value));
        }
    }
}
