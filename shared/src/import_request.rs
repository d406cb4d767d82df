//! The body of `POST /leads/import`, parsed once into types that cannot hold a bad request.
//!
//! Request-level problems (not JSON, wrong shape, missing `createdBy`, too many leads) reject
//! the whole request. Problems inside one lead are not decided here: each lead is kept as a
//! [`LeadInput`] and judged on its own by the import plan.

use crate::domain::json_text::JsonText;
use crate::domain::{CreatedBy, ImportId, LeadInput};
use crate::problem::{InvalidParam, Problem};
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A well-formed import request.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub import_id: Option<ImportId>,
    pub created_by: CreatedBy,
    pub leads: Vec<LeadInput>,
}

impl ImportRequest {
    /// Parses a request body; `max_leads` is `MAX_LEADS_PER_IMPORT`.
    pub fn parse(body: &[u8], max_leads: usize) -> Result<Self, Problem> {
        let raw: RawRequest = serde_json::from_slice(body).map_err(|e| {
            Problem::invalid_request(
                format!("the body is not valid JSON for an import: {e}"),
                vec![],
            )
        })?;
        if let Some(key) = raw.duplicate_key {
            return Err(Problem::invalid_request(
                format!("{key} appears more than once"),
                vec![param(&format!("/{key}"), "duplicate key")],
            ));
        }
        let mut errors = Vec::new();
        let import_id = match raw.import_id.optional("importId") {
            Ok(None) => None,
            Ok(Some(text)) => ImportId::parse(text)
                .map_err(|m| errors.push(param("/importId", &m)))
                .ok(),
            Err(e) => {
                errors.push(param("/importId", &e.message));
                None
            }
        };
        let created_by = raw
            .created_by
            .required("createdBy")
            .and_then(CreatedBy::parse)
            .map_err(|e| errors.push(param("/createdBy", &e.message)))
            .ok();
        let leads = match raw.leads {
            LeadsField::Absent => {
                errors.push(param("/leads", "leads is required"));
                None
            }
            LeadsField::Wrong(kind) => {
                errors.push(param(
                    "/leads",
                    &format!("leads must be an array, not {kind}"),
                ));
                None
            }
            LeadsField::Array(leads) if leads.is_empty() => {
                errors.push(param("/leads", "leads must contain at least one lead"));
                None
            }
            LeadsField::Array(leads) => Some(leads),
        };
        match (created_by, leads) {
            (Some(created_by), Some(leads)) if errors.is_empty() => {
                if leads.len() > max_leads {
                    return Err(Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too-many-leads",
                        "Too many leads",
                        format!(
                            "an import may hold at most {max_leads} leads; this one has {}",
                            leads.len()
                        ),
                    ));
                }
                Ok(ImportRequest {
                    import_id,
                    created_by,
                    leads,
                })
            }
            _ => Err(Problem::invalid_request(
                "the import request is invalid",
                errors,
            )),
        }
    }
}

fn param(pointer: &str, message: &str) -> InvalidParam {
    InvalidParam {
        pointer: pointer.to_owned(),
        message: message.to_owned(),
    }
}

/// The top-level object as found, before its fields are judged.
#[derive(Default)]
struct RawRequest {
    import_id: JsonText,
    created_by: JsonText,
    leads: LeadsField,
    duplicate_key: Option<&'static str>,
}

#[derive(Default)]
enum LeadsField {
    #[default]
    Absent,
    Array(Vec<LeadInput>),
    Wrong(&'static str),
}

impl<'de> Deserialize<'de> for RawRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RequestVisitor;
        impl<'de> Visitor<'de> for RequestVisitor {
            type Value = RawRequest;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object with importId, leads and createdBy")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRequest, A::Error> {
                let mut raw = RawRequest::default();
                let mut seen = [false; 3];
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let (slot, name) = match key.as_ref() {
                        "importId" => (0, "importId"),
                        "createdBy" => (1, "createdBy"),
                        "leads" => (2, "leads"),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if std::mem::replace(&mut seen[slot], true) {
                        raw.duplicate_key.get_or_insert(name);
                    }
                    match slot {
                        0 => raw.import_id = map.next_value()?,
                        1 => raw.created_by = map.next_value()?,
                        _ => raw.leads = map.next_value()?,
                    }
                }
                Ok(raw)
            }
        }
        deserializer.deserialize_map(RequestVisitor)
    }
}

impl<'de> Deserialize<'de> for LeadsField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LeadsVisitor;
        impl<'de> Visitor<'de> for LeadsVisitor {
            type Value = LeadsField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of leads")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LeadsField, A::Error> {
                let mut leads = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16_384));
                while let Some(lead) = seq.next_element::<LeadInput>()? {
                    leads.push(lead);
                }
                Ok(LeadsField::Array(leads))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LeadsField, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LeadsField::Wrong("an object"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<LeadsField, E> {
                Ok(LeadsField::Wrong("a string"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<LeadsField, E> {
                Ok(LeadsField::Wrong("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<LeadsField, E> {
                Ok(LeadsField::Wrong("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<LeadsField, E> {
                Ok(LeadsField::Wrong("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<LeadsField, E> {
                Ok(LeadsField::Wrong("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LeadsField, E> {
                Ok(LeadsField::Absent)
            }
        }
        deserializer.deserialize_any(LeadsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ImportRequest, Problem> {
        ImportRequest::parse(body.as_bytes(), 3)
    }

    fn pointers(problem: &Problem) -> Vec<&str> {
        problem.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[test]
    fn the_seed_request_parses() {
        let req = parse(
            r#"{"importId":"unique-import-id","leads":[{"fullName":"John Doe","email":"john@example.com"}],"createdBy":"507f1f77bcf86cd799439011"}"#,
        )
        .unwrap();
        assert_eq!(req.import_id.unwrap().as_str(), "unique-import-id");
        assert_eq!(req.leads.len(), 1);
    }

    #[test]
    fn import_id_is_optional() {
        assert!(
            parse(r#"{"leads":[{}],"createdBy":"u1"}"#)
                .unwrap()
                .import_id
                .is_none()
        );
    }

    #[test]
    fn malformed_json_is_400() {
        for body in ["", "{", "[]", "null", "{\"leads\":[}", "\u{feff}{}"] {
            assert_eq!(parse(body).unwrap_err().status, 400, "{body:?}");
        }
    }

    #[test]
    fn missing_and_wrong_fields_are_listed_with_pointers() {
        let p = parse(r#"{"importId":"bad id","leads":"x"}"#).unwrap_err();
        assert_eq!(p.status, 400);
        assert_eq!(pointers(&p), ["/importId", "/createdBy", "/leads"]);
        let p = parse(r#"{"leads":[],"createdBy":7}"#).unwrap_err();
        assert_eq!(pointers(&p), ["/createdBy", "/leads"]);
        assert_eq!(
            p.errors[0].message,
            "createdBy must be a string, not a number"
        );
    }

    #[test]
    fn more_leads_than_the_limit_is_413() {
        let p = parse(r#"{"leads":[{},{},{},{}],"createdBy":"u"}"#).unwrap_err();
        assert_eq!(p.status, 413);
        assert!(parse(r#"{"leads":[{},{},{}],"createdBy":"u"}"#).is_ok());
    }

    #[test]
    fn duplicate_top_level_keys_are_refused() {
        let p = parse(r#"{"leads":[{}],"createdBy":"a","createdBy":"b"}"#).unwrap_err();
        assert_eq!(pointers(&p), ["/createdBy"]);
    }

    #[test]
    fn non_utf8_is_refused() {
        let mut body = br#"{"leads":[{"fullName":""#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#""}],"createdBy":"u"}"#);
        assert_eq!(ImportRequest::parse(&body, 3).unwrap_err().status, 400);
    }
}
