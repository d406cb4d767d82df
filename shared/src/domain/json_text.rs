use super::FieldError;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// A JSON value where text is expected: the text, absent/null, or the kind of value found.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) enum JsonText {
    Text(String),
    #[default]
    Absent,
    Wrong(&'static str),
}

impl JsonText {
    pub(crate) fn required(&self, field: &'static str) -> Result<&str, FieldError> {
        self.optional(field)?
            .ok_or_else(|| FieldError::new(field, "required", format!("{field} is required")))
    }

    pub(crate) fn optional(&self, field: &'static str) -> Result<Option<&str>, FieldError> {
        match self {
            JsonText::Text(text) => Ok(Some(text)),
            JsonText::Absent => Ok(None),
            JsonText::Wrong(kind) => Err(FieldError::new(
                field,
                "wrong_type",
                format!("{field} must be a string, not {kind}"),
            )),
        }
    }
}

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = JsonText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonText, E> {
                Ok(JsonText::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<JsonText, E> {
                Ok(JsonText::Text(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<JsonText, E> {
                Ok(JsonText::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<JsonText, E> {
                Ok(JsonText::Absent)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<JsonText, E> {
                Ok(JsonText::Wrong("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<JsonText, E> {
                Ok(JsonText::Wrong("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<JsonText, E> {
                Ok(JsonText::Wrong("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<JsonText, E> {
                Ok(JsonText::Wrong("a number"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<JsonText, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(JsonText::Wrong("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonText, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JsonText::Wrong("an object"))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}
