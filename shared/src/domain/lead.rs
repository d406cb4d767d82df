use super::json_text::JsonText;
use super::{Email, FieldError, FullName, LeadSource, LeadStatus, Phone};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// One lead exactly as the request carried it, before any rule is applied.
///
/// Deserializing never fails on the *content* of a lead: a number where a string belongs, a
/// repeated key or a lead that is not an object are kept as facts here and become that lead's
/// failure reason in [`Lead::parse`], so one bad row never rejects the whole import.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LeadInput {
    full_name: JsonText,
    email: JsonText,
    phone: JsonText,
    status: JsonText,
    source: JsonText,
    shape_error: Option<FieldError>,
}

/// A lead that passed every rule, normalized for storage: each field is its parsed type, all
/// the way to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub full_name: FullName,
    pub email: Email,
    pub phone: Option<Phone>,
    pub status: LeadStatus,
    pub source: LeadSource,
}

impl Lead {
    /// Applies the rules field by field and reports the first field that fails.
    pub fn parse(input: &LeadInput) -> Result<Lead, FieldError> {
        if let Some(err) = &input.shape_error {
            return Err(err.clone());
        }
        Lead::from_fields(
            input.full_name.required("fullName")?,
            input.email.required("email")?,
            input.phone.optional("phone")?,
            input.status.optional("status")?,
            input.source.optional("source")?,
        )
    }

    /// Applies the rules to the fields as text: the one constructor behind [`Lead::parse`] and
    /// behind decoding a lead read back from the stream. A blank phone is no phone.
    pub fn from_fields(
        full_name: &str,
        email: &str,
        phone: Option<&str>,
        status: Option<&str>,
        source: Option<&str>,
    ) -> Result<Lead, FieldError> {
        Ok(Lead {
            full_name: FullName::parse(full_name)?,
            email: Email::parse(email)?,
            phone: match phone {
                Some(raw) if !raw.trim().is_empty() => Some(Phone::parse(raw)?),
                _ => None,
            },
            status: LeadStatus::parse(status)?,
            source: LeadSource::parse(source)?,
        })
    }
}

impl<'de> Deserialize<'de> for LeadInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LeadVisitor;
        impl<'de> Visitor<'de> for LeadVisitor {
            type Value = LeadInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a lead object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeadInput, A::Error> {
                let mut lead = LeadInput::default();
                let mut seen = [false; 5];
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let (slot, name) = match key.as_ref() {
                        "fullName" => (0, "fullName"),
                        "email" => (1, "email"),
                        "phone" => (2, "phone"),
                        "status" => (3, "status"),
                        "source" => (4, "source"),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    let value = map.next_value::<JsonText>()?;
                    if std::mem::replace(&mut seen[slot], true) && lead.shape_error.is_none() {
                        lead.shape_error = Some(FieldError::new(
                            name,
                            "duplicate_key",
                            format!("{name} appears more than once in this lead"),
                        ));
                    }
                    *[
                        &mut lead.full_name,
                        &mut lead.email,
                        &mut lead.phone,
                        &mut lead.status,
                        &mut lead.source,
                    ][slot] = value;
                }
                Ok(lead)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<LeadInput, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LeadInput::not_an_object("an array"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<LeadInput, E> {
                Ok(LeadInput::not_an_object("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LeadInput, E> {
                Ok(LeadInput::not_an_object("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<LeadInput, E> {
                Ok(LeadInput::not_an_object("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<LeadInput, E> {
                Ok(LeadInput::not_an_object("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LeadInput, E> {
                Ok(LeadInput::not_an_object("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LeadInput, E> {
                Ok(LeadInput::not_an_object("null"))
            }
        }
        deserializer.deserialize_any(LeadVisitor)
    }
}

impl LeadInput {
    fn not_an_object(kind: &'static str) -> Self {
        LeadInput {
            shape_error: Some(FieldError::new(
                "",
                "not_an_object",
                format!("a lead must be an object, not {kind}"),
            )),
            ..LeadInput::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Lead, FieldError> {
        Lead::parse(&serde_json::from_str::<LeadInput>(json).expect("any JSON value deserializes"))
    }

    #[test]
    fn the_seed_example_is_valid() {
        let lead = parse(
            r#"{"fullName":"John Doe","email":"john@example.com","phone":"+1234567890","status":"NEW","source":"WEBSITE"}"#,
        )
        .unwrap();
        assert_eq!(lead.email.as_str(), "john@example.com");
        assert_eq!(lead.phone.as_ref().map(Phone::as_str), Some("+1234567890"));
    }

    #[test]
    fn optional_fields_take_their_defaults() {
        let lead = parse(r#"{"fullName":"Ada","email":"ADA@x.io","phone":null}"#).unwrap();
        assert_eq!(
            (lead.status, lead.source, lead.phone),
            (LeadStatus::NEW, LeadSource::OTHER, None)
        );
        assert_eq!(lead.email.as_str(), "ada@x.io");
    }

    #[test]
    fn reports_the_first_failing_field() {
        let err = parse(r#"{"fullName":"","email":"nope"}"#).unwrap_err();
        assert_eq!(err.field, "fullName");
        let err = parse(r#"{"fullName":"Ada","email":"nope"}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("email", "invalid_email"));
    }

    #[test]
    fn wrong_types_are_a_reason_not_a_crash() {
        let err = parse(r#"{"fullName":42,"email":"a@b.co"}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("fullName", "wrong_type"));
        assert_eq!(err.message, "fullName must be a string, not a number");
        let err = parse(r#"{"fullName":"Ada","email":{"x":1}}"#).unwrap_err();
        assert_eq!(err.message, "email must be a string, not an object");
    }

    #[test]
    fn a_lead_that_is_not_an_object_fails_alone() {
        assert_eq!(parse("[1,2]").unwrap_err().code, "not_an_object");
        assert_eq!(parse("null").unwrap_err().code, "not_an_object");
        assert_eq!(parse("\"x\"").unwrap_err().code, "not_an_object");
    }

    #[test]
    fn repeated_keys_are_refused() {
        let err = parse(r#"{"fullName":"Ada","email":"a@b.co","email":"c@d.co"}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("email", "duplicate_key"));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert!(parse(r#"{"fullName":"Ada","email":"a@b.co","company":{"name":"X"}}"#).is_ok());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::strategies::{json_value, key, text};
    use proptest::prelude::*;
    use serde_json::Value;

    /// Objects shaped like leads, with any value in any field.
    fn lead_like() -> impl Strategy<Value = Value> {
        prop::collection::vec(
            (
                key(),
                prop_oneof![3 => text().prop_map(Value::from), 1 => json_value()],
            ),
            0..8,
        )
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn any_json_is_a_lead_input_and_judging_it_never_panics(value in prop_oneof![json_value(), lead_like()]) {
            let input: LeadInput = serde_json::from_value(value).expect("any JSON value is a LeadInput");
            match Lead::parse(&input) {
                Ok(lead) => {
                    // Normalizing is idempotent: the stored lead, sent again, is itself.
                    let again = Lead::from_fields(
                        lead.full_name.as_str(),
                        lead.email.as_str(),
                        lead.phone.as_ref().map(Phone::as_str),
                        Some(lead.status.as_str()),
                        Some(lead.source.as_str()),
                    );
                    prop_assert_eq!(again, Ok(lead));
                }
                Err(e) => {
                    prop_assert!(!e.message.is_empty(), "a rejection has a reason");
                    prop_assert!(!e.code.is_empty());
                }
            }
        }

        #[test]
        fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(input) = serde_json::from_slice::<LeadInput>(&bytes) {
                let _ = Lead::parse(&input);
            }
        }
    }
}
