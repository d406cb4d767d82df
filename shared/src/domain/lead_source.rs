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
