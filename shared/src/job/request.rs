//! The body of `POST /leads/import`, parsed once into types that cannot hold a bad request.
//!
//! Request-level problems (not JSON, wrong shape, missing `createdBy`, too many leads) reject
//! the whole request. Problems inside one lead are not decided here: each lead is kept as a
//! [`LeadInput`] and judged on its own by the import plan.

use crate::domain::json_text::{JsonText, decode_string};
use crate::domain::{CreatedBy, ImportId, LeadInput, OnExisting};
use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::cell::Cell;
use std::fmt;

/// How deeply arrays and objects may nest in a request body. The request itself needs three
/// levels (body, `leads`, one lead); the rest is room for fields the importer ignores.
///
/// serde_json stops at 128 levels for values it builds, but skips ignored values (unknown
/// fields) iteratively without a limit; this check bounds both, before any parsing.
pub const MAX_JSON_DEPTH: usize = 32;

/// Why a request as a whole was refused (problems inside one lead never refuse a request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Malformed: not JSON, the wrong shape, a missing or bad field; `errors` says where.
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<InvalidParam>,
    },
    /// More leads than `max`: parsing stops at the first lead over it, so how many more the
    /// request holds is not known.
    #[error("an import may hold at most {max} leads; this one has more")]
    TooManyLeads { max: usize },
    /// `createdBy` names someone other than the verified caller.
    #[error("createdBy must be the authenticated caller; leave it out to use your identity")]
    NotTheCaller,
}

/// Where in the request body something is wrong (a JSON Pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidParam {
    pub pointer: String,
    pub message: String,
}

impl RequestError {
    pub fn invalid(detail: impl Into<String>, errors: Vec<InvalidParam>) -> Self {
        RequestError::Invalid {
            detail: detail.into(),
            errors,
        }
    }
}

/// A well-formed import request.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub import_id: Option<ImportId>,
    pub created_by: CreatedBy,
    pub leads: Vec<LeadInput>,
    /// A CSV import's line where each lead's record starts (header = 1); empty for JSON.
    pub lines: Vec<u32>,
    /// What happens to leads whose email is already stored, if the request says
    /// (`fail` when nothing does).
    pub on_existing: Option<OnExisting>,
    /// The body asked for a dry run (a JSON body's `dryRun`; a CSV's comes from the query).
    pub dry_run: bool,
    /// Where to POST the notification that the import ended (`callbackUrl`); checked by the
    /// import use case, which knows the deployment's rules.
    pub callback_url: Option<String>,
}

impl ImportRequest {
    /// Parses a request body; `max_leads` is `MAX_LEADS_PER_IMPORT`.
    pub fn parse(body: &[u8], max_leads: usize) -> Result<Self, RequestError> {
        Self::parse_as(body, max_leads, None)
    }

    /// Parses a request body sent by a verified `caller` (see [`crate::job::caller`]): an
    /// absent `createdBy` becomes the caller, one naming anybody else is refused.
    pub fn parse_as(
        body: &[u8],
        max_leads: usize,
        caller: Option<&CreatedBy>,
    ) -> Result<Self, RequestError> {
        if let Err(depth) = check_depth(body, MAX_JSON_DEPTH) {
            return Err(RequestError::invalid(
                format!(
                    "the body nests arrays and objects {depth} levels deep; at most {MAX_JSON_DEPTH} are allowed"
                ),
                vec![],
            ));
        }
        let text = std::str::from_utf8(body).map_err(|e| {
            RequestError::invalid(
                format!(
                    "the body is not valid JSON for an import: it is not UTF-8 (byte {})",
                    e.valid_up_to()
                ),
                vec![],
            )
        })?;
        let over_limit = Cell::new(false);
        let seed = RequestSeed {
            max_leads,
            over_limit: &over_limit,
        };
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw = seed
            .deserialize(&mut deserializer)
            .and_then(|raw| deserializer.end().map(|()| raw))
            .map_err(|e| {
                if over_limit.get() {
                    RequestError::TooManyLeads { max: max_leads }
                } else {
                    RequestError::invalid(
                        format!("the body is not valid JSON for an import: {e}"),
                        vec![],
                    )
                }
            })?;
        if let Some(key) = raw.duplicate_key {
            return Err(RequestError::invalid(
                format!("{key} appears more than once"),
                vec![param(&format!("/{key}"), "duplicate key")],
            ));
        }
        let mut errors = Vec::new();
        let (import_id, created_by) =
            judge_ids(&raw.import_id, &raw.created_by, caller, &mut errors)?;
        let on_existing = match raw.on_existing.optional("onExisting") {
            Ok(None) => None,
            Ok(Some(text)) => OnExisting::parse(text)
                .map_err(|message| errors.push(param("/onExisting", &message)))
                .ok(),
            Err(e) => {
                errors.push(param("/onExisting", &e.message));
                None
            }
        };
        let dry_run = match raw.dry_run.as_deref().map(RawValue::get) {
            None | Some("false" | "null") => false,
            Some("true") => true,
            Some(_) => {
                errors.push(param("/dryRun", "dryRun must be true or false"));
                false
            }
        };
        let callback_url = raw
            .callback_url
            .optional("callbackUrl")
            .map_err(|e| errors.push(param("/callbackUrl", &e.message)))
            .ok()
            .flatten()
            .map(str::to_owned);
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
            (Some(created_by), Some(leads)) if errors.is_empty() => Ok(ImportRequest {
                import_id,
                created_by,
                leads,
                lines: Vec::new(),
                on_existing,
                dry_run,
                callback_url,
            }),
            _ => Err(RequestError::invalid(
                "the import request is invalid",
                errors,
            )),
        }
    }
}

/// Judges the request's `importId` and `createdBy` (from a JSON body or a CSV import's query):
/// a bad one is listed in `errors` under `/importId` or `/createdBy`. With a verified `caller`,
/// an absent `createdBy` becomes the caller and one naming anybody else is refused.
pub(crate) fn judge_ids(
    import_id: &JsonText,
    created_by: &JsonText,
    caller: Option<&CreatedBy>,
    errors: &mut Vec<InvalidParam>,
) -> Result<(Option<ImportId>, Option<CreatedBy>), RequestError> {
    let import_id = match import_id.optional("importId") {
        Ok(None) => None,
        Ok(Some(text)) => ImportId::parse(text)
            .map_err(|m| errors.push(param("/importId", &m)))
            .ok(),
        Err(e) => {
            errors.push(param("/importId", &e.message));
            None
        }
    };
    let created_by = match (caller, created_by) {
        (Some(caller), created_by) if created_by.is_absent() => Some(caller.clone()),
        _ => created_by
            .required("createdBy")
            .and_then(CreatedBy::parse)
            .map_err(|e| errors.push(param("/createdBy", &e.message)))
            .ok(),
    };
    if let (Some(caller), Some(named)) = (caller, &created_by)
        && caller != named
    {
        return Err(RequestError::NotTheCaller);
    }
    Ok((import_id, created_by))
}

/// Fails with the depth reached when `[`/`{` nest deeper than `max` outside strings. Bytes that
/// are not JSON are left for the parser to refuse.
fn check_depth(body: &[u8], max: usize) -> Result<(), usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn param(pointer: &str, message: &str) -> InvalidParam {
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
    on_existing: JsonText,
    dry_run: Option<Box<RawValue>>,
    callback_url: JsonText,
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

/// Reads the request with the lead limit in hand: the `leads` array is counted as it is read,
/// and reading stops at the first lead over `max_leads`, setting `over_limit`. So neither the
/// leads past the limit nor the bytes after them are ever looked at, and memory stays bounded
/// by the limit whatever the body holds.
#[derive(Clone, Copy)]
struct RequestSeed<'a> {
    max_leads: usize,
    over_limit: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for RequestSeed<'_> {
    type Value = RawRequest;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawRequest, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed<'_> {
    type Value = RawRequest;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with importId, leads and createdBy")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRequest, A::Error> {
        const NAMES: [&str; 6] = [
            "importId",
            "createdBy",
            "leads",
            "onExisting",
            "dryRun",
            "callbackUrl",
        ];
        let mut raw = RawRequest::default();
        let mut seen = [false; NAMES.len()];
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            // A key that is not Unicode text names no field: it is skipped like any unknown one.
            let name = decode_string(key.get());
            let Some(slot) = NAMES.iter().position(|n| Some(*n) == name.as_deref()) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut seen[slot], true) {
                raw.duplicate_key.get_or_insert(NAMES[slot]);
            }
            match slot {
                0 => raw.import_id = map.next_value()?,
                1 => raw.created_by = map.next_value()?,
                2 => raw.leads = map.next_value_seed(LeadsSeed(self))?,
                3 => raw.on_existing = map.next_value()?,
                4 => raw.dry_run = Some(map.next_value::<&RawValue>()?.to_owned()),
                _ => raw.callback_url = map.next_value()?,
            }
        }
        Ok(raw)
    }
}

/// The `leads` field, read with the limit.
struct LeadsSeed<'a>(RequestSeed<'a>);

impl<'de> DeserializeSeed<'de> for LeadsSeed<'_> {
    type Value = LeadsField;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<LeadsField, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LeadsSeed<'_> {
    type Value = LeadsField;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of leads")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LeadsField, A::Error> {
        let RequestSeed {
            max_leads,
            over_limit,
        } = self.0;
        let mut leads = Vec::with_capacity(max_leads.min(1024));
        while let Some(lead) = seq.next_element::<LeadInput>()? {
            if leads.len() == max_leads {
                over_limit.set(true);
                return Err(de::Error::custom(format_args!(
                    "more than {max_leads} leads"
                )));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ImportRequest, RequestError> {
        ImportRequest::parse(body.as_bytes(), 3)
    }

    fn invalid(error: RequestError) -> (String, Vec<InvalidParam>) {
        match error {
            RequestError::Invalid { detail, errors } => (detail, errors),
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    fn pointers(error: RequestError) -> Vec<String> {
        invalid(error).1.into_iter().map(|e| e.pointer).collect()
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
            invalid(parse(body).unwrap_err());
        }
    }

    #[test]
    fn missing_and_wrong_fields_are_listed_with_pointers() {
        let p = parse(r#"{"importId":"bad id","leads":"x"}"#).unwrap_err();
        assert_eq!(pointers(p), ["/importId", "/createdBy", "/leads"]);
        let (_, errors) = invalid(parse(r#"{"leads":[],"createdBy":7}"#).unwrap_err());
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/createdBy", "/leads"]);
        assert_eq!(
            errors[0].message,
            "createdBy must be a string, not a number"
        );
    }

    #[test]
    fn more_leads_than_the_limit_are_refused() {
        let p = parse(r#"{"leads":[{},{},{},{}],"createdBy":"u"}"#).unwrap_err();
        assert_eq!(p, RequestError::TooManyLeads { max: 3 });
        assert_eq!(
            p.to_string(),
            "an import may hold at most 3 leads; this one has more"
        );
        assert!(parse(r#"{"leads":[{},{},{}],"createdBy":"u"}"#).is_ok());
    }

    #[test]
    fn reading_stops_at_the_first_lead_over_the_limit() {
        // What follows the fourth lead is never read: not even its syntax is checked.
        let p = parse(r#"{"createdBy":"u","leads":[0,{},"x",[1,2],  not JSON"#).unwrap_err();
        assert_eq!(p, RequestError::TooManyLeads { max: 3 });
        assert!(ImportRequest::parse(br#"{"createdBy":"u","leads":[]}"#, 0).is_err());
        assert_eq!(
            ImportRequest::parse(br#"{"createdBy":"u","leads":[1]}"#, 0).unwrap_err(),
            RequestError::TooManyLeads { max: 0 }
        );
    }

    #[test]
    fn a_bad_value_in_a_lead_fails_that_lead_only() {
        let req = parse(
            r#"{"leads":[{"fullName":"\ud800","email":"a@b.co"},{"fullName":"A","email":"a@b.co","phone":1e400},1e400],"createdBy":"u","x":[1e400,"\udfff"],"\ud800":-1e999}"#,
        )
        .unwrap();
        let codes: Vec<&str> = req
            .leads
            .iter()
            .map(|lead| crate::domain::Lead::parse(lead).unwrap_err().code)
            .collect();
        assert_eq!(codes, ["invalid_text", "wrong_type", "not_an_object"]);
    }

    #[test]
    fn request_fields_that_are_not_text_are_named() {
        let (_, errors) =
            invalid(parse(r#"{"leads":[{}],"createdBy":"\udbff","importId":1e400}"#).unwrap_err());
        let found: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            found[0],
            ("/importId", "importId must be a string, not a number")
        );
        assert_eq!(found[1].0, "/createdBy");
        assert!(found[1].1.contains("not valid text"), "{}", found[1].1);
    }

    #[test]
    fn duplicate_top_level_keys_are_refused() {
        let p = parse(r#"{"leads":[{}],"createdBy":"a","createdBy":"b"}"#).unwrap_err();
        assert_eq!(pointers(p), ["/createdBy"]);
    }

    #[test]
    fn nesting_is_bounded_even_in_ignored_fields() {
        let nested = |depth: usize| {
            // body, leads and the lead are 3 levels; `x` adds the rest.
            let inner = depth - 3;
            format!(
                r#"{{"leads":[{{"x":{}{},"s":"[[[[\"{{"}}],"createdBy":"u"}}"#,
                "[".repeat(inner),
                "]".repeat(inner)
            )
        };
        assert!(parse(&nested(MAX_JSON_DEPTH)).is_ok());
        let (detail, _) = invalid(parse(&nested(MAX_JSON_DEPTH + 1)).unwrap_err());
        assert!(detail.contains("at most 32"), "{detail}");
    }

    #[test]
    fn non_utf8_is_refused() {
        let mut body = br#"{"leads":[{"fullName":""#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(br#""}],"createdBy":"u"}"#);
        invalid(ImportRequest::parse(&body, 3).unwrap_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::strategies::{json_value, key, text};
    use proptest::prelude::*;
    use serde_json::Value;

    /// A rejection has a reason, and every listed error has a pointer and a message.
    fn assert_clear(p: &RequestError) -> Result<(), TestCaseError> {
        prop_assert!(!p.to_string().is_empty());
        if let RequestError::Invalid { errors, .. } = p {
            for e in errors {
                prop_assert!(e.pointer.starts_with('/') && !e.message.is_empty());
            }
        }
        Ok(())
    }

    fn request_like() -> impl Strategy<Value = Value> {
        let lead = prop::collection::vec((key(), text().prop_map(Value::from)), 0..6)
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()));
        (
            prop::option::of(prop_oneof![text().prop_map(Value::from), json_value()]),
            prop::option::of(prop_oneof![text().prop_map(Value::from), json_value()]),
            prop::option::of(prop_oneof![
                prop::collection::vec(prop_oneof![4 => lead, 1 => json_value()], 0..5)
                    .prop_map(Value::from),
                json_value()
            ]),
        )
            .prop_map(|(id, by, leads)| {
                let mut map = serde_json::Map::new();
                id.map(|v| map.insert("importId".into(), v));
                by.map(|v| map.insert("createdBy".into(), v));
                leads.map(|v| map.insert("leads".into(), v));
                Value::Object(map)
            })
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic_and_rejections_are_clear(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Err(p) = ImportRequest::parse(&bytes, 3) {
                assert_clear(&p)?;
            }
        }

        #[test]
        fn any_json_never_panics_and_rejections_are_clear(value in prop_oneof![json_value(), request_like()]) {
            let body = serde_json::to_vec(&value).unwrap();
            match ImportRequest::parse(&body, 3) {
                Ok(request) => {
                    prop_assert!((1..=3).contains(&request.leads.len()));
                    // The parsed ids are already normal: parsing them again changes nothing.
                    prop_assert_eq!(CreatedBy::parse(request.created_by.as_str()), Ok(request.created_by.clone()));
                    if let Some(id) = &request.import_id {
                        prop_assert_eq!(ImportId::parse(id.as_str()), Ok(id.clone()));
                    }
                }
                Err(p) => assert_clear(&p)?,
            }
        }

        #[test]
        fn a_verified_caller_is_the_creator_or_the_request_is_refused(value in request_like(), caller in "[a-z0-9]{1,8}") {
            let caller = CreatedBy::parse(&caller).unwrap();
            let body = serde_json::to_vec(&value).unwrap();
            match ImportRequest::parse_as(&body, 3, Some(&caller)) {
                Ok(request) => prop_assert_eq!(request.created_by, caller),
                Err(p) => assert_clear(&p)?,
            }
        }
    }
}

/// Peak memory of parsing a 6 MB body, measured in a child process of its own so that no other
/// test's allocations count: the test re-runs this test binary filtered to the one ignored
/// helper below, which parses one body and reports its `VmHWM` (peak resident set).
#[cfg(all(test, target_os = "linux"))]
mod memory {
    use super::*;
    use std::process::Command;

    /// Which body the child parses; unset, the helper does nothing.
    const CASE_VARIABLE: &str = "LEADS_PARSE_MEMORY_CASE";
    const BODY_BYTES: usize = 6 * 1024 * 1024;
    const PEAK_LIMIT_KB: u64 = 64 * 1024;
    const MINIMAL_LEAD: &str = r#"{"fullName":"a","email":"a@b.co"}"#;

    /// `{"leads":[item,item,…],"createdBy":"u"}` of about `BODY_BYTES`, and its item count.
    fn body_of(item: &str) -> (Vec<u8>, usize) {
        let (head, tail) = (br#"{"leads":["#, br#"],"createdBy":"u"}"#);
        let count = (BODY_BYTES - head.len() - tail.len()) / (item.len() + 1);
        let mut body = Vec::with_capacity(BODY_BYTES);
        body.extend_from_slice(head);
        for i in 0..count {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(item.as_bytes());
        }
        body.extend_from_slice(tail);
        (body, count)
    }

    /// The cases: a name, the body's item, the lead limit, and the outcome expected.
    fn cases() -> [(&'static str, &'static str, usize, &'static str); 3] {
        [
            ("zeros", "0", 10_000, "refused"),
            (
                "minimal-leads-over-the-limit",
                MINIMAL_LEAD,
                10_000,
                "refused",
            ),
            (
                "minimal-leads-under-a-raised-limit",
                MINIMAL_LEAD,
                1_000_000,
                "accepted",
            ),
        ]
    }

    fn peak_rss_kb() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("a VmHWM line in kB")
    }

    #[test]
    #[ignore = "the child side of parsing_6_mb_peaks_under_64_mb, which runs it"]
    fn parse_one_body_and_report_the_peak() {
        let Ok(name) = std::env::var(CASE_VARIABLE) else {
            return;
        };
        let (_, item, max_leads, _) = cases()
            .into_iter()
            .find(|case| case.0 == name)
            .expect("a known case");
        let (body, count) = body_of(item);
        let outcome = ImportRequest::parse(&body, max_leads);
        let summary = match &outcome {
            Ok(request) => format!("accepted {} of {count}", request.leads.len()),
            Err(e) => format!("refused: {e}"),
        };
        let peak = peak_rss_kb();
        drop(std::hint::black_box(outcome));
        println!(
            "body_bytes={} items={count} peak_kb={peak} {summary}",
            body.len()
        );
    }

    #[test]
    fn parsing_6_mb_peaks_under_64_mb() {
        for (name, _, _, expected) in cases() {
            let output = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "job::request::memory::parse_one_body_and_report_the_peak",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CASE_VARIABLE, name)
                .output()
                .expect("the test binary runs again");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{name}: {stdout}");
            // libtest prints the test's name on the same line, before the report.
            let report = stdout
                .lines()
                .find_map(|line| line.find("body_bytes=").map(|at| &line[at..]))
                .unwrap_or_else(|| panic!("{name}: no report in {stdout}"));
            eprintln!("{name}: {report}");
            let peak: u64 = report
                .split_whitespace()
                .find_map(|field| field.strip_prefix("peak_kb="))
                .and_then(|kb| kb.parse().ok())
                .expect("peak_kb");
            // The body itself is resident: a peak below it would not be a measurement.
            assert!(peak > (BODY_BYTES / 1024) as u64, "{name}: {report}");
            assert!(peak < PEAK_LIMIT_KB, "{name}: {report}");
            assert!(report.contains(expected), "{name}: {report}");
        }
    }
}
