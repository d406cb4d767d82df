//! Use case: accept an import request.
//!
//! The request is parsed and planned first (nothing is written for a bad one), then recorded
//! in Postgres with its valid leads (the durable payload): from that commit on the import is
//! accepted, whatever happens to Redis. Queueing it (the status document and every entry in
//! one script) is tried at once and, when Redis cannot take it, done later by the reconciler
//! (`reconcile`), from the payload. Once queued, a drain is kicked (`drain_starter`), so the
//! leads start moving without waiting for the schedule. The answer, by what was found:
//!
//! | recorded before?               | answer                                              |
//! | ------------------------------ | --------------------------------------------------- |
//! | no                             | `Accepted` (202), queued now or by the reconciler   |
//! | yes, other content             | `Conflict` (409)                                    |
//! | yes, same content              | `AlreadyAccepted` with its status (200); queued now |
//! |                                | if it was not yet                                   |
//! | Postgres unreachable           | `Unavailable` (503): nothing accepted; retry        |

use crate::domain::ImportId;
use crate::domain::{CreatedBy, OnExisting};
use crate::job::caller::{Caller, UnusableIdentity};
use crate::job::csv_request::{ColumnMapping, CsvImport, ImportOptions};
use crate::job::plan::ImportPlan;
use crate::job::request::{ImportRequest, RequestError};
use crate::job::status::{JobSnapshot, JobState, JobStatus};
use crate::ports::{
    DrainKicker, Enqueued, JobInsert, JobQueue, JobRecords, StatusCacheReader, Unavailable,
};
use crate::status::current_snapshot;
use time::OffsetDateTime;

/// The limits an import is planned under (`MAX_LEADS_PER_IMPORT`, `BATCH_SIZE`, and where a
/// `callbackUrl` may point).
#[derive(Debug, Clone)]
pub struct ImportLimits {
    pub max_leads: usize,
    pub batch_size: usize,
    /// `WEBHOOK_ALLOWED_HOSTS` when notifications are on (`WEBHOOK_SECRET` set); `None`
    /// refuses every `callbackUrl`.
    pub callbacks: Option<std::sync::Arc<crate::webhook::AllowList>>,
}

/// A request's `callbackUrl`, if any, is one notifications may be sent to (see `webhook`).
async fn check_callback(request: &ImportRequest, limits: &ImportLimits) -> Result<(), ImportError> {
    let Some(url) = &request.callback_url else {
        return Ok(());
    };
    let refused = |message: String| {
        let errors = vec![crate::job::request::InvalidParam {
            pointer: "/callbackUrl".to_owned(),
            message: message.clone(),
        }];
        ImportError::Request(RequestError::invalid(message, errors))
    };
    let Some(allow) = &limits.callbacks else {
        return Err(refused(
            "callbackUrl cannot be used: this deployment sends no notifications".to_owned(),
        ));
    };
    crate::webhook::check_url(url, allow)
        .await
        .map(drop)
        .map_err(|e| refused(e.to_string()))
}

#[derive(Debug, PartialEq)]
pub enum ImportAnswer {
    /// Queued by this call (202).
    Accepted {
        import_id: ImportId,
        state: JobState,
        total: u64,
        /// How a CSV body's columns were read; `None` for JSON.
        mapping: Option<ColumnMapping>,
    },
    /// The same request was accepted before (200): the job's current status.
    AlreadyAccepted(Box<JobStatus>),
    /// The request asked for a dry run (200): what the import would do; nothing written.
    DryRun(DryRunReport),
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Identity(#[from] UnusableIdentity),
    #[error("import {0} exists with different content")]
    Conflict(ImportId),
    #[error("could not {doing}: {source}")]
    Unavailable {
        doing: &'static str,
        #[source]
        source: Unavailable,
    },
}

/// An import's body with its format: what the `Content-Type` said it is.
#[derive(Debug, Clone, Copy)]
pub enum ImportBody<'a> {
    /// `application/json`: the request object, ids included; the query may say `onExisting`
    /// when the body does not.
    Json(&'a [u8], &'a ImportOptions),
    /// `text/csv`: a header line and one lead per record; the ids and the reading options
    /// come from the query and the `charset` parameter.
    Csv(&'a [u8], &'a ImportOptions),
}

impl ImportBody<'_> {
    /// Parses the body into the one request type both formats give, with a CSV body's
    /// column mapping.
    pub fn parse(
        self,
        max_leads: usize,
        caller: Option<&CreatedBy>,
    ) -> Result<(ImportRequest, Option<ColumnMapping>), RequestError> {
        match self {
            ImportBody::Json(body, options) => {
                let mut request = ImportRequest::parse_as(body, max_leads, caller)?;
                let mut errors = Vec::new();
                let from_query = options.on_existing(&mut errors);
                match (request.on_existing, from_query) {
                    (Some(body), Some(query)) if body != query => {
                        return Err(RequestError::invalid(
                            "onExisting differs between the body and the query",
                            vec![crate::job::request::param(
                                "/onExisting",
                                "name it once, in the body",
                            )],
                        ));
                    }
                    (None, query) => request.on_existing = query,
                    _ => {}
                }
                if !errors.is_empty() {
                    return Err(RequestError::invalid(
                        "the import request is invalid",
                        errors,
                    ));
                }
                request.dry_run |= options.dry_run;
                Ok((request, None))
            }
            ImportBody::Csv(body, options) => CsvImport::parse(body, options, max_leads, caller)
                .map(|csv| {
                    let mut request = csv.request;
                    request.dry_run |= options.dry_run;
                    (request, Some(csv.mapping))
                }),
        }
    }
}

/// Accepts the `body` sent by `caller`; once its entries are queued, `kicker` starts a drain
/// for them. When the request asks for a dry run (`dryRun`, in a JSON body or the query),
/// judges it instead, writing nothing.
pub async fn accept_import(
    records: &impl JobRecords,
    queue: &impl JobQueue,
    cache: &impl StatusCacheReader,
    kicker: &impl DrainKicker,
    limits: ImportLimits,
    caller: &Caller,
    body: ImportBody<'_>,
) -> Result<ImportAnswer, ImportError> {
    let (request, mapping) = body.parse(limits.max_leads, caller.created_by()?.as_ref())?;
    check_callback(&request, &limits).await?;
    if request.dry_run {
        return dry_run(records, limits, request, mapping)
            .await
            .map(ImportAnswer::DryRun);
    }
    let plan = ImportPlan::new(request, limits.batch_size);
    accept_plan(records, queue, cache, kicker, plan, mapping).await
}

/// Accepts a planned import (a request's, or a retry's of an earlier import's failures):
/// records it, queues it, and decides the answer as the table above says.
pub async fn accept_plan(
    records: &impl JobRecords,
    queue: &impl JobQueue,
    cache: &impl StatusCacheReader,
    kicker: &impl DrainKicker,
    plan: ImportPlan,
    mapping: Option<ColumnMapping>,
) -> Result<ImportAnswer, ImportError> {
    let import_id = plan.import_id.clone();
    let now = OffsetDateTime::now_utc();
    let snapshot = match records
        .insert_job(&plan, now)
        .await
        .map_err(unavailable("record the job"))?
    {
        JobInsert::Existing { payload_hash, .. } if payload_hash != plan.payload_hash => {
            return Err(ImportError::Conflict(import_id));
        }
        JobInsert::Existing { queued: true, .. } => {
            return already_accepted(records, cache, &import_id).await;
        }
        // A retry of a request that was recorded but not queued: queue it now if Redis can.
        JobInsert::Existing { queued: false, .. } => {
            if let Some(snapshot) = records
                .load_job(&import_id)
                .await
                .map_err(unavailable("load the job"))?
            {
                try_to_queue(records, queue, &plan, &snapshot).await;
            }
            return already_accepted(records, cache, &import_id).await;
        }
        JobInsert::Created => JobSnapshot::accepted(&plan, now),
    };
    let queued_now = try_to_queue(records, queue, &plan, &snapshot).await;
    if queued_now && !plan.chunks.is_empty() {
        kicker.kick().await;
    }
    tracing::info!(import_id = %import_id, total = plan.total, rejected = plan.rejected.len(), chunks = plan.chunks.len(), queued_now, "import accepted");
    Ok(ImportAnswer::Accepted {
        import_id,
        state: snapshot.state(),
        total: plan.total,
        mapping,
    })
}

/// What a dry run found (`200`): every lead judged as the import would judge it, the emails
/// checked against the `leads` table; nothing recorded, queued or stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunReport {
    /// Always `true`: tells this document from a job's status.
    pub dry_run: bool,
    pub total: u64,
    /// What the import would do with leads already stored: `fail`, `skip` or `update`.
    pub on_existing: OnExisting,
    /// Leads that would be stored, created or updated (if no other import stores their email
    /// first): `wouldCreate + wouldUpdate`.
    pub would_import: u64,
    pub would_create: u64,
    pub would_update: u64,
    /// Leads already stored that `onExisting=skip` would leave alone.
    pub would_skip: u64,
    pub failed: u64,
    /// How many leads fail with each code.
    pub failed_by_code: std::collections::BTreeMap<String, u64>,
    /// One per failed lead, by index.
    pub errors: Vec<crate::job::status::LeadError>,
    /// A CSV body's column mapping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<ColumnMapping>,
}

/// Judges `request` as [`accept_import`] would, under the same limits, and checks its valid
/// leads' emails against the `leads` table (one query); records, queues and stores nothing.
async fn dry_run(
    records: &impl JobRecords,
    limits: ImportLimits,
    request: ImportRequest,
    mapping: Option<ColumnMapping>,
) -> Result<DryRunReport, ImportError> {
    let plan = ImportPlan::new(request, limits.batch_size.max(1));
    let valid: Vec<&crate::job::plan::IndexedLead> =
        plan.chunks.iter().flat_map(|c| &c.leads).collect();
    let emails: Vec<&str> = valid.iter().map(|l| l.lead.email.as_str()).collect();
    let existing = records
        .existing_emails(&emails)
        .await
        .map_err(unavailable("check the emails"))?;
    let stored: Vec<&&crate::job::plan::IndexedLead> = valid
        .iter()
        .filter(|l| existing.contains(l.lead.email.as_str()))
        .collect();
    let mut errors = plan.rejected;
    let (would_update, would_skip) = match plan.on_existing {
        OnExisting::Fail => {
            errors.extend(
                stored
                    .iter()
                    .map(|l| crate::job::status::LeadError::email_exists(l.index).at_line(l.line)),
            );
            (0, 0)
        }
        OnExisting::Skip => (0, stored.len() as u64),
        OnExisting::Update => (stored.len() as u64, 0),
    };
    errors.sort_by_key(|e| e.index);
    let mut failed_by_code = std::collections::BTreeMap::new();
    for e in &errors {
        *failed_by_code.entry(e.code.clone()).or_insert(0) += 1;
    }
    let failed = errors.len() as u64;
    let would_import = plan.total - failed - would_skip;
    Ok(DryRunReport {
        dry_run: true,
        total: plan.total,
        on_existing: plan.on_existing,
        would_import,
        would_create: would_import - would_update,
        would_update,
        would_skip,
        failed,
        failed_by_code,
        errors,
        mapping,
    })
}

/// Queues a recorded job and notes its entry ids; whether that worked. A failure is logged and
/// left to the reconciler: the job is durable already, so it never fails the request.
async fn try_to_queue(
    records: &impl JobRecords,
    queue: &impl JobQueue,
    plan: &ImportPlan,
    snapshot: &JobSnapshot,
) -> bool {
    let entry_ids = match queue.enqueue(plan, snapshot).await {
        Ok(Enqueued::Queued(ids) | Enqueued::AlreadyQueued(Some(ids))) => ids,
        Ok(Enqueued::AlreadyQueued(None)) => return true,
        Err(e) => {
            tracing::warn!(error = %e, import_id = %plan.import_id, "could not queue the job now; the reconciler will");
            return false;
        }
    };
    match records.mark_queued(&plan.import_id, &entry_ids).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, import_id = %plan.import_id, "queued, but could not note it; the reconciler will");
            true
        }
    }
}

async fn already_accepted(
    records: &impl JobRecords,
    cache: &impl StatusCacheReader,
    import_id: &ImportId,
) -> Result<ImportAnswer, ImportError> {
    let snapshot = current_snapshot(cache, records, import_id)
        .await
        .map_err(unavailable("load the job"))?
        .ok_or_else(|| vanished(import_id))?;
    Ok(ImportAnswer::AlreadyAccepted(Box::new(
        snapshot.into_status(),
    )))
}

/// A job recorded a moment ago cannot be read back: the database is not answering as it
/// should, which the caller sees as unavailable.
fn vanished(import_id: &ImportId) -> ImportError {
    unavailable("load the job")(format!("job {import_id} was recorded but cannot be read").into())
}

/// Logs what failed (the error's text, never a URL) and makes it the caller's `503`.
fn unavailable(doing: &'static str) -> impl FnOnce(Unavailable) -> ImportError {
    move |source| {
        tracing::error!(error = %source, "could not {doing}");
        ImportError::Unavailable { doing, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fakes::{FakeCache, FakeKicker, FakeQueue, FakeRecords};

    const LIMITS: ImportLimits = ImportLimits {
        max_leads: 10,
        batch_size: 2,
        callbacks: None,
    };

    fn body(name: &str) -> Vec<u8> {
        format!(
            r#"{{"importId":"j1","createdBy":"u1","leads":[{{"fullName":"{name}","email":"a@x.io"}},{{"fullName":"B","email":"b@x.io"}},{{"fullName":"C","email":"c@x.io"}}]}}"#
        )
        .into_bytes()
    }

    struct Stores {
        records: FakeRecords,
        queue: FakeQueue,
        cache: FakeCache,
        kicker: FakeKicker,
    }

    impl Stores {
        fn new() -> Self {
            Stores {
                records: FakeRecords::default(),
                queue: FakeQueue::default(),
                cache: FakeCache::default(),
                kicker: FakeKicker::default(),
            }
        }

        async fn import(&self, body: &[u8]) -> Result<ImportAnswer, ImportError> {
            self.submit(ImportBody::Json(body, &ImportOptions::default()))
                .await
        }

        async fn submit(&self, body: ImportBody<'_>) -> Result<ImportAnswer, ImportError> {
            accept_import(
                &self.records,
                &self.queue,
                &self.cache,
                &self.kicker,
                LIMITS,
                &Caller::Unverified,
                body,
            )
            .await
        }

        /// A dry run's report.
        async fn judge(&self, body: ImportBody<'_>) -> Result<DryRunReport, ImportError> {
            match self.submit(body).await? {
                ImportAnswer::DryRun(report) => Ok(report),
                other => panic!("a dry run was answered {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_new_request_is_recorded_queued_and_accepted() {
        let stores = Stores::new();
        let answer = stores.import(&body("A")).await.unwrap();
        assert!(matches!(
            answer,
            ImportAnswer::Accepted {
                total: 3,
                state: JobState::Pending,
                ..
            }
        ));
        assert_eq!(stores.queue.entries(), 2, "3 leads in chunks of 2");
        assert_eq!(stores.kicker.kicks(), 1, "a drain is started for them");
        assert_eq!(
            stores.records.queued_ids("j1"),
            Some(vec!["e0".into(), "e1".into()])
        );
    }

    #[tokio::test]
    async fn a_retry_gets_the_status_and_queues_nothing_more() {
        let stores = Stores::new();
        stores.import(&body("A")).await.unwrap();
        let answer = stores.import(&body("A")).await.unwrap();
        assert!(matches!(answer, ImportAnswer::AlreadyAccepted(ref s) if s.import_id == "j1"));
        assert_eq!(stores.queue.entries(), 2);
        assert_eq!(stores.kicker.kicks(), 1, "nothing new to drain");
    }

    #[tokio::test]
    async fn the_same_id_with_other_content_is_a_conflict() {
        let stores = Stores::new();
        stores.import(&body("A")).await.unwrap();
        assert!(matches!(
            stores.import(&body("Other")).await,
            Err(ImportError::Conflict(id)) if id.as_str() == "j1"
        ));
        assert_eq!(stores.queue.entries(), 2);
    }

    #[tokio::test]
    async fn an_import_is_accepted_while_redis_is_down_and_its_retry_queues_it() {
        let stores = Stores::new();
        stores.queue.fail(true);
        assert!(matches!(
            stores.import(&body("A")).await.unwrap(),
            ImportAnswer::Accepted { total: 3, .. }
        ));
        assert_eq!(
            stores.records.queued_ids("j1"),
            None,
            "recorded, not queued"
        );
        assert_eq!(stores.kicker.kicks(), 0, "nothing queued to drain");
        stores.queue.fail(false);
        assert!(matches!(
            stores.import(&body("A")).await.unwrap(),
            ImportAnswer::AlreadyAccepted(_)
        ));
        assert_eq!(stores.queue.entries(), 2);
        assert_eq!(
            stores.records.queued_ids("j1"),
            Some(vec!["e0".into(), "e1".into()])
        );
    }

    #[tokio::test]
    async fn a_dry_run_judges_and_checks_emails_and_writes_nothing() {
        let stores = Stores::new();
        stores.records.store_email("b@x.io");
        let options = ImportOptions {
            created_by: Some("u1".into()),
            dry_run: true,
            ..ImportOptions::default()
        };
        let csv = b"Name,Email,Notes\nA,a@x.io,\"x\ny\"\nB,b@x.io,\nC,bad,\nD,A@X.IO,\n";
        let report = stores.judge(ImportBody::Csv(csv, &options)).await.unwrap();
        let errors: Vec<(u32, Option<u32>, &str)> = report
            .errors
            .iter()
            .map(|e| (e.index, e.line, e.code.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (1, Some(4), "email_exists"),
                (2, Some(5), "invalid_email"),
                (3, Some(6), "duplicate_in_import")
            ]
        );
        assert_eq!(
            (report.total, report.would_import, report.failed),
            (4, 1, 3)
        );
        assert_eq!(report.failed_by_code["email_exists"], 1);
        assert!(report.mapping.is_some());
        assert_eq!(stores.queue.entries(), 0);
        assert_eq!(stores.records.queued_ids("j1"), None);
        assert_eq!(stores.kicker.kicks(), 0);
        // The same limits as an import; and Postgres down is 503, not a report.
        let too_many = format!("email\n{}", "x@y.io\n".repeat(11));
        assert!(matches!(
            stores
                .judge(ImportBody::Csv(too_many.as_bytes(), &options))
                .await,
            Err(ImportError::Request(RequestError::TooManyLeads { max: 10 }))
        ));
        // Each choice for existing leads is judged as the drain would decide it, the same
        // from the query or a JSON body's own dryRun.
        for (mode, skip, update, failed) in [("skip", 1, 0, 2), ("update", 0, 1, 2)] {
            let with_mode = ImportOptions {
                on_existing: Some(mode.into()),
                ..options.clone()
            };
            let report = stores
                .judge(ImportBody::Csv(csv, &with_mode))
                .await
                .unwrap();
            assert_eq!(
                (report.would_skip, report.would_update, report.failed),
                (skip, update, failed),
                "{mode}"
            );
            assert_eq!(report.would_import, 1 + update);
        }
        let json_dry = r#"{"createdBy":"u1","dryRun":true,"onExisting":"skip","leads":[{"fullName":"B","email":"b@x.io"}]}"#;
        let report = stores
            .judge(ImportBody::Json(
                json_dry.as_bytes(),
                &ImportOptions::default(),
            ))
            .await
            .unwrap();
        assert_eq!((report.would_skip, report.would_create), (1, 0));
        assert_eq!(stores.queue.entries(), 0);
        stores.records.fail();
        let dry = ImportOptions {
            dry_run: true,
            ..ImportOptions::default()
        };
        assert!(matches!(
            stores.judge(ImportBody::Json(&body("A"), &dry)).await,
            Err(ImportError::Unavailable { .. })
        ));
    }

    #[tokio::test]
    async fn nothing_is_written_for_a_bad_request_or_while_postgres_is_down() {
        let stores = Stores::new();
        assert!(matches!(
            stores.import(b"{").await,
            Err(ImportError::Request(RequestError::Invalid { .. }))
        ));
        stores.records.fail();
        assert!(matches!(
            stores.import(&body("A")).await,
            Err(ImportError::Unavailable {
                doing: "record the job",
                ..
            })
        ));
        assert_eq!(stores.queue.entries(), 0);
    }
}
