use super::{FieldError, plain_text};

/// Who asked for the import (a user id of the calling CRM), stored with every lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedBy(String);

pub(super) const MAX_LEN: usize = 128;

impl CreatedBy {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        plain_text(raw, "createdBy", MAX_LEN).map(|text| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_an_object_id_and_trims() {
        assert_eq!(
            CreatedBy::parse(" 507f1f77bcf86cd799439011 ")
                .unwrap()
                .as_str(),
            "507f1f77bcf86cd799439011"
        );
    }

    #[test]
    fn refuses_blank_long_and_control() {
        assert_eq!(CreatedBy::parse("").unwrap_err().code, "required");
        assert_eq!(
            CreatedBy::parse(&"u".repeat(129)).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            CreatedBy::parse("a\u{7}").unwrap_err().code,
            "control_character"
        );
    }
}
