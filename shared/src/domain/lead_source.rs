use super::closed_set;

closed_set!(
    /// Where a lead came from; `OTHER` when the import does not say.
    LeadSource, field = "source", default = OTHER,
    [WEBSITE, REFERRAL, SOCIAL, EMAIL, EVENT, ADVERTISEMENT, PARTNER, COLD_CALL, OTHER]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_other_and_ignores_case() {
        assert_eq!(LeadSource::parse(None).unwrap(), LeadSource::OTHER);
        assert_eq!(
            LeadSource::parse(Some("cold_call")).unwrap(),
            LeadSource::COLD_CALL
        );
        assert_eq!(LeadSource::COLD_CALL.as_str(), "COLD_CALL");
    }

    #[test]
    fn refuses_unknown_sources() {
        assert_eq!(
            LeadSource::parse(Some("TV")).unwrap_err().code,
            "invalid_source"
        );
        assert!(LeadSource::parse(Some("")).is_err());
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
            match LeadSource::parse(Some(&raw)) {
                Ok(value) => prop_assert_eq!(LeadSource::parse(Some(value.as_str())), Ok(value)),
                Err(e) => {
                    prop_assert_eq!(e.field, "source");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }

        #[test]
        fn any_case_and_padding_of_a_value_parses_to_it(
            value in prop::sample::select(LeadSource::ALL),
            upper in prop::collection::vec(any::<bool>(), 16),
            pad in "[ \t]{0,2}",
        ) {
            let typed: String = value
                .as_str()
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect();
            prop_assert_eq!(LeadSource::parse(Some(&format!("{pad}{typed}{pad}"))), Ok(value));
        }
    }
}
