//! `onExisting` (fail, skip, update) end to end, and custom attributes: what an import does
//! with leads already stored, counted as created, updated, skipped and failed, exactly once
//! however often a chunk is delivered, and never writing an older import's values over a
//! newer one's.

use crate::support::app::{TestApp, spawn_app};
use serde_json::{Value, json};
use shared::domain::ImportId;

fn lead(name: &str, email: &str, status: &str) -> Value {
    json!({"fullName": name, "email": email, "status": status})
}

impl TestApp {
    /// Posts `leads` as `import_id` with `on_existing` (none: the default) and asserts the 202.
    async fn post_with(&self, import_id: &str, on_existing: Option<&str>, leads: Vec<Value>) {
        let mut body = json!({"importId": import_id, "createdBy": "u1", "leads": leads});
        if let Some(mode) = on_existing {
            body["onExisting"] = mode.into();
        }
        let answer = self.post_import(&body.to_string()).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
    }

    /// The stored lead of `email`: (full_name, status, attributes, import_id, created_by,
    /// updated_by_import).
    async fn stored_lead(
        &self,
        email: &str,
    ) -> (String, String, Value, String, String, Option<String>) {
        sqlx::query_as(
            "SELECT full_name, status, attributes, import_id, created_by, updated_by_import FROM leads WHERE email = $1",
        )
        .bind(email)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }

    async fn progress(&self, import_id: &str) -> Value {
        let doc = self.get_status(import_id).await.body;
        assert_eq!(doc["status"], "completed", "{doc}");
        doc["progress"].clone()
    }
}

fn counts(progress: &Value) -> [u64; 4] {
    ["created", "updated", "skipped", "failed"].map(|k| progress[k].as_u64().unwrap())
}

#[tokio::test]
async fn skip_counts_leads_already_stored_as_skipped_and_changes_nothing() {
    let t = spawn_app().await;
    t.post_with(
        "first",
        None,
        vec![lead("Ada", "ada@x.io", "NEW"), lead("Bo", "bo@x.io", "NEW")],
    )
    .await;
    t.drain_all().await;
    t.post_with(
        "second",
        Some("skip"),
        vec![
            lead("Ada Two", "ada@x.io", "LOST"),
            lead("Cy", "cy@x.io", "NEW"),
        ],
    )
    .await;
    t.drain_all().await;
    let progress = t.progress("second").await;
    assert_eq!(counts(&progress), [1, 0, 1, 0], "{progress}");
    assert_eq!(progress["successful"], 1);
    assert_eq!(progress["processed"], 2);
    assert_eq!(progress["errors"], json!([]));
    assert_eq!(t.stored_lead("ada@x.io").await.0, "Ada", "left as it was");
    t.assert_job_accounted("second", 2).await;
    // The default is still today's behaviour: the lead fails with email_exists.
    t.post_with("third", None, vec![lead("Ada", "ada@x.io", "NEW")])
        .await;
    t.drain_all().await;
    let progress = t.progress("third").await;
    assert_eq!(counts(&progress), [0, 0, 0, 1]);
    assert_eq!(progress["errors"][0]["code"], "email_exists");
}

#[tokio::test]
async fn update_writes_the_imports_values_and_keeps_the_leads_origin() {
    let t = spawn_app().await;
    let mut first = lead("Ada", "ada@x.io", "NEW");
    first["phone"] = "+44 20 7946 0000".into();
    first["attributes"] = json!({"Company": "Acme", "Tier": "silver"});
    t.post_with("first", None, vec![first]).await;
    t.drain_all().await;
    let mut update = lead("Ada Lovelace", "ADA@x.io", "QUALIFIED");
    update["attributes"] = json!({"Tier": "gold", "Seats": 12});
    t.post_with(
        "second",
        Some("update"),
        vec![update, lead("Cy", "cy@x.io", "NEW")],
    )
    .await;
    t.drain_all().await;
    let progress = t.progress("second").await;
    assert_eq!(counts(&progress), [1, 1, 0, 0], "{progress}");
    assert_eq!(progress["successful"], 2, "successful = created + updated");
    let (name, status, attributes, import_id, created_by, updated_by) =
        t.stored_lead("ada@x.io").await;
    assert_eq!(
        (name.as_str(), status.as_str()),
        ("Ada Lovelace", "QUALIFIED")
    );
    assert_eq!(
        attributes,
        json!({"Company": "Acme", "Tier": "gold", "Seats": "12"}),
        "attributes merge; the import's win"
    );
    assert_eq!((import_id.as_str(), created_by.as_str()), ("first", "u1"));
    assert_eq!(updated_by.as_deref(), Some("second"));
    let phone: Option<String> =
        sqlx::query_scalar("SELECT phone FROM leads WHERE email = 'ada@x.io'")
            .fetch_one(&t.db)
            .await
            .unwrap();
    assert_eq!(
        phone.as_deref(),
        Some("+442079460000"),
        "a phone the update lacks is kept"
    );
    t.assert_job_accounted("second", 2).await;
}

/// Two update imports of the same lead, drained out of order, then the older one's chunk
/// delivered again: the newer import's values stay, and every count is recorded once.
#[tokio::test]
async fn a_replayed_or_late_update_never_counts_twice_or_writes_over_a_newer_import() {
    let t = spawn_app().await;
    t.post_with("original", None, vec![lead("Ada", "ada@x.io", "NEW")])
        .await;
    t.drain_all().await;
    t.post_with(
        "older",
        Some("update"),
        vec![lead("Ada Older", "ada@x.io", "CONTACTED")],
    )
    .await;
    t.post_with(
        "newer",
        Some("update"),
        vec![lead("Ada Newer", "ada@x.io", "QUALIFIED")],
    )
    .await;
    let chunks = |id: &str| {
        let store = t.app.store.clone();
        let id = ImportId::parse(id).unwrap();
        async move { store.load_chunks(&id, None).await.unwrap().unwrap() }
    };
    let (older, newer) = (chunks("older").await, chunks("newer").await);
    // The newer import's chunk is stored first, as a drain that took it first would.
    t.app.store.store_chunks(&newer).await.unwrap();
    let first = t.app.store.store_chunks(&older).await.unwrap();
    let replay = t.app.store.store_chunks(&older).await.unwrap();
    assert_eq!(first, replay, "a replay finds the recorded outcome");
    let outcome = first.values().next().unwrap();
    assert_eq!(
        (outcome.updated, outcome.skipped),
        (0, 1),
        "overtaken: skipped"
    );
    assert_eq!(t.stored_lead("ada@x.io").await.0, "Ada Newer");
    // The stream entries are then delivered as usual: nothing changes any more.
    t.drain_all().await;
    assert_eq!(counts(&t.progress("newer").await), [0, 1, 0, 0]);
    assert_eq!(counts(&t.progress("older").await), [0, 0, 1, 0]);
    assert_eq!(t.stored_lead("ada@x.io").await.0, "Ada Newer");
    let ledger: Vec<(String, i32, i32)> = sqlx::query_as(
        "SELECT import_id, updated, skipped FROM import_chunks WHERE import_id IN ('older', 'newer') ORDER BY import_id",
    )
    .fetch_all(&t.db)
    .await
    .unwrap();
    assert_eq!(
        ledger,
        [("newer".into(), 1, 0), ("older".into(), 0, 1)],
        "one row per chunk"
    );
}

/// A batch holding two imports' leads of one email (a statement cannot touch a row twice):
/// both are decided, the one accepted later wins.
#[tokio::test]
async fn one_batch_with_two_updates_of_one_email_applies_the_later_import() {
    let t = spawn_app().await;
    t.post_with("original", None, vec![lead("Ada", "ada@x.io", "NEW")])
        .await;
    t.drain_all().await;
    t.post_with("a", Some("update"), vec![lead("Ada A", "ada@x.io", "NEW")])
        .await;
    t.post_with("b", Some("update"), vec![lead("Ada B", "ada@x.io", "NEW")])
        .await;
    t.post_with("c", Some("skip"), vec![lead("Ada C", "ada@x.io", "NEW")])
        .await;
    let mut chunks = Vec::new();
    for id in ["b", "c", "a"] {
        let id = ImportId::parse(id).unwrap();
        chunks.extend(t.app.store.load_chunks(&id, None).await.unwrap().unwrap());
    }
    let outcomes = t.app.store.store_chunks(&chunks).await.unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(
        t.stored_lead("ada@x.io").await.0,
        "Ada B",
        "b was accepted last of the updates"
    );
    let skipped: u32 = outcomes.values().map(|o| o.skipped).sum();
    let updated: u32 = outcomes.values().map(|o| o.updated).sum();
    assert_eq!(skipped + updated, 3, "each lead decided once");
}

/// New leads go in by `COPY` (text format): the bytes that frame its rows and columns, and
/// its NULL marker written as text, are stored as sent, and each lead is written with its
/// import's acceptance time, as the upsert statement writes it.
#[tokio::test]
async fn copied_leads_keep_every_byte_and_their_imports_acceptance_time() {
    let t = spawn_app().await;
    let odd_name = r"Ada \N Back\slash";
    let notes = "tab\there\nline\r\\ and a real\tab: \t, newline:\n and \\N";
    let mut ada = lead(odd_name, "ada@x.io", "NEW");
    ada["attributes"] = json!({"Notes": "one\ttab\nand\r\\N", "Raw": notes});
    ada["phone"] = json!(null);
    t.post_with("odd", None, vec![ada, lead("Bo", "bo@x.io", "NEW")])
        .await;
    t.drain_all().await;
    let stored = t.stored_lead("ada@x.io").await;
    assert_eq!(stored.0, odd_name);
    assert_eq!(
        stored.2,
        json!({"Notes": "one\ttab\nand\r\\N", "Raw": notes})
    );
    let (phone, same_time): (Option<String>, bool) = sqlx::query_as(
        "SELECT l.phone, l.written_at = j.created_at FROM leads l JOIN import_jobs j USING (import_id) WHERE l.email = 'ada@x.io'",
    )
    .fetch_one(&t.db)
    .await
    .unwrap();
    assert_eq!(phone, None, "no phone is NULL, not a text");
    assert!(same_time, "written_at is the import's acceptance time");
    assert_eq!(counts(&t.progress("odd").await), [2, 0, 0, 0]);
}

#[tokio::test]
async fn unmapped_csv_columns_are_stored_as_attributes_and_the_202_lists_them() {
    let t = spawn_app().await;
    let csv = "Email,Name,Company,Internal Id,Notes\n\
               ada@x.io,Ada,\"Acme, Inc.\",17,\"two\nlines\"\n\
               bo@x.io,Bo,,18,\n";
    let answer = t
        .call(
            http::Request::post(
                "/leads/import?importId=attrs&createdBy=u1&mapping=Internal%20Id:ignore",
            )
            .header("content-type", "text/csv")
            .body(axum::body::Body::from(csv))
            .unwrap(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(
        answer.body["mapping"]["attributes"],
        json!(["Company", "Notes"])
    );
    assert_eq!(answer.body["mapping"]["ignored"], json!(["Internal Id"]));
    t.drain_all().await;
    assert_eq!(
        t.stored_lead("ada@x.io").await.2,
        json!({"Company": "Acme, Inc.", "Notes": "two\nlines"})
    );
    assert_eq!(
        t.stored_lead("bo@x.io").await.2,
        json!({}),
        "blank cells are no attribute"
    );
}

#[tokio::test]
async fn a_bad_choice_or_attributes_beyond_the_bounds_are_refused_clearly() {
    let t = spawn_app().await;
    let body =
        json!({"createdBy": "u1", "onExisting": "replace", "leads": [lead("A", "a@x.io", "NEW")]});
    let answer = t.post_import(&body.to_string()).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["errors"][0]["pointer"], "/onExisting");
    let too_long = json!({"createdBy": "u1", "importId": "big", "leads": [
        {"fullName": "A", "email": "a@x.io", "attributes": {"Notes": "x".repeat(1001)}},
        {"fullName": "B", "email": "b@x.io", "attributes": {"Notes": "fine"}}
    ]});
    assert_eq!(t.post_import(&too_long.to_string()).await.status, 202);
    t.drain_all().await;
    let doc = t.get_status("big").await.body;
    assert_eq!(
        doc["progress"]["errors"][0]["code"], "attribute_too_long",
        "{doc}"
    );
    assert_eq!(doc["progress"]["created"], 1);
}
