//! A batch the database refuses is retried entry by entry, so one bad entry cannot hold back
//! the others: only it is dead-lettered, with the SQLSTATE in the reason.

use crate::support::app::spawn_app;
use crate::support::leads::synthetic_leads;
use serde_json::json;

#[tokio::test]
async fn only_the_refused_entry_is_dead_lettered() {
    let t = spawn_app().await;
    let leads = synthetic_leads(100, "refusal", 0, 0);
    t.post_import(&json!({"importId":"good","leads":leads,"createdBy":"u1"}).to_string())
        .await;
    // An entry for a job Postgres never recorded: its outcome row violates the foreign key.
    let orphan = json!([{"index":0,"fullName":"Orphan","email":"orphan@example.com","status":"NEW","source":"OTHER"}]);
    let _: String = redis::cmd("XADD")
        .arg(t.key("lead:imports"))
        .arg("*")
        .arg("importId")
        .arg("never-recorded")
        .arg("seq")
        .arg(0)
        .arg("createdBy")
        .arg("u1")
        .arg("leads")
        .arg(orphan.to_string())
        .query_async(&mut t.redis.clone())
        .await
        .unwrap();
    let report = t.drain_all().await;
    assert_eq!((report.entries, report.dead_lettered), (3, 1), "{report:?}");
    let doc = t.assert_job_accounted("good", 100).await;
    assert_eq!(doc["progress"]["successful"], 100);
    let dead = t.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["importId"], "never-recorded");
    assert_eq!(
        dead[0]["reason"],
        "The database refused these leads (SQLSTATE 23503)"
    );
    let orphans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM leads WHERE import_id = 'never-recorded'")
            .fetch_one(&t.db)
            .await
            .unwrap();
    assert_eq!(orphans, 0);
}
