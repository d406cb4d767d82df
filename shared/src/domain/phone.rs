use super::FieldError;

/// A phone number in E.164: `+`, then 7 to 15 digits, the first not zero.
///
/// Spaces, dashes, dots and parentheses are stripped first, as people type them. A number
/// without its country code (no leading `+`) is refused rather than guessed: the importer cannot
/// know which country a bare `020 7946 0018` belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let compact: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let Some(digits) = compact.strip_prefix('+') else {
            return Err(FieldError::new(
                "phone",
                "invalid_phone",
                "phone must be in international format, starting with + and the country code",
            ));
        };
        let valid = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !valid {
            return Err(FieldError::new(
                "phone",
                "invalid_phone",
                "phone must be + followed by 7 to 15 digits (E.164)",
            ));
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The normalized text, moved out (no copy) into the stored lead.
impl From<Phone> for String {
    fn from(value: Phone) -> String {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_common_punctuation() {
        assert_eq!(
            Phone::parse(" +1 (234) 567-890 ").unwrap().as_str(),
            "+1234567890"
        );
        assert_eq!(
            Phone::parse("+44.20.7946.0018").unwrap().as_str(),
            "+442079460018"
        );
    }

    #[test]
    fn length_bounds() {
        assert!(Phone::parse("+1234567").is_ok());
        assert!(Phone::parse("+123456").is_err());
        assert!(Phone::parse("+123456789012345").is_ok());
        assert!(Phone::parse("+1234567890123456").is_err());
    }

    #[test]
    fn refuses_numbers_without_country_code_or_with_letters() {
        for bad in [
            "1234567890",
            "020 7946 0018",
            "+0123456789",
            "+1234ABC890",
            "++1234567890",
            "+",
        ] {
            assert_eq!(
                Phone::parse(bad).unwrap_err().code,
                "invalid_phone",
                "{bad}"
            );
        }
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
            match Phone::parse(&raw) {
                Ok(phone) => {
                    prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
                    let digits = phone.as_str().strip_prefix('+').unwrap();
                    prop_assert!((7..=15).contains(&digits.len()));
                    prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
                }
                Err(e) => {
                    prop_assert_eq!(e.field, "phone");
                    prop_assert!(!e.message.is_empty());
                }
            }
        }

        #[test]
        fn punctuation_is_stripped(digits in "[1-9][0-9]{6,14}", seps in prop::collection::vec("[ .()-]{0,2}", 15)) {
            let mut typed = String::from("+");
            for (d, sep) in digits.chars().zip(seps.iter()) {
                typed.push(d);
                typed.push_str(sep);
            }
            let phone = Phone::parse(&typed).unwrap();
            prop_assert_eq!(phone.as_str(), format!("+{digits}"));
        }
    }
}
