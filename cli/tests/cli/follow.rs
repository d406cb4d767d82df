//! Following imports: `status` (today's endpoint) and #15's `errors`, `list`, `cancel` and
//! `retry`, by that contract (`/leads/import/{id}/errors` with `errors`/`nextCursor`
//! and `Accept: text/csv`, `/leads/imports` with `imports`, `/cancel`, `/retry?all=true`).

use crate::support::{Running, Stack, path_str, write_csv, write_csv_from};

/// Imports `rows` leads numbered from `first` (the rows in `failing` invalid) in one part;
/// returns its import id.
async fn imported(
    stack: &Stack,
    dir: &std::path::Path,
    name: &str,
    (first, rows): (usize, usize),
    failing: &[usize],
) -> String {
    let file = write_csv_from(dir, name, first, rows, failing);
    let run = stack
        .run(&["import", path_str(&file), "--created-by", "ann"])
        .await;
    let expected = if failing.is_empty() { 0 } else { 1 };
    assert_eq!(run.code, Some(expected), "{}", run.stderr);
    run.last()["importIds"][0].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_the_document_and_watch_exits_as_the_import_ended() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let clean = imported(&stack, dir.path(), "a.csv", (0, 30), &[]).await;
    let dirty = imported(&stack, dir.path(), "b.csv", (100, 30), &[4]).await;

    let run = stack.run(&["status", &clean]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.events.len(), 1);
    assert_eq!(run.events[0]["importId"], clean.as_str());
    assert_eq!(run.events[0]["status"], "completed");
    assert_eq!(run.events[0]["progress"]["successful"], 30);

    assert_eq!(
        stack.run(&["status", "--watch", &clean]).await.code,
        Some(0)
    );
    assert_eq!(
        stack.run(&["status", "--watch", &dirty]).await.code,
        Some(1)
    );

    let unknown = stack.run(&["status", "no-such-import"]).await;
    assert_eq!(unknown.code, Some(3));
    assert_eq!(unknown.last()["title"], "Not found");
    let bad = stack.run(&["status", "../etc"]).await;
    assert_eq!(bad.code, Some(2), "an id that is no id never reaches a URL");
}

/// Needs #15's `GET /leads/import/{id}/errors`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_lists_the_failed_leads_and_writes_them_as_csv() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let id = imported(&stack, dir.path(), "export.csv", (0, 200), &[7, 50, 199]).await;

    let run = stack.run(&["errors", &id]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let indexes: Vec<_> = run.events.iter().map(|e| e["index"].clone()).collect();
    assert_eq!(indexes, [7, 50, 199].map(serde_json::Value::from));
    let lines: Vec<_> = run.events.iter().map(|e| e["line"].clone()).collect();
    assert_eq!(lines, [9, 52, 201].map(serde_json::Value::from));

    let report = dir.path().join("errors.csv");
    let run = stack
        .run(&["errors", &id, "--csv", path_str(&report)])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.last()["event"], "report_written");
    let mut reader = csv::Reader::from_path(&report).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
    };
    let (line, code) = (column("line"), column("code"));
    // Each failed row: its original values (the email as the file had it, whatever the
    // column is called), its line in the file and its code.
    let rows: Vec<(bool, String, String)> = reader
        .records()
        .enumerate()
        .map(|(n, r)| {
            let r = r.unwrap();
            let original = format!("not-an-email-{}", [7, 50, 199][n.min(2)]);
            (
                r.iter().any(|v| v == original),
                r[line].to_owned(),
                r[code].to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        ["9", "52", "201"].map(|l| (true, l.to_owned(), "invalid_email".to_owned()))
    );
}

/// Needs #15's `GET /leads/imports`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_the_callers_imports_newest_first() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = imported(&stack, dir.path(), "a.csv", (0, 10), &[]).await;
    let second = imported(&stack, dir.path(), "b.csv", (100, 11), &[]).await;
    let other = write_csv_from(dir.path(), "other.csv", 200, 3, &[]);
    let run = stack
        .run(&["import", path_str(&other), "--created-by", "bo"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = stack.run(&["list", "--created-by", "ann"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let ids: Vec<_> = run
        .events
        .iter()
        .map(|e| e["importId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    let failed = stack
        .run(&["list", "--state", "failed", "--created-by", "ann"])
        .await;
    assert_eq!(failed.code, Some(0), "{}", failed.stderr);
    assert!(failed.events.is_empty(), "{:?}", failed.events);
}

/// Needs #15's `POST /leads/import/{id}/cancel`. The import waits (no drain runs) while it is
/// cancelled; the drain then decides its chunks as cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_a_waiting_import_as_cancelled() {
    let stack = Stack::without_drain().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 500, &[]);
    let mut import =
        Running::spawn(stack.leads(&["import", path_str(&file), "--created-by", "ann"]));
    let accepted = import.until(|e| e["event"] == "part_accepted").await;
    let id = accepted["importId"].as_str().unwrap().to_owned();

    let cancel = stack.run(&["cancel", &id]).await;
    assert_eq!(cancel.code, Some(0), "{}", cancel.stderr);
    assert_eq!(cancel.last()["importId"], id.as_str());
    stack.start_drain();

    let finished = import.until(|e| e["event"] == "part_finished").await;
    assert_eq!(
        (&finished["status"], &finished["failed"]),
        (&"cancelled".into(), &500.into())
    );
    let summary = import.until(|e| e["event"] == "summary").await;
    assert_eq!(summary["exitCode"], 1);
    assert_eq!(import.child.wait().await.unwrap().code(), Some(1));
    assert_eq!(stack.count("SELECT count(*) FROM leads").await, 0);
}

/// Needs #15's `POST /leads/import/{id}/retry`: `--all` retries every failed lead as a child
/// import linked to its parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_starts_a_child_import_of_the_failed_leads() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let parent = imported(&stack, dir.path(), "export.csv", (0, 20), &[2, 3, 5]).await;

    let run = stack.run(&["retry", &parent, "--all"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let child = run.last()["importId"].as_str().unwrap().to_owned();
    assert_ne!(child, parent);

    // The same invalid emails fail again.
    let watched = stack.run(&["status", "--watch", &child]).await;
    assert_eq!(watched.code, Some(1), "{}", watched.stderr);
    let last = watched.last();
    assert_eq!(
        (
            &last["parentImportId"],
            &last["progress"]["total"],
            &last["progress"]["failed"]
        ),
        (&parent.as_str().into(), &3.into(), &3.into())
    );
}
