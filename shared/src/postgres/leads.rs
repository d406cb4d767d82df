//! `leads`: the imported leads, one row per email (the table's unique index decides which of
//! two imports of one email stores it). What an import does with an email already stored is
//! its `onExisting` choice: nothing (its lead then fails or is skipped) or an update, applied
//! only if no import accepted later has written the lead already (`written_at`).
//!
//! Leads that only insert go in by `COPY` first: Postgres writes a `COPY`'s rows in batches
//! (one heap and WAL operation per page rather than per row), which took about a quarter off
//! the drain's database CPU (BENCHMARKS.md, "Profiles, changes, and what did not help").
//! `COPY` has no `ON CONFLICT`, so a batch holding an email stored already fails with a
//! unique violation; its transaction is then rolled back and tried again with `INSERT … ON
//! CONFLICT`, which says lead by lead what happened. After such a conflict the next batches
//! go straight to the statement for a while (`CopyFirst`), so a file of leads mostly stored
//! already wastes few `COPY`s.

use super::StoreError;
use super::copy_text::CopyText;
use crate::domain::OnExisting;
use crate::job::plan::{IndexedLead, QueuedChunk};
use sqlx::{Postgres, Row};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use time::OffsetDateTime;

/// Batches that skip `COPY` after one met an email stored already.
const COPY_SKIPS_AFTER_CONFLICT: u32 = 16;

/// Whether the next batch tries `COPY` first; shared by a Store's clones (one per drain).
#[derive(Debug, Default)]
pub(super) struct CopyFirst {
    skips_left: AtomicU32,
}

impl CopyFirst {
    /// Whether to try `COPY` for this batch (counting down the skips after a conflict).
    pub(super) fn now(&self) -> bool {
        self.skips_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
    }

    pub(super) fn conflicted(&self) {
        self.skips_left
            .store(COPY_SKIPS_AFTER_CONFLICT, Ordering::Relaxed);
    }
}

/// When each import was accepted (`import_jobs.created_at`), by import id: what a lead's
/// `written_at` is.
pub(super) type AcceptedAt<'a> = HashMap<&'a str, OffsetDateTime>;

/// What became of one lead of a claimed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Created,
    Updated,
    /// The email was stored already and this lead changed nothing: not an update import, or
    /// one that a later-accepted import has overtaken.
    Existing,
}

type LeadRow<'a> = (&'a QueuedChunk, &'a IndexedLead);

/// What became of each lead, by (import, email).
pub(super) type Fates<'a> = HashMap<(&'a str, &'a str), Written>;

/// Writes all leads of the claimed entries; returns what became of each. With `copy`, leads
/// that only insert go by `COPY`; `None` then means an email was stored already, and `tx` is
/// aborted: roll it back and try again without.
///
/// One statement per kind (insert only, or insert-or-update) and per *round*: a statement
/// may not touch one row twice, so when entries of several imports in one batch share an
/// email, its second lead goes in a second round, after the first is written. Nearly every
/// batch is one round.
pub(super) async fn write_leads<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    chunks: &[&'a QueuedChunk],
    accepted: &AcceptedAt<'_>,
    copy: bool,
) -> Result<Option<Fates<'a>>, StoreError> {
    let mut rounds: Vec<Vec<LeadRow<'a>>> = Vec::new();
    let mut round_of_email: HashMap<&str, usize> = HashMap::new();
    for chunk in chunks {
        for lead in &chunk.leads {
            let round = round_of_email.entry(lead.lead.email.as_str()).or_insert(0);
            if rounds.len() == *round {
                rounds.push(Vec::new());
            }
            rounds[*round].push((chunk, lead));
            *round += 1;
        }
    }
    let mut written = HashMap::new();
    for (round, mut rows) in rounds.into_iter().enumerate() {
        // Sorted emails give every transaction the same lock order: no deadlocks between
        // drains working on overlapping entries.
        rows.sort_unstable_by(|a, b| a.1.lead.email.cmp(&b.1.lead.email));
        let (updating, inserting): (Vec<LeadRow<'a>>, Vec<LeadRow<'a>>) = rows
            .into_iter()
            .partition(|r| r.0.on_existing == OnExisting::Update);
        for (rows, update) in [(inserting, false), (updating, true)] {
            if rows.is_empty() {
                continue;
            }
            // A later round's emails are the first round's: `COPY` would only meet them.
            if copy && !update && round == 0 {
                if !copy_in(tx, &rows, accepted).await? {
                    return Ok(None);
                }
                written.extend(rows.iter().map(|r| {
                    let key = (r.0.import_id.as_str(), r.1.lead.email.as_str());
                    (key, Written::Created)
                }));
                continue;
            }
            let touched = write(tx, &rows, accepted, update).await?;
            written.extend(rows.iter().map(|r| {
                let fate = touched
                    .get(r.1.lead.email.as_str())
                    .copied()
                    .unwrap_or(Written::Existing);
                ((r.0.import_id.as_str(), r.1.lead.email.as_str()), fate)
            }));
        }
    }
    Ok(Some(written))
}

/// `COPY`s `rows` (emails unique among them) into `leads`: whether they all went in (`false`:
/// one's email was stored already, and `tx` is aborted).
async fn copy_in(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    rows: &[LeadRow<'_>],
    accepted: &AcceptedAt<'_>,
) -> Result<bool, StoreError> {
    // Each import's acceptance time as text, once per import rather than once per lead.
    let mut accepted_text: HashMap<&str, String> = HashMap::new();
    let mut text = CopyText::with_capacity(rows.len() * 192);
    for (chunk, lead) in rows {
        let attributes: std::borrow::Cow<str> = if lead.lead.attributes.is_empty() {
            "{}".into()
        } else {
            serde_json::to_string(lead.lead.attributes.as_map())
                .expect("text serializes")
                .into()
        };
        let written_at = accepted_text
            .entry(chunk.import_id.as_str())
            .or_insert_with(|| {
                written_at(accepted, chunk)
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("a timestamptz formats as RFC 3339")
            });
        text.column(Some(lead.lead.full_name.as_str()))
            .column(Some(lead.lead.email.as_str()))
            .column(lead.lead.phone.as_ref().map(|p| p.as_str()))
            .column(Some(lead.lead.status.as_str()))
            .column(Some(lead.lead.source.as_str()))
            .column(Some(&attributes))
            .column(Some(chunk.created_by.as_str()))
            .column(Some(chunk.import_id.as_str()))
            .column(Some(written_at))
            .end_row();
    }
    let mut copy = tx
        .copy_in_raw(
            "COPY leads (full_name, email, phone, status, source, attributes, created_by, import_id, written_at) FROM STDIN",
        )
        .await?;
    copy.send(text.into_bytes()).await?;
    match copy.finish().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") => {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// A lead's `written_at`: its import's acceptance time. The claim read it for every chunk it
/// claimed (the ledger's foreign key says the job exists), so the fallback, older than any
/// import, is never used.
fn written_at(accepted: &AcceptedAt<'_>, chunk: &QueuedChunk) -> OffsetDateTime {
    accepted
        .get(chunk.import_id.as_str())
        .copied()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One statement over `rows` (emails unique among them): inserts, and with `update` updates a
/// stored lead whose values come from an import accepted no later than this one. Returns the
/// emails it wrote, created or updated.
async fn write<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    rows: &[LeadRow<'a>],
    accepted: &AcceptedAt<'_>,
    update: bool,
) -> Result<HashMap<String, Written>, StoreError> {
    let on_conflict = if update {
        // Fields the import has replace the stored ones; a phone it lacks keeps the stored
        // one and attributes merge (a narrower file does not erase what a wider one gave).
        "ON CONFLICT (email) DO UPDATE SET full_name = excluded.full_name,
             phone = COALESCE(excluded.phone, l.phone), status = excluded.status,
             source = excluded.source, attributes = l.attributes || excluded.attributes,
             updated_by_import = excluded.import_id, updated_at = now(),
             written_at = excluded.written_at
         WHERE l.written_at <= excluded.written_at"
    } else {
        "ON CONFLICT (email) DO NOTHING"
    };
    let column = |f: for<'r> fn(&'r LeadRow<'a>) -> Option<&'a str>| -> Vec<Option<&'a str>> {
        rows.iter().map(f).collect()
    };
    let attributes: Vec<String> = rows
        .iter()
        .map(|r| serde_json::to_string(r.1.lead.attributes.as_map()).expect("text serializes"))
        .collect();
    // Each lead is written with its import's acceptance time.
    let written_at: Vec<OffsetDateTime> = rows.iter().map(|r| written_at(accepted, r.0)).collect();
    let sql = format!(
        "INSERT INTO leads AS l (full_name, email, phone, status, source, attributes, created_by, import_id, written_at)
         SELECT u.full_name, u.email, u.phone, u.status, u.source, u.attributes::jsonb, u.created_by, u.import_id, u.written_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
              AS u(full_name, email, phone, status, source, attributes, created_by, import_id, written_at)
         {on_conflict}
         RETURNING l.email, (l.xmax = 0) AS created"
    );
    let returned = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(column(|r| Some(r.1.lead.full_name.as_str())))
        .bind(column(|r| Some(r.1.lead.email.as_str())))
        .bind(column(|r| r.1.lead.phone.as_ref().map(|p| p.as_str())))
        .bind(column(|r| Some(r.1.lead.status.as_str())))
        .bind(column(|r| Some(r.1.lead.source.as_str())))
        .bind(attributes)
        .bind(column(|r| Some(r.0.created_by.as_str())))
        .bind(column(|r| Some(r.0.import_id.as_str())))
        .bind(written_at)
        .fetch_all(&mut **tx)
        .await?;
    Ok(returned
        .iter()
        .map(|r| {
            let fate = if r.get("created") {
                Written::Created
            } else {
                Written::Updated
            };
            (r.get::<String, _>("email"), fate)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_is_tried_first_and_skipped_for_a_while_after_a_conflict() {
        let copy_first = CopyFirst::default();
        assert!(copy_first.now() && copy_first.now());
        copy_first.conflicted();
        for _ in 0..COPY_SKIPS_AFTER_CONFLICT {
            assert!(!copy_first.now());
        }
        assert!(copy_first.now(), "tried again after the skips");
    }
}
