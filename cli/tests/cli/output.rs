//! What `leads` prints: the JSON lines event by event, the bar in a pseudo-terminal, and a
//! refusal shown as its problem's title and detail.

use crate::support::{Stack, json_lines, path_str, write_csv};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_lines_tell_the_import_event_by_event() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    // 25 leads in parts of 10; rows 12 and 13 (both in part 2) fail.
    let file = write_csv(dir.path(), "export.csv", 25, &[12, 13]);
    let file = path_str(&file);
    let run = stack
        .run(&["import", file, "--created-by", "ann", "--part-size", "10"])
        .await;
    // Standard output is a pipe: JSON lines without --json.
    assert_eq!(run.code, Some(1), "two leads failed: {}", run.stderr);
    let events = &run.events;

    let started = &events[0];
    let prefix = started["idPrefix"].as_str().unwrap().to_owned();
    assert!(prefix.len() == 16 && prefix.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(
        started,
        &json!({"event":"started","file":file,"format":"csv","leads":25,"parts":3,"idPrefix":prefix,"dryRun":false})
    );
    let id = |part: u32| format!("{prefix}-p{part:04}");

    let accepted: Vec<_> = run.named("part_accepted").into_iter().cloned().collect();
    assert_eq!(
        accepted,
        [(1, 10), (2, 10), (3, 5)]
            .map(|(part, leads)| json!({"event":"part_accepted","part":part,"importId":id(part),"leads":leads,"resumed":false}))
    );
    let mut finished: Vec<_> = run.named("part_finished").into_iter().cloned().collect();
    finished.sort_by_key(|e| e["part"].as_u64());
    let done = |part: u32, total: u64, failed: u64| {
        json!({"event":"part_finished","part":part,"importId":id(part),"status":"completed",
               "total":total,"processed":total,"successful":total - failed,"created":total - failed,
               "updated":0,"skipped":0,"failed":failed})
    };
    assert_eq!(finished, [done(1, 10, 0), done(2, 10, 2), done(3, 5, 0)]);

    // Each part finishes after it was accepted; progress only grows, and ends at the total.
    let position = |wanted: &serde_json::Value| events.iter().position(|e| e == wanted).unwrap();
    for part in 1..=3 {
        assert!(position(&accepted[part - 1]) < position(&finished[part - 1]));
    }
    let processed: Vec<u64> = run
        .named("progress")
        .iter()
        .map(|e| e["processed"].as_u64().unwrap())
        .collect();
    assert!(processed.windows(2).all(|w| w[0] < w[1]), "{processed:?}");
    assert_eq!(processed.last(), Some(&25));
    let kinds: std::collections::BTreeSet<_> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "part_accepted",
            "part_finished",
            "progress",
            "started",
            "summary"
        ]
    );

    assert_eq!(
        run.last(),
        &json!({"event":"summary","file":file,"dryRun":false,"parts":3,
                "importIds":[id(1), id(2), id(3)],"total":25,"processed":25,"successful":23,
                "created":23,"updated":0,"skipped":0,"failed":2,"exitCode":1})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bar_renders_in_a_terminal_and_ends_at_100_percent() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 3_000, &[]);
    let command = format!(
        "{} --url {} import {} --created-by ann --part-size 1000",
        env!("CARGO_BIN_EXE_leads"),
        stack.url,
        path_str(&file)
    );
    // script(1) runs the command in a pseudo-terminal (standard output and error alike).
    let output = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("script(1) runs");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    assert!(screen.contains("100%"), "{screen}");
    assert!(screen.contains("3,000/3,000 leads"), "{screen}");
    assert!(screen.contains("█"), "{screen}");
    assert!(
        screen.contains("created 3000 · updated 0 · skipped 0 · failed 0"),
        "{screen}"
    );
    assert!(
        !screen.contains("\"event\""),
        "no JSON lines on a terminal: {screen}"
    );

    // The issue's own words: `leads import tests/fixtures/<an export>.csv` shows a bar that
    // ends at 100 % and a summary (this export has leads that fail: exit code 1).
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/crm-contacts-export.csv"
    );
    let command = format!(
        "{} --url {} import {fixture}",
        env!("CARGO_BIN_EXE_leads"),
        stack.url
    );
    let output = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env("USER", "ann")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("script(1) runs");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{screen}");
    assert!(screen.contains("100% 6/6 leads"), "{screen}");
    assert!(
        screen.contains("crm-contacts-export.csv: 6 leads in 1 part(s): created 4"),
        "{screen}"
    );
    assert!(screen.contains("failed 2"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_its_problems_title_and_detail_and_a_bad_file_is_said() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let no_email = dir.path().join("no-email.csv");
    std::fs::write(&no_email, "Name,Company\nAnn,Acme\n").unwrap();
    let run = stack
        .run(&["import", path_str(&no_email), "--created-by", "ann"])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let error = run.last();
    assert_eq!(error["event"], "error");
    assert_eq!(error["title"], "Invalid request");
    assert!(
        error["detail"].as_str().unwrap().contains("/email"),
        "{error}"
    );
    assert!(
        run.stderr.starts_with("error: Invalid request: "),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("\"type\""),
        "never the raw body: {}",
        run.stderr
    );

    let missing = stack
        .run(&["import", "/nonexistent/leads.csv", "--created-by", "ann"])
        .await;
    assert_eq!(missing.code, Some(2));
    assert!(
        missing
            .stderr
            .contains("cannot read /nonexistent/leads.csv"),
        "{}",
        missing.stderr
    );

    let unreachable = tokio::process::Command::new(env!("CARGO_BIN_EXE_leads"))
        .args([
            "--url",
            "http://127.0.0.1:9",
            "--retries",
            "2",
            "status",
            "some-import",
        ])
        .env("LEADS_TOKEN", "secret-token-value")
        .output()
        .await
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(4));
    let said = String::from_utf8_lossy(&unreachable.stdout).to_string()
        + &String::from_utf8_lossy(&unreachable.stderr);
    let retries = json_lines(&unreachable.stdout)
        .into_iter()
        .filter(|e| e["event"] == "retry")
        .count();
    assert_eq!(retries, 2, "{said}");
    assert!(!said.contains("secret-token-value"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_api_is_retried_after_its_retry_after_and_said() {
    let stack = Stack::with_postgres_down().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 10, &[]);
    let run = stack
        .run(&[
            "--retries",
            "1",
            "import",
            path_str(&file),
            "--created-by",
            "ann",
        ])
        .await;
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    let retries = run.named("retry");
    assert_eq!(retries.len(), 1, "{:?}", run.events);
    assert_eq!(
        (&retries[0]["attempt"], &retries[0]["of"]),
        (&2.into(), &2.into())
    );
    assert_eq!(retries[0]["delaySeconds"], 5.0, "the answer's Retry-After");
    assert!(
        retries[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("Service unavailable"),
        "{}",
        retries[0]
    );
    assert_eq!(run.last()["event"], "error");
    assert!(
        run.stderr.contains("gave up after 2 attempt(s)"),
        "{}",
        run.stderr
    );
}
