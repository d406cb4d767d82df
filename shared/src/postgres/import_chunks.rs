//! `import_chunks`: the ledger. One row per stream entry (a job's chunk) once its outcome is
//! decided, claimed in the same transaction that stores the chunk's leads (see the module
//! comment of `postgres` for why this makes replays harmless).

use super::leads::{AcceptedAt, Written, write_leads};
use super::{Store, StoreError};
use crate::domain::ImportId;
use crate::domain::OnExisting;
use crate::job::plan::QueuedChunk;
use crate::job::status::{ChunkOutcome, LeadError};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// Outcomes by `(import_id, seq)`.
pub type Outcomes = HashMap<(ImportId, u32), ChunkOutcome>;

/// What one transaction decided: the keys it claimed, and their outcomes.
type Decided<'a> = (HashSet<(&'a str, i32)>, Vec<(&'a ImportId, ChunkOutcome)>);

impl Store {
    /// Stores the leads of several entries in one transaction and returns every entry's outcome,
    /// keyed by `(import_id, seq)`: decided now, or recorded earlier by another delivery.
    pub async fn store_chunks<C: std::borrow::Borrow<QueuedChunk>>(
        &self,
        chunks: &[C],
    ) -> Result<Outcomes, StoreError> {
        let chunks: Vec<&QueuedChunk> = chunks.iter().map(|c| c.borrow()).collect();
        let mut outcomes = HashMap::with_capacity(chunks.len());
        if chunks.is_empty() {
            return Ok(outcomes);
        }
        // Sorted keys and emails give every transaction the same lock order: no deadlocks
        // between drains working on overlapping entries.
        let mut keys: Vec<(&str, i32)> = chunks
            .iter()
            .map(|c| (c.import_id.as_str(), c.seq as i32))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        // Without `COPY` a batch is always decided, so this loops at most twice.
        let mut copy = self.copy_first.now();
        let (claimed, decided) = loop {
            match self.decide(&chunks, &keys, copy).await? {
                Some(decided) => break decided,
                None => {
                    self.copy_first.conflicted();
                    copy = false;
                }
            }
        };
        outcomes.extend(decided.into_iter().map(|(id, o)| ((id.clone(), o.seq), o)));
        let replayed: Vec<(&str, i32)> =
            keys.into_iter().filter(|k| !claimed.contains(k)).collect();
        if !replayed.is_empty() {
            outcomes.extend(self.recorded_outcomes(&replayed).await?);
        }
        Ok(outcomes)
    }

    /// One transaction: claims the `keys` not claimed yet, writes their leads (with `copy`, by
    /// `COPY` first: see `leads`), records their outcomes. Returns the keys it claimed and
    /// their outcomes; `None` when `COPY` met an email stored already (nothing is committed).
    async fn decide<'a>(
        &self,
        chunks: &[&'a QueuedChunk],
        keys: &[(&'a str, i32)],
        copy: bool,
    ) -> Result<Option<Decided<'a>>, StoreError> {
        let mut tx = self.transaction().await?;
        let rows = sqlx::query(
            "INSERT INTO import_chunks (import_id, seq, successful, failed)
             SELECT k.import_id, k.seq, 0, 0 FROM unnest($1::text[], $2::int[]) AS k(import_id, seq)
             ON CONFLICT DO NOTHING
             RETURNING import_id, seq,
                       (SELECT created_at FROM import_jobs j WHERE j.import_id = import_chunks.import_id) AS accepted_at",
        )
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        // The claimed keys, as the borrowed keys they came from (`keys` is sorted).
        let key_of = |r: &sqlx::postgres::PgRow| -> Option<(&'a str, i32)> {
            let returned = (r.get::<&str, _>("import_id"), r.get::<i32, _>("seq"));
            let at = keys.binary_search_by(|k| k.cmp(&returned)).ok()?;
            Some(keys[at])
        };
        let claimed: HashSet<(&'a str, i32)> = rows.iter().filter_map(key_of).collect();

        let mine: Vec<&QueuedChunk> = {
            let mut seen = HashSet::new();
            chunks
                .iter()
                .copied()
                .filter(|c| claimed.contains(&(c.import_id.as_str(), c.seq as i32)))
                .filter(|c| seen.insert((c.import_id.as_str(), c.seq)))
                .collect()
        };
        let accepted: AcceptedAt<'a> = rows
            .iter()
            .filter_map(|r| Some((key_of(r)?.0, r.get::<OffsetDateTime, _>("accepted_at"))))
            .collect();
        let Some(written) = write_leads(&mut tx, &mine, &accepted, copy).await? else {
            // The transaction is aborted: dropping it rolls it back.
            return Ok(None);
        };
        fail::fail_point!("drain::before_commit", |_| Err(StoreError::Unavailable(
            sqlx::Error::PoolClosed
        )));

        let decided: Vec<(&ImportId, ChunkOutcome)> = mine
            .iter()
            .map(|chunk| {
                let mut outcome = ChunkOutcome {
                    seq: chunk.seq,
                    ..ChunkOutcome::default()
                };
                for lead in &chunk.leads {
                    let key = (chunk.import_id.as_str(), lead.lead.email.as_str());
                    match (written.get(&key), chunk.on_existing) {
                        (Some(Written::Created), _) => outcome.successful += 1,
                        (Some(Written::Updated), _) => {
                            outcome.successful += 1;
                            outcome.updated += 1;
                        }
                        (_, OnExisting::Skip | OnExisting::Update) => outcome.skipped += 1,
                        (_, OnExisting::Fail) => {
                            outcome.failed += 1;
                            outcome
                                .errors
                                .push(LeadError::email_exists(lead.index).at_line(lead.line));
                        }
                    }
                }
                (&chunk.import_id, outcome)
            })
            .collect();
        let recorded: Vec<(&str, &ChunkOutcome)> =
            decided.iter().map(|(id, o)| (id.as_str(), o)).collect();
        record_outcomes(&mut tx, &recorded).await?;
        tx.commit().await?;
        Ok(Some((claimed, decided)))
    }

    /// Records entries given up on: every lead they carry fails with `reason`. An entry whose
    /// outcome was already recorded keeps it (its leads were stored; nothing is failed twice).
    pub async fn record_dead(
        &self,
        import_id: &ImportId,
        seq: u32,
        leads: &[(u32, Option<u32>)],
        reason: &str,
    ) -> Result<ChunkOutcome, StoreError> {
        let errors: Vec<LeadError> = leads
            .iter()
            .map(|&(index, line)| LeadError::dead_letter(index, reason).at_line(line))
            .collect();
        let outcome = ChunkOutcome {
            seq,
            failed: errors.len() as u32,
            dead: true,
            errors,
            ..ChunkOutcome::default()
        };
        let mut tx = self.transaction().await?;
        sqlx::query(
            "INSERT INTO import_chunks (import_id, seq, successful, failed, dead, errors)
             SELECT $1, $2, 0, $3, true, $4 WHERE EXISTS (SELECT 1 FROM import_jobs WHERE import_id = $1)
             ON CONFLICT DO NOTHING",
        )
        .bind(import_id.as_str())
        .bind(seq as i32)
        .bind(outcome.failed as i32)
        .bind(Json(&outcome.errors))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let recorded = self
            .recorded_outcomes(&[(import_id.as_str(), seq as i32)])
            .await?;
        Ok(recorded.into_values().next().unwrap_or(outcome))
    }

    /// Forgets a dead chunk's outcome so that a re-driven entry is stored afresh. A chunk
    /// whose leads were stored (not dead), or one of a cancelled job (nothing may be stored
    /// after the cancel), is left alone: returns whether a row was removed.
    pub async fn forget_dead_outcome(
        &self,
        import_id: &ImportId,
        seq: u32,
    ) -> Result<bool, StoreError> {
        let removed =
            sqlx::query("DELETE FROM import_chunks WHERE import_id = $1 AND seq = $2 AND dead
                         AND NOT EXISTS (SELECT 1 FROM import_jobs WHERE import_id = $1 AND cancelled_at IS NOT NULL)")
                .bind(import_id.as_str())
                .bind(seq as i32)
                .execute(&mut *self.connection().await?)
                .await?;
        Ok(removed.rows_affected() == 1)
    }

    async fn recorded_outcomes(&self, keys: &[(&str, i32)]) -> Result<Outcomes, StoreError> {
        let rows = sqlx::query(
            "SELECT c.import_id, c.seq, c.successful, c.updated, c.skipped, c.failed, c.dead, c.errors
             FROM import_chunks c JOIN unnest($1::text[], $2::int[]) AS k(import_id, seq) USING (import_id, seq)",
        )
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .fetch_all(&mut *self.connection().await?)
        .await?;
        // Ids are recorded from parsed ids, so they parse again.
        Ok(rows
            .iter()
            .filter_map(|r| {
                let import_id = ImportId::parse(r.get::<&str, _>("import_id")).ok()?;
                Some((
                    (import_id, r.get::<i32, _>("seq") as u32),
                    outcome_from_row(r),
                ))
            })
            .collect())
    }
}

async fn record_outcomes(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    outcomes: &[(&str, &ChunkOutcome)],
) -> Result<(), StoreError> {
    // Nothing claimed (every entry a replay): no statement. `push_values` must not see an
    // empty list (sqlx debug-asserts on it, which panicked every replay in debug builds).
    if outcomes.is_empty() {
        return Ok(());
    }
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "UPDATE import_chunks AS c SET successful = v.successful, updated = v.updated, skipped = v.skipped, failed = v.failed, errors = v.errors, processed_at = now()
         FROM (",
    );
    query.push_values(outcomes, |mut row, &(import_id, o)| {
        row.push_bind(import_id)
            .push_bind(o.seq as i32)
            .push_bind(o.successful as i32)
            .push_bind(o.updated as i32)
            .push_bind(o.skipped as i32)
            .push_bind(o.failed as i32)
            .push_bind(Json(&o.errors));
    });
    query.push(
        ") AS v(import_id, seq, successful, updated, skipped, failed, errors) WHERE c.import_id = v.import_id AND c.seq = v.seq",
    );
    query.build().execute(&mut **tx).await?;
    Ok(())
}

pub(super) fn outcome_from_row(r: &sqlx::postgres::PgRow) -> ChunkOutcome {
    ChunkOutcome {
        seq: r.get::<i32, _>("seq") as u32,
        successful: r.get::<i32, _>("successful") as u32,
        updated: r.get::<i32, _>("updated") as u32,
        skipped: r.get::<i32, _>("skipped") as u32,
        failed: r.get::<i32, _>("failed") as u32,
        dead: r.get("dead"),
        errors: r.get::<Json<Vec<LeadError>>, _>("errors").0,
    }
}
