//! `leads`: the imported leads, one row per email (the table's unique index decides which of
//! two imports of one email stores it). What an import does with an email already stored is
//! its `onExisting` choice: nothing (its lead then fails or is skipped) or an update, applied
//! only if no import accepted later has written the lead already (`written_at`).

use super::StoreError;
use crate::domain::OnExisting;
use crate::job::plan::{IndexedLead, QueuedChunk};
use sqlx::{Postgres, Row};
use std::collections::HashMap;

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

/// Writes all leads of the claimed entries; returns what became of each, by (import, email).
///
/// One statement per kind (insert only, or insert-or-update) and per *round*: a statement
/// may not touch one row twice, so when entries of several imports in one batch share an
/// email, its second lead goes in a second round, after the first is written. Nearly every
/// batch is one round.
pub(super) async fn write_leads<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    chunks: &[&'a QueuedChunk],
) -> Result<HashMap<(&'a str, &'a str), Written>, StoreError> {
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
    for mut rows in rounds {
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
            let touched = write(tx, &rows, update).await?;
            written.extend(rows.iter().map(|r| {
                let fate = touched
                    .get(r.1.lead.email.as_str())
                    .copied()
                    .unwrap_or(Written::Existing);
                ((r.0.import_id.as_str(), r.1.lead.email.as_str()), fate)
            }));
        }
    }
    Ok(written)
}

/// One statement over `rows` (emails unique among them): inserts, and with `update` updates a
/// stored lead whose values come from an import accepted no later than this one. Returns the
/// emails it wrote, created or updated.
async fn write<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    rows: &[LeadRow<'a>],
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
    // Each lead is written with its import's acceptance time, read from the job's row.
    let sql = format!(
        "INSERT INTO leads AS l (full_name, email, phone, status, source, attributes, created_by, import_id, written_at)
         SELECT u.full_name, u.email, u.phone, u.status, u.source, u.attributes::jsonb, u.created_by, u.import_id, j.created_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
              AS u(full_name, email, phone, status, source, attributes, created_by, import_id),
              import_jobs j
         WHERE j.import_id = u.import_id
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
