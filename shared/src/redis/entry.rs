//! One stream entry: a job's chunk as Redis fields `importId`, `seq`, `createdBy`,
//! `onExisting` (absent in entries written before it: `fail`) and `leads` (the chunk's leads as
//! [`leads_json`]).
//!
//! Entries are read back as untrusted input: a deploy may have changed the format, or someone
//! may have written to the stream by hand. Every field is decoded through the same
//! constructors a request goes through (`ImportId::parse`, `CreatedBy::parse`,
//! `Lead::from_fields`, through `leads_json`), so nothing unchecked reaches Postgres; an entry that does not decode
//! is a poison entry, and the reason says which field of which lead, never its value.

use crate::domain::{CreatedBy, ImportId, OnExisting};
use crate::job::leads_json;
use crate::job::plan::QueuedChunk;
use ::redis::Value;
use std::collections::HashMap;

/// One entry handed to this consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub fields: HashMap<String, Value>,
}

impl Delivery {
    /// The job and chunk the entry names, if those two fields decode (its leads may not).
    pub fn key(&self) -> Option<(ImportId, u32)> {
        let text =
            |name: &str| ::redis::from_redis_value_ref::<String>(self.fields.get(name)?).ok();
        Some((
            ImportId::parse(&text("importId")?).ok()?,
            text("seq")?.parse().ok()?,
        ))
    }

    /// Reads the chunk the entry carries; `Err` names what is wrong with a poison entry.
    pub fn decode(&self) -> Result<QueuedChunk, String> {
        let text = |name: &str| -> Result<String, String> {
            let value = self
                .fields
                .get(name)
                .ok_or_else(|| format!("field {name} is missing"))?;
            ::redis::from_redis_value_ref::<String>(value)
                .map_err(|_| format!("field {name} is not text"))
        };
        let import_id = ImportId::parse(&text("importId")?)
            .map_err(|_| "field importId is not a valid import id".to_owned())?;
        let seq = text("seq")?
            .parse::<u32>()
            .map_err(|_| "field seq is not a number".to_owned())?;
        let created_by = CreatedBy::parse(&text("createdBy")?)
            .map_err(|e| format!("field createdBy breaks its rule ({})", e.code))?;
        let on_existing = match self.fields.get("onExisting") {
            None => OnExisting::default(),
            Some(_) => OnExisting::parse(&text("onExisting")?)
                .map_err(|_| "field onExisting is not fail, skip or update".to_owned())?,
        };
        let leads = leads_json::decode(&text("leads")?)?;
        Ok(QueuedChunk {
            import_id,
            seq,
            created_by,
            on_existing,
            leads,
        })
    }
}

impl From<::redis::streams::StreamId> for Delivery {
    fn from(entry: ::redis::streams::StreamId) -> Self {
        Delivery {
            id: entry.id,
            fields: entry.map,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Lead, LeadInput};
    use crate::job::plan::IndexedLead;

    fn delivery(fields: &[(&str, &str)]) -> Delivery {
        Delivery {
            id: "1-0".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), Value::BulkString(v.as_bytes().to_vec())))
                .collect(),
        }
    }

    fn lead(json: &str) -> IndexedLead {
        let input: LeadInput = serde_json::from_str(json).unwrap();
        IndexedLead {
            index: 7,
            line: Some(9),
            lead: Lead::parse(&input).unwrap(),
        }
    }

    #[test]
    fn a_chunk_round_trips_through_its_fields() {
        let leads = vec![
            lead(r#"{"fullName":"Ada","email":"ada@x.io","phone":"+1 234 567 890"}"#),
            lead(r#"{"fullName":"Bo \"B\"","email":"bo@x.io","status":"lost"}"#),
        ];
        let field = leads_json::encode(&leads);
        let chunk = delivery(&[
            ("importId", "job-1"),
            ("seq", "3"),
            ("createdBy", "u1"),
            ("leads", &field),
        ])
        .decode()
        .unwrap();
        assert_eq!(chunk.import_id.as_str(), "job-1");
        assert_eq!((chunk.seq, chunk.created_by.as_str()), (3, "u1"));
        assert_eq!(chunk.leads, leads);
    }

    #[test]
    fn leads_that_break_a_rule_make_a_poison_entry_whose_reason_quotes_no_value() {
        let bad = r#"[{"index":4,"fullName":"Ada","email":"secret-not-an-email","status":"NEW","source":"OTHER"}]"#;
        let reason = delivery(&[
            ("importId", "job-1"),
            ("seq", "0"),
            ("createdBy", "u1"),
            ("leads", bad),
        ])
        .decode()
        .unwrap_err();
        assert_eq!(
            reason,
            "lead 4: field email breaks its rule (invalid_email)"
        );

        let reason = delivery(&[
            ("importId", "job-1"),
            ("seq", "0"),
            ("createdBy", "u1"),
            ("leads", r#"[{"index":"secret"}]"#),
        ])
        .decode()
        .unwrap_err();
        assert!(!reason.contains("secret"), "{reason}");
    }

    #[test]
    fn ids_are_checked_too() {
        let reason = delivery(&[
            ("importId", "bad id"),
            ("seq", "0"),
            ("createdBy", "u1"),
            ("leads", "[]"),
        ])
        .decode()
        .unwrap_err();
        assert_eq!(reason, "field importId is not a valid import id");
        let reason = delivery(&[
            ("importId", "j"),
            ("seq", "0"),
            ("createdBy", ""),
            ("leads", "[]"),
        ])
        .decode()
        .unwrap_err();
        assert!(reason.starts_with("field createdBy"), "{reason}");
    }
}
