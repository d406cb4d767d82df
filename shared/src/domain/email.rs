use super::FieldError;
use email_address::{EmailAddress, Options};

/// A lead's email address: trimmed, lower-cased, syntactically valid, at most 254 characters.
///
/// Lower-casing the whole address (not just the domain) is what makes the unique index in
/// Postgres mean "one lead per person": CRMs treat `John@X.com` and `john@x.com` as the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

const MAX_LEN: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalized = raw.trim().to_lowercase();
        if normalized.is_empty() {
            return Err(FieldError::new("email", "required", "email is required"));
        }
        if normalized.chars().count() > MAX_LEN {
            return Err(FieldError::new(
                "email",
                "too_long",
                format!("email must be at most {MAX_LEN} characters"),
            ));
        }
        let options = Options::default()
            .with_required_tld()
            .without_domain_literal()
            .without_display_text();
        if EmailAddress::parse_with_options(&normalized, options).is_err() {
            return Err(FieldError::new(
                "email",
                "invalid_email",
                "email is not a valid address",
            ));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The normalized text, moved out (no copy) into the stored lead.
impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(
            Email::parse("  John.Doe@Example.COM ").unwrap().as_str(),
            "john.doe@example.com"
        );
    }

    #[test]
    fn accepts_plus_addressing_and_subdomains() {
        assert!(Email::parse("a+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "john@",
            "john@@x.com",
            "john doe@x.com",
            "john@localhost",
            "john@[127.0.0.1]",
            "John <john@x.com>",
        ] {
            let err = Email::parse(bad).expect_err(bad);
            assert_eq!(err.field, "email");
        }
    }

    #[test]
    fn required_code_for_blank() {
        assert_eq!(Email::parse("  ").unwrap_err().code, "required");
    }

    #[test]
    fn rejects_over_254_chars() {
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert!(long.len() > 254);
        assert_eq!(Email::parse(&long).unwrap_err().code, "too_long");
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
            match Email::parse(&raw) {
                Ok(email) => {
                    prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                    prop_assert_eq!(email.as_str(), email.as_str().trim().to_lowercase());
                    prop_assert!(email.as_str().chars().count() <= MAX_LEN);
                }
                Err(e) => {
                    prop_assert_eq!(e.field, "email");
                    prop_assert!(!e.message.is_empty() && !e.code.is_empty());
                }
            }
        }

        #[test]
        fn case_and_surrounding_space_do_not_matter(
            local in "[a-z0-9._+-]{1,16}",
            domain in "[a-z0-9]{1,10}\\.[a-z]{2,4}",
            pad in "[ \t]{0,3}",
        ) {
            let raw = format!("{local}@{domain}");
            let upper = format!("{pad}{}{pad}", raw.to_uppercase());
            prop_assert_eq!(Email::parse(&raw).ok(), Email::parse(&upper).ok());
        }
    }
}
