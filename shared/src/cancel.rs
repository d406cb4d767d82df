//! Use case: cancel an import. The chunks not stored yet are decided as cancelled in the
//! ledger (their leads fail with code `cancelled`), the ones stored stay stored, and no drain
//! can store a chunk after it was decided (see `postgres::cancel` for why). Idempotent: a
//! cancelled import answers its document again; a finished one cannot be cancelled.
//!
//! Another caller's job answers exactly like an unknown one, as for status.

use crate::domain::ImportId;
use crate::job::caller::Caller;
use crate::job::status::JobStatus;
use crate::postgres::{Cancelled, Store, StoreError};
use crate::redis::status_cache::StatusCache;
use crate::webhook::Notifications;

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("{0}")]
    InvalidId(String),
    #[error("no import with id {0}")]
    NotFound(ImportId),
    #[error("import {0} has finished: there is nothing left to cancel")]
    Finished(ImportId),
    #[error("could not cancel the import: {0}")]
    Unavailable(#[source] StoreError),
}

/// What the cancel did, with the import's document after it.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelAnswer {
    /// Cancelled by this request.
    CancelledNow(JobStatus),
    /// Cancelled before; nothing changed.
    AlreadyCancelled(JobStatus),
}

pub async fn cancel_import(
    store: &Store,
    cache: &StatusCache,
    notifications: &Notifications,
    caller: &Caller,
    raw_id: &str,
) -> Result<CancelAnswer, CancelError> {
    let import_id = ImportId::parse(raw_id).map_err(CancelError::InvalidId)?;
    match store.job_owner(&import_id).await.map_err(unavailable)? {
        Some(owner) if caller.may_see(&owner) => {}
        _ => return Err(CancelError::NotFound(import_id)),
    }
    let cancelled = store.cancel_job(&import_id).await.map_err(unavailable)?;
    let now = match cancelled {
        Cancelled::Unknown => return Err(CancelError::NotFound(import_id)),
        Cancelled::Finished => return Err(CancelError::Finished(import_id)),
        Cancelled::Already => false,
        Cancelled::Now { chunks } => {
            tracing::info!(import_id = %import_id, chunks = chunks.len(), "import cancelled");
            true
        }
    };
    // Ended now (or by the earlier cancel, should that one have failed right here).
    notifications
        .owe(store, &[import_id.as_str()])
        .await
        .map_err(unavailable)?;
    // The cached document no longer says what Postgres decided: dropped, it is rebuilt on
    // the next drain. Should Redis be unreachable, a poll still gets Postgres's document
    // (the cache counts fewer decided chunks than Postgres: see `status`).
    if let Err(e) = cache.forget_job(&import_id).await {
        tracing::warn!(error = %e, import_id = %import_id, "could not drop the cached status of a cancelled import");
    }
    let status = store
        .load_job(&import_id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| CancelError::NotFound(import_id.clone()))?
        .into_status();
    Ok(if now {
        CancelAnswer::CancelledNow(status)
    } else {
        CancelAnswer::AlreadyCancelled(status)
    })
}

fn unavailable(e: StoreError) -> CancelError {
    tracing::error!(error = %e, "could not cancel an import");
    CancelError::Unavailable(e)
}
