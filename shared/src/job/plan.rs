//! From an accepted request to what gets queued: every lead judged, duplicates inside the
//! import found, the valid leads cut into stream entries of at most `BATCH_SIZE`.
//!
//! All of this is decided before anything is written, so a request either queues its whole
//! plan or nothing.

use crate::domain::{CreatedBy, Email, ImportId, Lead, OnExisting};
use crate::job::leads_json;
use crate::job::original_rows::OriginalRow;
use crate::job::request::ImportRequest;
use crate::job::status::LeadError;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A valid lead with its position in the request, as it travels through the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedLead {
    pub index: u32,
    /// A CSV import's line where the lead's record starts; it travels with the lead (stream
    /// entry, payload) so the drain's errors can name it.
    pub line: Option<u32>,
    pub lead: Lead,
}

/// One stream entry's worth of leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub seq: u32,
    pub leads: Vec<IndexedLead>,
}

/// What one stream entry carries: a chunk of one job, with what the drain needs to store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedChunk {
    pub import_id: ImportId,
    pub seq: u32,
    pub created_by: CreatedBy,
    /// The job's choice for leads already stored.
    pub on_existing: OnExisting,
    pub leads: Vec<IndexedLead>,
}

#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub import_id: ImportId,
    pub created_by: CreatedBy,
    pub on_existing: OnExisting,
    pub total: u64,
    /// Identifies the request's content, so a retry can be told from a different import that
    /// reuses the id. It covers the judged leads, not the bytes: key order and spacing do not
    /// make two requests different.
    pub payload_hash: String,
    /// Leads refused before queueing, already final.
    pub rejected: Vec<LeadError>,
    /// What the refused leads carried, for the errors report (kept with the job).
    pub rejected_rows: Vec<OriginalRow>,
    pub chunks: Vec<Chunk>,
    /// `BATCH_SIZE` when planned: with `rejected`, it tells which leads each chunk holds.
    pub batch_size: usize,
    /// The import whose failures this one retries (set by the retry, never by a request).
    pub parent_import_id: Option<ImportId>,
    /// Where to POST the notification that the import ended.
    pub callback_url: Option<String>,
    /// Each chunk's leads as [`leads_json`], written on first use (`chunks` is final by
    /// then): the stream entries and the durable payload carry the same JSON, written once.
    chunks_json: OnceLock<Vec<String>>,
}

impl ImportPlan {
    pub fn new(request: ImportRequest, batch_size: usize) -> Self {
        let import_id = request.import_id.unwrap_or_else(ImportId::generate);
        let mut hasher = Sha256::new();
        hasher.update(request.created_by.as_str());
        // What the import does with existing leads is part of its content; the default adds
        // nothing, so jobs recorded before the choice existed keep their hash.
        let on_existing = request.on_existing.unwrap_or_default();
        if on_existing != OnExisting::Fail {
            hasher.update([0x1c]);
            hasher.update(on_existing.as_str());
        }
        let mut first_index_of_email: HashMap<Email, u32> =
            HashMap::with_capacity(request.leads.len());
        let mut valid = Vec::with_capacity(request.leads.len());
        let mut rejected = Vec::new();
        let mut rejected_rows = Vec::new();
        for (index, input) in request.leads.iter().enumerate() {
            let line = request.lines.get(index).copied();
            let index = index as u32;
            let outcome =
                Lead::parse(input).map_err(|e| LeadError::invalid(index, e).at_line(line));
            let outcome = outcome.and_then(|lead| match first_index_of_email.get(&lead.email) {
                Some(&first) => Err(LeadError::duplicate_in_import(index, first).at_line(line)),
                None => {
                    first_index_of_email.insert(lead.email.clone(), index);
                    Ok(lead)
                }
            });
            match outcome {
                Ok(lead) => {
                    for part in [
                        lead.full_name.as_str(),
                        lead.email.as_str(),
                        lead.phone.as_ref().map_or("", |p| p.as_str()),
                        lead.status.as_str(),
                        lead.source.as_str(),
                    ] {
                        hasher.update([0x1f]);
                        hasher.update(part);
                    }
                    for (name, value) in lead.attributes.iter() {
                        hasher.update([0x1c]);
                        hasher.update(name);
                        hasher.update([0x1f]);
                        hasher.update(value);
                    }
                    valid.push(IndexedLead { index, line, lead });
                }
                Err(err) => {
                    hasher.update([0x1e]);
                    hasher.update(&err.code);
                    rejected.push(err);
                    rejected_rows.push(OriginalRow::of_input(index, input));
                }
            }
            hasher.update([0x1d]);
        }
        let mut chunks = Vec::with_capacity(valid.len().div_ceil(batch_size));
        let mut leads = valid.into_iter().peekable();
        while leads.peek().is_some() {
            chunks.push(Chunk {
                seq: chunks.len() as u32,
                leads: leads.by_ref().take(batch_size).collect(),
            });
        }
        ImportPlan {
            import_id,
            created_by: request.created_by,
            on_existing,
            total: request.leads.len() as u64,
            payload_hash: hex::encode(hasher.finalize()),
            rejected,
            rejected_rows,
            chunks,
            batch_size,
            parent_import_id: None,
            callback_url: request.callback_url,
            chunks_json: OnceLock::new(),
        }
    }

    /// Each chunk's leads as [`leads_json`], in `seq` order.
    pub fn chunks_json(&self) -> &[String] {
        self.chunks_json.get_or_init(|| {
            self.chunks
                .iter()
                .map(|c| leads_json::encode(&c.leads))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(body: &str, batch: usize) -> ImportPlan {
        ImportPlan::new(ImportRequest::parse(body.as_bytes(), 100).unwrap(), batch)
    }

    fn leads(emails: &[&str]) -> String {
        let leads: Vec<String> = emails
            .iter()
            .map(|e| format!(r#"{{"fullName":"N","email":"{e}"}}"#))
            .collect();
        format!(
            r#"{{"importId":"i","createdBy":"u","leads":[{}]}}"#,
            leads.join(",")
        )
    }

    #[test]
    fn chunks_hold_at_most_batch_size_leads_in_order() {
        let p = plan(
            &leads(&["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"]),
            2,
        );
        let sizes: Vec<usize> = p.chunks.iter().map(|c| c.leads.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        assert_eq!(p.chunks[2].seq, 2);
        assert_eq!(p.chunks[2].leads[0].index, 4);
        assert_eq!(p.total, 5);
    }

    #[test]
    fn invalid_leads_are_rejected_with_their_index_and_skipped() {
        let p = plan(&leads(&["a@x.io", "bad", "c@x.io"]), 50);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(
            (p.rejected[0].index, p.rejected[0].code.as_str()),
            (1, "invalid_email")
        );
        let indexes: Vec<u32> = p.chunks[0].leads.iter().map(|l| l.index).collect();
        assert_eq!(indexes, [0, 2]);
    }

    #[test]
    fn a_later_duplicate_names_the_first_index() {
        let p = plan(&leads(&["a@x.io", "b@x.io", "A@X.io "]), 50);
        assert_eq!(p.rejected[0].index, 2);
        assert_eq!(
            p.rejected[0].error,
            "Duplicate email in this import: same as lead 0"
        );
    }

    #[test]
    fn nothing_valid_means_no_chunks() {
        assert!(plan(&leads(&["bad", "worse"]), 50).chunks.is_empty());
    }

    #[test]
    fn the_hash_ignores_formatting_but_not_content() {
        let a = plan(
            r#"{"importId":"i","createdBy":"u","leads":[{"fullName":"N","email":"a@x.io"}]}"#,
            50,
        );
        let b = plan(
            r#"{ "leads" : [ { "email" : "A@x.io", "fullName" : " N " } ], "createdBy" : "u" , "importId":"i"}"#,
            50,
        );
        let c = plan(
            r#"{"importId":"i","createdBy":"u","leads":[{"fullName":"M","email":"a@x.io"}]}"#,
            50,
        );
        let d = plan(
            r#"{"importId":"i","createdBy":"v","leads":[{"fullName":"N","email":"a@x.io"}]}"#,
            50,
        );
        assert_eq!(a.payload_hash, b.payload_hash);
        assert_ne!(a.payload_hash, c.payload_hash);
        assert_ne!(a.payload_hash, d.payload_hash);
        // The existing-lead choice and the attributes are content too; the default choice
        // keeps the hash jobs were recorded with before it existed.
        let e = plan(
            r#"{"importId":"i","createdBy":"u","onExisting":"update","leads":[{"fullName":"N","email":"a@x.io"}]}"#,
            50,
        );
        let f = plan(
            r#"{"importId":"i","createdBy":"u","leads":[{"fullName":"N","email":"a@x.io","attributes":{"Tier":"2"}}]}"#,
            50,
        );
        let g = plan(
            r#"{"importId":"i","createdBy":"u","onExisting":"fail","leads":[{"fullName":"N","email":"a@x.io"}]}"#,
            50,
        );
        assert_ne!(a.payload_hash, e.payload_hash);
        assert_ne!(a.payload_hash, f.payload_hash);
        assert_eq!(a.payload_hash, g.payload_hash);
        assert_eq!(
            a.payload_hash, "a32a3cf65e725b6618bae24730362d7689acb8513162d454354814a7a1242716",
            "the hash of an import recorded before attributes and onExisting is unchanged"
        );
    }
}
