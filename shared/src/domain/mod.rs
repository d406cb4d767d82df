//! The lead domain: every field of a lead as a type that can only hold a valid value.
//!
//! Each type has a `parse` constructor that normalizes and checks its input once; code past the
//! parser never re-checks. A rejection is a [`FieldError`] that names the field, a stable code
//! for machines, and a sentence for people.

pub mod attributes;
mod created_by;
mod email;
mod full_name;
mod import_id;
pub(crate) mod json_text;
mod lead;
mod lead_source;
mod lead_status;
mod on_existing;
mod phone;

pub use attributes::Attributes;
pub use created_by::CreatedBy;
pub use email::Email;
pub use full_name::FullName;
pub use import_id::ImportId;
pub use lead::{Lead, LeadInput};
pub use lead_source::LeadSource;
pub use lead_status::LeadStatus;
pub use on_existing::OnExisting;
pub use phone::Phone;

/// Why one field of one lead was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The request's name of the field (`email`, `fullName`, ...).
    pub field: &'static str,
    /// Stable, machine-readable reason (`invalid_email`, `too_long`, ...).
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

/// Declares a closed set of upper-case values, parsed case-insensitively with a default when
/// the field is absent. Lead status and source are both of this shape.
macro_rules! closed_set {
    ($(#[$meta:meta])* $name:ident, field = $field:literal, default = $default:ident, [$($variant:ident),+ $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(clippy::upper_case_acronyms, non_camel_case_types)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// `None` (field absent or null) gives the default; text matches case-insensitively.
            pub fn parse(raw: Option<&str>) -> Result<Self, $crate::domain::FieldError> {
                let Some(raw) = raw else { return Ok($name::$default) };
                let wanted = raw.trim();
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(wanted)).ok_or_else(|| {
                    let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    $crate::domain::FieldError::new(
                        $field,
                        concat!("invalid_", $field),
                        format!(concat!($field, " must be one of {}"), allowed.join(", ")),
                    )
                })
            }

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),+ }
            }
        }

        // Every closed set gets the same properties: no input panics, a parsed value parses
        // back to itself, a refusal names the field, and any case or padding of a value works.
        #[cfg(test)]
        mod properties {
            use super::*;
            use crate::domain::strategies::text;
            use proptest::prelude::*;

            proptest! {
                #[test]
                fn never_panics_and_normalization_is_idempotent(raw in text()) {
                    match $name::parse(Some(&raw)) {
                        Ok(value) => prop_assert_eq!($name::parse(Some(value.as_str())), Ok(value)),
                        Err(e) => {
                            prop_assert_eq!(e.field, $field);
                            prop_assert!(!e.message.is_empty());
                        }
                    }
                }

                #[test]
                fn any_case_and_padding_of_a_value_parses_to_it(
                    value in prop::sample::select($name::ALL),
                    upper in prop::collection::vec(any::<bool>(), 16),
                    pad in "[ \t]{0,2}",
                ) {
                    let typed: String = value
                        .as_str()
                        .chars()
                        .zip(upper.iter().cycle())
                        .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                        .collect();
                    prop_assert_eq!($name::parse(Some(&format!("{pad}{typed}{pad}"))), Ok(value));
                }
            }
        }
    };
}
pub(crate) use closed_set;

/// The rule shared by names and identifiers: trimmed, 1 to `max_chars` characters (not
/// bytes), no control characters (C0, DEL, C1). Returns the trimmed text.
pub(crate) fn plain_text<'a>(
    raw: &'a str,
    field: &'static str,
    max_chars: usize,
) -> Result<&'a str, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(
            field,
            "required",
            format!("{field} is required"),
        ));
    }
    if trimmed.chars().count() > max_chars {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {max_chars} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "control_character",
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed)
}

// The same properties for every field of this shape, through each type's own constructor.
#[cfg(test)]
mod plain_text_properties {
    use super::*;
    use proptest::prelude::*;

    type Parse = fn(&str) -> Result<String, FieldError>;
    const FIELDS: [(&str, usize, Parse); 2] = [
        ("fullName", full_name::MAX_CHARS, |raw| {
            FullName::parse(raw).map(String::from)
        }),
        ("createdBy", created_by::MAX_LEN, |raw| {
            CreatedBy::parse(raw).map(|by| by.as_str().to_owned())
        }),
    ];

    proptest! {
        #[test]
        fn never_panics_and_normalization_is_idempotent(raw in strategies::text()) {
            for (field, max_chars, parse) in FIELDS {
                match parse(&raw) {
                    Ok(text) => {
                        prop_assert_eq!(parse(&text), Ok(text.clone()));
                        prop_assert_eq!(text.as_str(), text.trim());
                        prop_assert!(!text.is_empty() && text.chars().count() <= max_chars);
                        prop_assert!(!text.chars().any(char::is_control));
                    }
                    Err(e) => {
                        prop_assert_eq!(e.field, field);
                        prop_assert!(!e.message.is_empty());
                    }
                }
            }
        }
    }
}

/// Property-test strategies shared by the domain's and the request parser's proptests.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;
    use serde_json::Value;

    /// Any JSON value, nested a few levels, with text that is often near a valid field.
    pub(crate) fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    /// Keys that are often the request's own.
    pub(crate) fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "importId",
                "createdBy",
                "leads",
                "fullName",
                "email",
                "phone",
                "status",
                "source",
                "attributes",
            ])
            .prop_map(str::to_owned),
            any::<String>(),
        ]
    }

    /// Text: anything, or something shaped like a field value.
    pub(crate) fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ \t]{0,2}[A-Za-z0-9._%+-]{1,12}@[A-Za-z0-9-]{1,8}\\.[A-Za-z]{2,5}[ \t]{0,2}",
            "[ ]?\\+?[0-9 ().-]{5,20}",
            "[ ]?[A-Za-z][A-Za-z ,.'-]{0,30}",
            "(?i)(new|contacted|qualified|lost|website|cold_call|other|referral)",
            "[A-Za-z0-9][A-Za-z0-9._:-]{0,20}",
        ]
    }
}
