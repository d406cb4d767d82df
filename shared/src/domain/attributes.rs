/// A lead's custom attributes: what an import carries beyond the lead's fields (a CSV's
/// unmapped columns, a JSON lead's `attributes` object), kept as text in the `leads` table's
/// `attributes` jsonb column rather than dropped.
///
/// Bounded so that one lead cannot make a row, a stream entry or a status document large:
/// at most [`MAX_COUNT`] attributes, names of at most [`MAX_NAME_CHARS`] characters, values of
/// at most [`MAX_VALUE_CHARS`], and [`MAX_TOTAL_BYTES`] of names and values together. Blank
/// values are no attribute (an empty spreadsheet cell says nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(std::collections::BTreeMap<String, String>);

pub const MAX_COUNT: usize = 50;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_VALUE_CHARS: usize = 1_000;
pub const MAX_TOTAL_BYTES: usize = 8 * 1024;

use super::FieldError;

impl Attributes {
    /// Judges name/value pairs: names trimmed and 1 to [`MAX_NAME_CHARS`] characters, each
    /// at most once; values trimmed, blank ones dropped; no control characters in names (a
    /// value may hold a newline, as a quoted CSV cell can).
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FieldError> {
        let mut attributes = std::collections::BTreeMap::new();
        let mut total = 0;
        for (name, value) in pairs {
            let (name, value) = (name.trim(), value.trim());
            if value.is_empty() {
                continue;
            }
            let refuse = |code, message: String| Err(FieldError::new("attributes", code, message));
            if name.is_empty() || name.chars().any(char::is_control) {
                return refuse(
                    "invalid_attribute",
                    "an attribute's name must be text without control characters".into(),
                );
            }
            if name.chars().count() > MAX_NAME_CHARS {
                return refuse(
                    "invalid_attribute",
                    format!("an attribute's name must be at most {MAX_NAME_CHARS} characters"),
                );
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                return refuse(
                    "attribute_too_long",
                    format!("attribute {name:?} must be at most {MAX_VALUE_CHARS} characters"),
                );
            }
            total += name.len() + value.len();
            if attributes
                .insert(name.to_owned(), value.to_owned())
                .is_some()
            {
                return refuse(
                    "duplicate_attribute",
                    format!("attribute {name:?} appears more than once"),
                );
            }
            if attributes.len() > MAX_COUNT {
                return refuse(
                    "too_many_attributes",
                    format!("a lead may have at most {MAX_COUNT} attributes"),
                );
            }
            if total > MAX_TOTAL_BYTES {
                return refuse(
                    "attributes_too_large",
                    format!("a lead's attributes may hold at most {MAX_TOTAL_BYTES} bytes"),
                );
            }
        }
        Ok(Attributes(attributes))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Name and value pairs, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The attributes as the JSON object they are stored as.
    pub fn as_map(&self) -> &std::collections::BTreeMap<String, String> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_and_blank_ones_dropped() {
        let attributes = Attributes::parse([
            ("Company", " Acme, Inc. "),
            ("Notes", "  "),
            (" Tier ", "2"),
        ])
        .unwrap();
        assert_eq!(
            attributes.iter().collect::<Vec<_>>(),
            [("Company", "Acme, Inc."), ("Tier", "2")]
        );
        assert!(Attributes::parse([("Notes", "")]).unwrap().is_empty());
    }

    #[test]
    fn every_bound_is_a_reason_naming_the_attribute() {
        let code = |pairs: Vec<(String, String)>| {
            Attributes::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .unwrap_err()
                .code
        };
        let long = "x".repeat(MAX_VALUE_CHARS + 1);
        assert_eq!(code(vec![("Notes".into(), long)]), "attribute_too_long");
        let many = (0..=MAX_COUNT)
            .map(|i| (format!("c{i}"), "v".into()))
            .collect();
        assert_eq!(code(many), "too_many_attributes");
        let big = (0..10)
            .map(|i| (format!("c{i}"), "v".repeat(900)))
            .collect();
        assert_eq!(code(big), "attributes_too_large");
        assert_eq!(
            code(vec![("A".into(), "1".into()), ("A".into(), "2".into())]),
            "duplicate_attribute"
        );
        assert_eq!(code(vec![("".into(), "1".into())]), "invalid_attribute");
        assert_eq!(
            code(vec![("a\u{7}".into(), "1".into())]),
            "invalid_attribute"
        );
        let err = Attributes::parse([("Notes", long_value().as_str())]).unwrap_err();
        assert_eq!(err.field, "attributes");
        assert!(err.message.contains("\"Notes\""), "{}", err.message);
    }

    fn long_value() -> String {
        "y".repeat(MAX_VALUE_CHARS + 1)
    }

    #[test]
    fn multibyte_values_are_bounded_in_characters() {
        let value = "é".repeat(MAX_VALUE_CHARS);
        assert!(Attributes::parse([("Name", value.as_str())]).is_ok());
    }
}
