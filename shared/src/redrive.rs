//! Re-driving dead letters: after an operator fixed what made entries fail (a database
//! constraint, an outage longer than `MAX_DELIVERIES` claims), their chunks go back on the
//! stream and are stored like new ones. `leads-local redrive` and `make redrive` call this.
//! (A use case: the decisions are here, the commands in `redis::stream` and `postgres`.)
//!
//! Per dead letter, in this order: forget the chunk's dead outcome in Postgres, drop it from
//! the status cache, then XADD the chunk and XDEL the dead letter in one MULTI. A crash in
//! between leaves the dead letter in place, so running the re-drive again finishes the job;
//! the drain's outcome rows keep any lead from being stored twice.

use crate::app::App;
use crate::drain::DrainError;
use serde::Serialize;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct RedriveReport {
    /// Chunks put back on the stream.
    pub requeued: u64,
    /// Dead letters that carry no decodable chunk (left in place; inspect them by hand).
    pub undecodable: u64,
}

/// Re-drives every dead letter, or only the one with id `only`.
pub async fn redrive_dead_letters(
    app: &App,
    only: Option<&str>,
) -> Result<RedriveReport, DrainError> {
    let mut report = RedriveReport::default();
    for letter in app.queue.dead_letters(100_000).await? {
        if only.is_some_and(|id| id != letter.id) {
            continue;
        }
        let Ok(chunk) = letter.decode() else {
            report.undecodable += 1;
            continue;
        };
        app.store
            .forget_dead_outcome(&chunk.import_id, chunk.seq)
            .await?;
        app.cache
            .forget_outcome(&chunk.import_id, chunk.seq)
            .await?;
        app.queue.requeue_dead_letter(&letter.id, &chunk).await?;
        tracing::info!(dead_letter = %letter.id, import_id = %chunk.import_id, seq = chunk.seq, "dead letter re-driven");
        report.requeued += 1;
    }
    Ok(report)
}
