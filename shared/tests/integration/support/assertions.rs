//! Assertions shared by the tests: a finished job is accounted for lead by lead; a refused
//! request left nothing behind.

use super::app::TestApp;
use serde_json::Value;

impl TestApp {
    /// The invariant every finished job keeps (docs/guarantees.md): rows it created = created,
    /// successful = created + updated, processed = total, every lead either stored, skipped or
    /// listed once with a reason (in the errors report, whose first errors the document
    /// shows), nothing pending. Returns the document with every error of the report in
    /// `progress.errors`, for the test's own checks.
    pub async fn assert_job_accounted(&self, import_id: &str, total: u64) -> Value {
        let mut doc = self.get_status(import_id).await.body;
        let progress = &doc["progress"];
        assert_eq!(progress["total"], total, "{doc}");
        assert_eq!(progress["processed"], total, "every lead counted: {doc}");
        assert_eq!(
            progress["created"].as_i64().unwrap(),
            self.lead_count(import_id).await,
            "rows this import created = created"
        );
        assert_eq!(
            progress["successful"],
            progress["created"].as_u64().unwrap() + progress["updated"].as_u64().unwrap(),
            "successful = created + updated"
        );
        let failed = progress["failed"].as_u64().unwrap();
        assert_eq!(doc["errorCount"], failed, "{doc}");
        let errors = self.error_report(import_id, 1_000).await;
        assert_eq!(errors.len() as u64, failed, "one reason per failed lead");
        let shown = progress["errors"].as_array().unwrap();
        assert_eq!(
            shown[..],
            errors[..errors.len().min(100)],
            "the document shows the report's first errors"
        );
        doc["progress"]["errors"] = Value::Array(errors);
        let errors = doc["progress"]["errors"].as_array().unwrap();
        let mut indexes: Vec<u64> = errors
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        let sorted = indexes.clone();
        indexes.dedup();
        assert_eq!(indexes, sorted, "errors sorted by index, none twice");
        let duplicates: i64 =
            sqlx::query_scalar("SELECT count(*) - count(DISTINCT email) FROM leads")
                .fetch_one(&self.db)
                .await
                .unwrap();
        assert_eq!(duplicates, 0, "no email stored twice");
        assert_eq!(self.pending_count().await, 0, "nothing left pending");
        doc
    }
}

/// Indexes of the leads a status document lists as failed with `code`.
pub fn error_indexes(doc: &Value, code: &str) -> Vec<u32> {
    doc["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["code"] == code)
        .map(|e| e["index"].as_u64().unwrap() as u32)
        .collect()
}

/// A refused request left nothing behind: no stream entry, no job row, no cache key.
pub async fn assert_nothing_left(t: &TestApp) {
    assert_eq!(t.xlen().await, 0, "nothing queued");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM import_jobs")
        .fetch_one(&t.db)
        .await
        .unwrap();
    assert_eq!(jobs, 0, "no job recorded");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", t.prefix))
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    let job_keys: Vec<&String> = keys.iter().filter(|k| k.contains("import:job")).collect();
    assert!(job_keys.is_empty(), "no cache key: {job_keys:?}");
}
