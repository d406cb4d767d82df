//! Use case: retry an import's failures. A new import (its own id, linked both ways: the
//! child's `parentImportId`, the parent's `childImportIds`) of the failed leads that may pass
//! when tried again (given up on by the drain: `dead_letter`, or `cancelled`), or of every
//! failed lead with `all`. Their values come from what Postgres kept of the parent (the
//! durable payload, and the refused leads' text), so the child goes through the same rules
//! and pipeline as any import. Only a finished import can be retried: while it runs, its
//! failures are not known yet.
//!
//! Another caller's job answers exactly like an unknown one, as for status.

use crate::domain::{CreatedBy, ImportId, LeadInput};
use crate::import::{ImportAnswer, ImportError, ImportLimits, accept_plan};
use crate::job::caller::Caller;
use crate::job::plan::ImportPlan;
use crate::job::request::ImportRequest;
use crate::job::status::JobState;
use crate::ports::{DrainKicker, JobQueue};
use crate::postgres::{Store, StoreError};
use crate::redis::status_cache::StatusCache;

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("{0}")]
    InvalidId(String),
    #[error("no import with id {0}")]
    NotFound(ImportId),
    #[error("import {0} has not finished: its failures are not known yet")]
    Unfinished(ImportId),
    #[error("import {0} has no failed lead to retry")]
    NothingToRetry(ImportId),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("could not read the import to retry: {0}")]
    Unavailable(#[source] StoreError),
}

/// The retry accepted: the new import.
#[derive(Debug, Clone, PartialEq)]
pub struct Retried {
    pub import_id: ImportId,
    pub parent_import_id: ImportId,
    pub state: JobState,
    pub total: u64,
}

/// The stores a retry writes to, as an import does.
pub struct RetryStores<'a, Q, K> {
    pub store: &'a Store,
    pub queue: &'a Q,
    pub cache: &'a StatusCache,
    pub kicker: &'a K,
}

pub async fn retry_failures<Q: JobQueue, K: DrainKicker>(
    stores: RetryStores<'_, Q, K>,
    limits: ImportLimits,
    caller: &Caller,
    raw_id: &str,
    all: bool,
) -> Result<Retried, RetryError> {
    let store = stores.store;
    let parent = ImportId::parse(raw_id).map_err(RetryError::InvalidId)?;
    let Some(job) = store.load_job(&parent).await.map_err(unavailable)? else {
        return Err(RetryError::NotFound(parent));
    };
    if !caller.may_see(&job.created_by) {
        return Err(RetryError::NotFound(parent));
    }
    if !job.state().is_finished() {
        return Err(RetryError::Unfinished(parent));
    }
    let errors = store
        .errors_after(&parent, None, u32::MAX as usize)
        .await
        .map_err(unavailable)?;
    let rows = store.original_rows(&parent).await.map_err(unavailable)?;
    // In the parent's order; a lead whose values were never kept (a job accepted before the
    // payload was) cannot be retried.
    let leads: Vec<LeadInput> = errors
        .iter()
        .filter(|e| all || e.is_transient())
        .filter_map(|e| rows.get(&e.index))
        .map(|row| {
            LeadInput::from_cells(
                row.values.each_ref().map(|v| v.as_deref()),
                row.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
        })
        .collect();
    if leads.is_empty() {
        return Err(RetryError::NothingToRetry(parent));
    }
    let created_by = CreatedBy::parse(&job.created_by)
        .map_err(|e| unavailable(StoreError::Payload(format!("created_by ({})", e.code))))?;
    let request = ImportRequest {
        import_id: Some(ImportId::generate()),
        created_by,
        leads,
        lines: Vec::new(),
        // The parent's choice for leads already stored, and no dry run.
        on_existing: Some(job.on_existing),
        dry_run: false,
        // The parent's own notification said it ended; the child's end goes to the
        // deployment's `WEBHOOK_URL` only.
        callback_url: None,
    };
    let mut plan = ImportPlan::new(request, limits.batch_size);
    plan.parent_import_id = Some(parent.clone());
    let import_id = plan.import_id.clone();
    let answer = accept_plan(store, stores.queue, stores.cache, stores.kicker, plan, None).await?;
    let (state, total) = match answer {
        ImportAnswer::Accepted { state, total, .. } => (state, total),
        // A fresh id is never accepted before; were it, its document says where it stands.
        ImportAnswer::AlreadyAccepted(status) => (status.status, status.progress.total),
        // `accept_plan` records a plan; only `accept_import` answers dry runs.
        ImportAnswer::DryRun(report) => (crate::job::status::JobState::Pending, report.total),
    };
    tracing::info!(import_id = %import_id, parent = %parent, total, all, "import's failures retried");
    // The parent's cached document, finished and so served as it is, learns of its child.
    match store.child_import_ids(&parent).await {
        Ok(children) => {
            if let Err(e) = stores.cache.set_children(&parent, &children).await {
                tracing::warn!(error = %e, import_id = %parent, "could not note a retry in the cached status");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, import_id = %parent, "could not read an import's retries")
        }
    }
    Ok(Retried {
        import_id,
        parent_import_id: parent,
        state,
        total,
    })
}

fn unavailable(e: StoreError) -> RetryError {
    tracing::error!(error = %e, "could not retry an import");
    RetryError::Unavailable(e)
}
