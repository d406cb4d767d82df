use super::{FieldError, plain_text};

/// A lead's name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

pub(super) const MAX_CHARS: usize = 200;

impl FullName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        plain_text(raw, "fullName", MAX_CHARS).map(|text| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The normalized text, moved out (no copy) into the stored lead.
impl From<FullName> for String {
    fn from(value: FullName) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims() {
        assert_eq!(
            FullName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(FullName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            FullName::parse(&"é".repeat(201)).unwrap_err().code,
            "too_long"
        );
    }

    #[test]
    fn rejects_blank_and_control_characters() {
        assert_eq!(FullName::parse(" \t ").unwrap_err().code, "required");
        assert_eq!(
            FullName::parse("Ada\u{0}Lovelace").unwrap_err().code,
            "control_character"
        );
        assert_eq!(
            FullName::parse("Ada\nLovelace").unwrap_err().code,
            "control_character"
        );
    }
}
