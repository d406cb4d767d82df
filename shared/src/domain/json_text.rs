//! JSON values where text is expected, read without building them.
//!
//! serde_json refuses a whole document for two things inside a string or a number that are
//! valid JSON syntax: a string escaping half of a UTF-16 surrogate pair (`"\ud800"`, which no
//! Rust string can hold) and a number too large for an `f64` (`1e400`). Values read here are
//! taken as raw JSON text ([`RawValue`]: syntax checked, nothing decoded, nothing allocated),
//! and judged by their first byte; only a string is decoded, by [`decode_string`]. So such a
//! value in one lead's field makes that field fail, not the request.

use super::FieldError;
use serde::Deserialize;
use serde::de::Deserializer;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The kind of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    /// The kind of a value whose JSON text (as serde_json checked it) is `raw`.
    pub(crate) fn of(raw: &str) -> Self {
        match raw.trim_start().as_bytes().first() {
            Some(b'"') => JsonKind::String,
            Some(b'{') => JsonKind::Object,
            Some(b'[') => JsonKind::Array,
            Some(b't' | b'f') => JsonKind::Boolean,
            Some(b'n') | None => JsonKind::Null,
            // `-` or a digit.
            Some(_) => JsonKind::Number,
        }
    }

    /// The kind as a sentence says it: "a number".
    pub(crate) fn described(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Boolean => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        }
    }
}

/// The text of a JSON string token that serde_json has checked (quotes, escapes, no raw
/// control character). Without an escape it is the text between the quotes, borrowed;
/// escapes are decoded by serde_json. `None` when the string is not Unicode text: it escapes
/// an unpaired UTF-16 surrogate.
pub(crate) fn decode_string(token: &str) -> Option<Cow<'_, str>> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(token).ok().map(Cow::Owned)
}

/// A JSON value where text is expected: the text, or what was found instead.
///
/// Sixteen bytes (a test holds it to that): a request keeps five of these per lead, for up to
/// `MAX_LEADS_PER_IMPORT` leads.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JsonText {
    Text(Box<str>),
    NotText(NotText),
}

/// What stood where text was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotText {
    /// Absent or `null`.
    Absent,
    /// A value of another kind.
    Wrong(JsonKind),
    /// A string escaping an unpaired UTF-16 surrogate (`"\ud800"`).
    Undecodable,
}

impl Default for JsonText {
    fn default() -> Self {
        JsonText::NotText(NotText::Absent)
    }
}

impl JsonText {
    /// Judges a value by its raw JSON text.
    pub(crate) fn from_raw(raw: &str) -> Self {
        match JsonKind::of(raw) {
            JsonKind::Null => JsonText::NotText(NotText::Absent),
            JsonKind::String => match decode_string(raw.trim()) {
                Some(text) => JsonText::Text(text.into()),
                None => JsonText::NotText(NotText::Undecodable),
            },
            kind => JsonText::NotText(NotText::Wrong(kind)),
        }
    }

    pub(crate) fn is_absent(&self) -> bool {
        *self == JsonText::NotText(NotText::Absent)
    }

    pub(crate) fn required(&self, field: &'static str) -> Result<&str, FieldError> {
        self.optional(field)?
            .ok_or_else(|| FieldError::new(field, "required", format!("{field} is required")))
    }

    pub(crate) fn optional(&self, field: &'static str) -> Result<Option<&str>, FieldError> {
        match self {
            JsonText::Text(text) => Ok(Some(text)),
            JsonText::NotText(NotText::Absent) => Ok(None),
            JsonText::NotText(NotText::Wrong(kind)) => Err(FieldError::new(
                field,
                "wrong_type",
                format!("{field} must be a string, not {}", kind.described()),
            )),
            JsonText::NotText(NotText::Undecodable) => Err(FieldError::new(
                field,
                "invalid_text",
                format!(
                    "{field} is not valid text: it escapes half of a UTF-16 surrogate pair (\\ud800 to \\udfff alone)"
                ),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for JsonText {
    /// Only from serde_json's text deserializers (`from_str`, `from_slice`): the value is read
    /// as a borrowed [`RawValue`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(deserializer)?;
        Ok(JsonText::from_raw(raw.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(json: &str) -> JsonText {
        serde_json::from_str(json).expect("any JSON value")
    }

    #[test]
    fn sixteen_bytes() {
        assert_eq!(std::mem::size_of::<JsonText>(), 16);
    }

    #[test]
    fn every_kind_of_value() {
        assert_eq!(text(r#""a""#), JsonText::Text("a".into()));
        assert_eq!(
            text(r#""a\"\u00e9\ud83d\ude00""#),
            JsonText::Text("a\"é😀".into())
        );
        assert!(text(" null ").is_absent());
        for (json, kind) in [
            ("true", JsonKind::Boolean),
            ("-0.5e3", JsonKind::Number),
            ("1e400", JsonKind::Number),
            ("[1,\"\\ud800\"]", JsonKind::Array),
            ("{\"\\udfff\":1e999}", JsonKind::Object),
        ] {
            assert_eq!(
                text(json),
                JsonText::NotText(NotText::Wrong(kind)),
                "{json}"
            );
        }
    }

    #[test]
    fn a_lone_surrogate_is_not_text() {
        for json in [r#""\ud800""#, r#""a\uDFFFb""#, r#""\ud83d\u0041""#] {
            let value = text(json);
            assert_eq!(value, JsonText::NotText(NotText::Undecodable), "{json}");
            let err = value.optional("fullName").unwrap_err();
            assert_eq!((err.field, err.code), ("fullName", "invalid_text"));
        }
    }
}
