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
