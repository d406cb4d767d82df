//! `leads`: the imported leads, one row per email (the table's unique index decides which of
//! two imports of one email wins).

use super::StoreError;
use crate::job::plan::{IndexedLead, QueuedChunk};
use sqlx::{Postgres, Row};
use std::collections::{HashMap, HashSet};

type LeadRow<'a> = (&'a QueuedChunk, &'a IndexedLead);

/// One INSERT for all leads of the claimed entries; returns the (import, email) pairs stored.
/// An email already in the table is skipped by `ON CONFLICT DO NOTHING` and so not returned.
pub(super) async fn insert_leads<'a>(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    chunks: &[&'a QueuedChunk],
) -> Result<HashSet<(&'a str, &'a str)>, StoreError> {
    let mut rows: Vec<LeadRow<'a>> = chunks
        .iter()
        .flat_map(|c| c.leads.iter().map(move |l| (*c, l)))
        .collect();
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    rows.sort_unstable_by(|a, b| a.1.lead.email.cmp(&b.1.lead.email));
    let column = |f: for<'r> fn(&'r LeadRow<'a>) -> Option<&'a str>| -> Vec<Option<&'a str>> {
        rows.iter().map(f).collect()
    };
    let returned = sqlx::query(
        "INSERT INTO leads (full_name, email, phone, status, source, created_by, import_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
         ON CONFLICT (email) DO NOTHING RETURNING import_id, email",
    )
    .bind(column(|r| Some(r.1.lead.full_name.as_str())))
    .bind(column(|r| Some(r.1.lead.email.as_str())))
    .bind(column(|r| r.1.lead.phone.as_ref().map(|p| p.as_str())))
    .bind(column(|r| Some(r.1.lead.status.as_str())))
    .bind(column(|r| Some(r.1.lead.source.as_str())))
    .bind(column(|r| Some(r.0.created_by.as_str())))
    .bind(column(|r| Some(r.0.import_id.as_str())))
    .fetch_all(&mut **tx)
    .await?;
    // Map the returned rows back to borrowed strings of the input.
    let position: HashMap<(&str, &str), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.0.import_id.as_str(), r.1.lead.email.as_str()), i))
        .collect();
    Ok(returned
        .iter()
        .filter_map(|r| {
            position
                .get(&(r.get::<&str, _>("import_id"), r.get::<&str, _>("email")))
                .copied()
        })
        .map(|i| (rows[i].0.import_id.as_str(), rows[i].1.lead.email.as_str()))
        .collect())
}
