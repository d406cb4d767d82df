use super::json_text::{JsonKind, JsonText, decode_string};
use super::{Attributes, Email, FieldError, FullName, LeadSource, LeadStatus, Phone};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// The fields of a lead the importer reads, in the order [`Lead::parse`] judges them.
const FIELDS: [&str; 6] = [
    "fullName",
    "email",
    "phone",
    "status",
    "source",
    "attributes",
];

/// One lead exactly as the request carried it, before any rule is applied.
///
/// Deserializing never fails on the *content* of a lead: a number where a string belongs (even
/// one too large for an `f64`), a string that is not Unicode text, a repeated key or a lead
/// that is not an object are kept as facts here and become that lead's failure reason in
/// [`Lead::parse`], so one bad row never rejects the whole import. Nothing the importer does
/// not read is kept: unknown fields are skipped (custom data belongs in `attributes`), and a
/// lead that is not an object keeps only its kind.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LeadInput {
    full_name: JsonText,
    email: JsonText,
    phone: JsonText,
    status: JsonText,
    source: JsonText,
    /// Name/value pairs as sent (a JSON lead's `attributes`, a CSV's unmapped cells), judged
    /// by [`Attributes::parse`].
    attributes: Vec<AttributeInput>,
    shape_error: Option<ShapeError>,
}

/// One attribute as sent: its name and its value as text.
type AttributeInput = (Box<str>, Box<str>);

/// Why a lead as a whole cannot be judged field by field (kept small: a request holds up to
/// `MAX_LEADS_PER_IMPORT` leads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShapeError {
    NotAnObject(JsonKind),
    /// The field of [`FIELDS`] at this position appears more than once.
    DuplicateKey(u8),
    /// serde_json refused to read the object again although it had checked its syntax; no
    /// known input does this, but if one did it would fail its lead, not the request.
    Unreadable,
    /// `attributes` is not an object.
    AttributesNotAnObject(JsonKind),
    /// An attribute's value is not text, a number or a boolean (or its name or text is not
    /// Unicode text).
    AttributeNotText(JsonKind),
}

impl ShapeError {
    fn to_field_error(self) -> FieldError {
        match self {
            ShapeError::NotAnObject(kind) => FieldError::new(
                "",
                "not_an_object",
                format!("a lead must be an object, not {}", kind.described()),
            ),
            ShapeError::DuplicateKey(slot) => {
                let name = FIELDS[usize::from(slot)];
                FieldError::new(
                    name,
                    "duplicate_key",
                    format!("{name} appears more than once in this lead"),
                )
            }
            ShapeError::Unreadable => {
                FieldError::new("", "unreadable", "this lead could not be read as JSON")
            }
            ShapeError::AttributesNotAnObject(kind) => FieldError::new(
                "attributes",
                "wrong_type",
                format!("attributes must be an object, not {}", kind.described()),
            ),
            ShapeError::AttributeNotText(kind) => FieldError::new(
                "attributes",
                "invalid_attribute",
                format!(
                    "an attribute's value must be text, a number or a boolean, not {}",
                    kind.described()
                ),
            ),
        }
    }
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
    pub attributes: Attributes,
}

impl Lead {
    /// Applies the rules field by field and reports the first field that fails.
    pub fn parse(input: &LeadInput) -> Result<Lead, FieldError> {
        if let Some(err) = input.shape_error {
            return Err(err.to_field_error());
        }
        Lead::from_fields(
            input.full_name.required("fullName")?,
            input.email.required("email")?,
            input.phone.optional("phone")?,
            input.status.optional("status")?,
            input.source.optional("source")?,
            input.attributes.iter().map(|(k, v)| (&**k, &**v)),
        )
    }

    /// Applies the rules to the fields as text: the one constructor behind [`Lead::parse`] and
    /// behind decoding a lead read back from the stream. A blank phone is no phone.
    pub fn from_fields<'a>(
        full_name: &str,
        email: &str,
        phone: Option<&str>,
        status: Option<&str>,
        source: Option<&str>,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
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
            attributes: Attributes::parse(attributes)?,
        })
    }
}

impl LeadInput {
    /// The text each field carried (`None`: absent, or not text), in the order `fullName`,
    /// `email`, `phone`, `status`, `source`: what the errors report shows of a lead refused
    /// at import.
    pub fn texts(&self) -> [Option<&str>; 5] {
        [
            &self.full_name,
            &self.email,
            &self.phone,
            &self.status,
            &self.source,
        ]
        .map(|field| match field {
            JsonText::Text(text) => Some(&**text),
            JsonText::NotText(_) => None,
        })
    }

    /// Its attributes as sent (name, value), not yet judged.
    pub fn attribute_texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().map(|(k, v)| (&**k, &**v))
    }

    /// Judges a lead by its raw JSON text (syntax already checked by serde_json): an object is
    /// read field by field, anything else keeps only its kind.
    pub(crate) fn from_raw(raw: &str) -> Self {
        match JsonKind::of(raw) {
            JsonKind::Object => serde_json::from_str::<LeadObject>(raw)
                .map(|object| object.0)
                .unwrap_or_else(|_| LeadInput::shaped(ShapeError::Unreadable)),
            kind => LeadInput::shaped(ShapeError::NotAnObject(kind)),
        }
    }

    /// A lead from text cells (a CSV record), in the order of [`FIELDS`], and the cells of
    /// its other columns as attributes (header, cell): an absent or blank cell is an absent
    /// field.
    pub(crate) fn from_cells<'a>(
        cells: [Option<&str>; 5],
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let [full_name, email, phone, status, source] = cells.map(|cell| match cell {
            Some(text) if !text.trim().is_empty() => JsonText::Text(text.into()),
            _ => JsonText::default(),
        });
        LeadInput {
            full_name,
            email,
            phone,
            status,
            source,
            attributes: attributes
                .into_iter()
                .filter(|(_, value)| !value.trim().is_empty())
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
            shape_error: None,
        }
    }

    fn shaped(error: ShapeError) -> Self {
        LeadInput {
            shape_error: Some(error),
            ..LeadInput::default()
        }
    }
}

impl<'de> Deserialize<'de> for LeadInput {
    /// Only from serde_json's text deserializers (`from_str`, `from_slice`): the lead is read
    /// as a borrowed [`RawValue`] first, so no value inside it can fail the document.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(deserializer)?;
        Ok(LeadInput::from_raw(raw.get()))
    }
}

/// A lead that is a JSON object, read field by field. Keys and values are raw text, so
/// reading cannot fail on their content: a key that is not Unicode text cannot name a field
/// and is skipped like any unknown key.
struct LeadObject(LeadInput);

impl<'de> Deserialize<'de> for LeadObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LeadVisitor;
        impl<'de> Visitor<'de> for LeadVisitor {
            type Value = LeadObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a lead object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeadObject, A::Error> {
                let mut lead = LeadInput::default();
                let mut seen = [false; FIELDS.len()];
                while let Some(key) = map.next_key::<&'de RawValue>()? {
                    let name = decode_string(key.get());
                    let Some(slot) = FIELDS.iter().position(|f| Some(*f) == name.as_deref()) else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    if std::mem::replace(&mut seen[slot], true) && lead.shape_error.is_none() {
                        lead.shape_error = Some(ShapeError::DuplicateKey(slot as u8));
                    }
                    if FIELDS[slot] == "attributes" {
                        let raw = map.next_value::<&'de RawValue>()?;
                        match attribute_pairs(raw.get()) {
                            Ok(pairs) => lead.attributes = pairs,
                            Err(e) => {
                                lead.shape_error.get_or_insert(e);
                            }
                        }
                        continue;
                    }
                    let value = map.next_value::<JsonText>()?;
                    *[
                        &mut lead.full_name,
                        &mut lead.email,
                        &mut lead.phone,
                        &mut lead.status,
                        &mut lead.source,
                    ][slot] = value;
                }
                Ok(LeadObject(lead))
            }
        }
        deserializer.deserialize_map(LeadVisitor)
    }
}

/// A JSON lead's `attributes` object (raw text, syntax checked) as name/value text: a string
/// is its text, a number or a boolean its JSON text, `null` no attribute.
fn attribute_pairs(raw: &str) -> Result<Vec<AttributeInput>, ShapeError> {
    let kind = JsonKind::of(raw);
    match kind {
        JsonKind::Null => return Ok(Vec::new()),
        JsonKind::Object => {}
        kind => return Err(ShapeError::AttributesNotAnObject(kind)),
    }
    let object: Vec<(&RawValue, &RawValue)> = serde_json::from_str::<RawPairs>(raw)
        .map_err(|_| ShapeError::Unreadable)?
        .0;
    let mut pairs = Vec::with_capacity(object.len());
    for (name, value) in object {
        let name =
            decode_string(name.get()).ok_or(ShapeError::AttributeNotText(JsonKind::String))?;
        let value: Box<str> = match JsonKind::of(value.get()) {
            JsonKind::Null => continue,
            JsonKind::String => decode_string(value.get().trim())
                .ok_or(ShapeError::AttributeNotText(JsonKind::String))?
                .into(),
            JsonKind::Number | JsonKind::Boolean => value.get().trim().into(),
            kind => return Err(ShapeError::AttributeNotText(kind)),
        };
        pairs.push((name.into(), value));
    }
    Ok(pairs)
}

/// An object's members in order, repeated names included, as raw JSON.
struct RawPairs<'a>(Vec<(&'a RawValue, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawPairs<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = RawPairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawPairs<'de>, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(RawPairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
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
    fn attributes_are_kept_as_text() {
        let lead = parse(
            r#"{"fullName":"Ada","email":"a@b.co","attributes":{"Company":"Acme","Seats":12,"Paying":true,"Fax":null,"Notes":" "}}"#,
        )
        .unwrap();
        assert_eq!(
            lead.attributes.iter().collect::<Vec<_>>(),
            [("Company", "Acme"), ("Paying", "true"), ("Seats", "12")]
        );
    }

    #[test]
    fn attributes_that_are_not_flat_text_fail_their_lead() {
        let err = parse(r#"{"fullName":"Ada","email":"a@b.co","attributes":[1]}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("attributes", "wrong_type"));
        let err =
            parse(r#"{"fullName":"Ada","email":"a@b.co","attributes":{"x":{"y":1}}}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("attributes", "invalid_attribute"));
        let err = parse(r#"{"fullName":"Ada","email":"a@b.co","attributes":{"x":"1","x":"2"}}"#)
            .unwrap_err();
        assert_eq!(err.code, "duplicate_attribute");
        let err = parse(r#"{"fullName":"Ada","email":"a@b.co","attributes":{},"attributes":{}}"#)
            .unwrap_err();
        assert_eq!((err.field, err.code), ("attributes", "duplicate_key"));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        assert!(parse(r#"{"fullName":"Ada","email":"a@b.co","company":{"name":"X"}}"#).is_ok());
    }

    #[test]
    fn values_serde_json_cannot_build_fail_their_field_only() {
        let err = parse(r#"{"fullName":"\ud800","email":"a@b.co"}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("fullName", "invalid_text"));
        assert!(err.message.contains("surrogate"), "{}", err.message);
        let err = parse(r#"{"fullName":"Ada","email":"a@b.co","phone":1e400}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("phone", "wrong_type"));
        assert_eq!(err.message, "phone must be a string, not a number");
        let err = parse(r#"{"fullName":"Ada","email":"a\udc00@b.co"}"#).unwrap_err();
        assert_eq!((err.field, err.code), ("email", "invalid_text"));
        assert_eq!(parse("1e400").unwrap_err().code, "not_an_object");
        assert_eq!(parse(r#""\ud800""#).unwrap_err().code, "not_an_object");
        // In ignored places they are skipped, unread.
        assert!(
            parse(r#"{"\ud800":1,"x":[1e400,"\udfff",{"\ud800":-1e999}],"fullName":"Ada","email":"a@b.co"}"#)
                .is_ok()
        );
    }

    #[test]
    fn escaped_keys_and_values_are_decoded() {
        let lead = parse(r#"{"full\u004eame":"Ad\u00e1","email":"a\u0040b.co"}"#).unwrap();
        assert_eq!(
            (lead.full_name.as_str(), lead.email.as_str()),
            ("Adá", "a@b.co")
        );
    }

    #[test]
    fn a_lead_keeps_nothing_it_does_not_read() {
        // Five texts of 16 bytes, the attributes' vector and a small shape error: a request
        // holds up to MAX_LEADS_PER_IMPORT of these.
        assert!(
            std::mem::size_of::<LeadInput>() <= 112,
            "{}",
            std::mem::size_of::<LeadInput>()
        );
        let big_array = format!("[{}0]", "0,".repeat(100_000));
        let input: LeadInput = serde_json::from_str(&big_array).unwrap();
        assert_eq!(
            input,
            LeadInput::shaped(ShapeError::NotAnObject(JsonKind::Array))
        );
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
            let input: LeadInput = serde_json::from_str(&value.to_string()).expect("any JSON value is a LeadInput");
            match Lead::parse(&input) {
                Ok(lead) => {
                    // Normalizing is idempotent: the stored lead, sent again, is itself.
                    let again = Lead::from_fields(
                        lead.full_name.as_str(),
                        lead.email.as_str(),
                        lead.phone.as_ref().map(Phone::as_str),
                        Some(lead.status.as_str()),
                        Some(lead.source.as_str()),
                        lead.attributes.iter(),
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
