//! `leads import`: a file in parts, its counts, a resume after SIGKILL, a dry run.

use crate::support::{Running, Stack, path_str, write_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_rows_import_in_five_parts_with_the_right_counts() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 50_000, &[]);
    let run = stack
        .run(&["--json", "import", path_str(&file), "--created-by", "ann"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let accepted = run.named("part_accepted");
    assert_eq!(accepted.len(), 5);
    assert!(
        accepted
            .iter()
            .all(|e| e["leads"] == 10_000 && e["resumed"] == false)
    );
    let finished = run.named("part_finished");
    assert_eq!(finished.len(), 5);
    assert!(
        finished
            .iter()
            .all(|e| e["status"] == "completed" && e["created"] == 10_000)
    );
    let summary = run.last();
    assert_eq!(summary["event"], "summary");
    assert_eq!(
        (
            &summary["total"],
            &summary["created"],
            &summary["failed"],
            &summary["parts"]
        ),
        (&50_000.into(), &50_000.into(), &0.into(), &5.into())
    );
    assert_eq!(stack.count("SELECT count(*) FROM leads").await, 50_000);
    assert_eq!(stack.count("SELECT count(*) FROM import_jobs").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_part_two_the_same_command_resumes_and_imports_nothing_twice() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 50_000, &[]);
    let args = ["--json", "import", path_str(&file), "--created-by", "ann"];

    let mut first = Running::spawn(stack.leads(&args));
    first
        .until(|e| e["event"] == "part_accepted" && e["part"] == 2)
        .await;
    first.child.kill().await.expect("SIGKILL"); // std's kill is SIGKILL on Unix
    let status = first.child.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let jobs_after_kill = stack.count("SELECT count(*) FROM import_jobs").await;
    assert!(
        (2..=5).contains(&jobs_after_kill),
        "{jobs_after_kill} parts taken before the kill"
    );

    let second = stack.run(&args).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    let accepted = second.named("part_accepted");
    assert_eq!(accepted.len(), 5);
    // The parts the first run had sent are answered 200 (the same id and body), not imported.
    for part in &accepted[..2] {
        assert_eq!(part["resumed"], true, "{part}");
    }
    // Every part taken before the kill is resumed (a part in flight at the kill may have been
    // taken just after the count: it is resumed too).
    let resumed = accepted.iter().filter(|e| e["resumed"] == true).count() as i64;
    assert!(
        resumed >= jobs_after_kill,
        "{resumed} resumed, {jobs_after_kill} taken"
    );
    let summary = second.last();
    assert_eq!(
        (&summary["created"], &summary["failed"]),
        (&50_000.into(), &0.into())
    );
    assert_eq!(stack.count("SELECT count(*) FROM leads").await, 50_000);
    assert_eq!(stack.count("SELECT count(*) FROM import_jobs").await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_stores_nothing_and_reports_what_would_fail() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 2_500, &[3, 1_200, 2_499]);
    let run = stack
        .run(&[
            "--json",
            "import",
            path_str(&file),
            "--created-by",
            "ann",
            "--dry-run",
            "--part-size",
            "1000",
        ])
        .await;
    assert_eq!(run.code, Some(1), "some leads would fail: {}", run.stderr);
    assert!(run.named("part_accepted").is_empty());
    let judged: Vec<_> = run
        .named("part_finished")
        .iter()
        .map(|e| {
            (
                e["status"].clone(),
                e["wouldImport"].clone(),
                e["failed"].clone(),
            )
        })
        .collect();
    assert_eq!(
        judged,
        [
            ("judged".into(), 999.into(), 1.into()),
            ("judged".into(), 999.into(), 1.into()),
            ("judged".into(), 499.into(), 1.into()),
        ]
    );
    let summary = run.last();
    assert_eq!(
        (&summary["dryRun"], &summary["wouldImport"]),
        (&true.into(), &2_497.into())
    );
    assert_eq!(stack.count("SELECT count(*) FROM leads").await, 0);
    assert_eq!(stack.count("SELECT count(*) FROM import_jobs").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_arrays_and_json_lines_import_like_csv() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let lead = |i: usize| format!(r#"{{"fullName":"Lead {i}","email":"lead{i}@example.com"}}"#);
    let array = dir.path().join("leads.json");
    std::fs::write(
        &array,
        format!(
            "[\n{}\n]\n",
            (0..25).map(lead).collect::<Vec<_>>().join(",\n")
        ),
    )
    .unwrap();
    let lines = dir.path().join("more.jsonl");
    std::fs::write(&lines, (25..40).map(|i| lead(i) + "\n").collect::<String>()).unwrap();
    for (file, leads, parts) in [(&array, 25, 3), (&lines, 15, 2)] {
        let run = stack
            .run(&[
                "--json",
                "import",
                path_str(file),
                "--created-by",
                "ann",
                "--part-size",
                "10",
            ])
            .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let summary = run.last();
        assert_eq!(
            (&summary["created"], &summary["parts"]),
            (&leads.into(), &parts.into())
        );
    }
    assert_eq!(stack.count("SELECT count(*) FROM leads").await, 40);

    // onExisting goes in a JSON part's body.
    let run = stack
        .run(&[
            "import",
            path_str(&array),
            "--created-by",
            "ann",
            "--on-existing",
            "skip",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        (&run.last()["skipped"], &run.last()["failed"]),
        (&25.into(), &0.into())
    );
}

/// The repository's spreadsheet exports (a UTF-8 BOM with quoted newlines, UTF-16 "Unicode
/// text" with tabs, Windows-1252 with semicolons and a blank record) keep their names' accents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spreadsheet_exports_import_with_their_accents() {
    let stack = Stack::start().await;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");
    for (name, created, failed) in [
        ("excel-utf8-bom-crlf.csv", 3, 1),
        ("excel-unicode-text-utf16le.txt", 2, 0),
        ("windows-1252-semicolon.csv", 2, 1),
    ] {
        let file = format!("{fixtures}{name}");
        let run = stack.run(&["import", &file, "--created-by", "ann"]).await;
        let summary = run.last();
        assert_eq!(
            (&summary["total"], &summary["created"], &summary["failed"]),
            (&(created + failed).into(), &created.into(), &failed.into()),
            "{name}: {}",
            run.stderr
        );
    }
    let mut names: Vec<String> = sqlx::query_scalar("SELECT full_name FROM leads")
        .fetch_all(&stack.db)
        .await
        .unwrap();
    names.sort(); // by bytes: the database's collation may differ
    assert_eq!(
        names,
        [
            "Ann Lee",
            "Doe, John",
            "François Œuvre",
            "José Müller",
            "José Müller",
            "Zoë \"Z\" Quinn",
            "Åsa Nordström"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_names_the_columns_the_aliases_do_not_know() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crm.csv");
    std::fs::write(
        &file,
        "Contact,Work Mail,Notes\nAnn Lee,ann@example.com,x\nBo Chen,bo@example.com,y\n",
    )
    .unwrap();
    let file = path_str(&file);
    let without = stack.run(&["import", file, "--created-by", "ann"]).await;
    assert_eq!(without.code, Some(3), "no email column: {}", without.stderr);
    let run = stack
        .run(&[
            "import",
            file,
            "--created-by",
            "ann",
            "--mapping",
            "Contact=fullName",
            "--mapping",
            "Work Mail=email",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.last()["created"], 2);
    let names: Vec<String> = sqlx::query_scalar("SELECT full_name FROM leads ORDER BY email")
        .fetch_all(&stack.db)
        .await
        .unwrap();
    assert_eq!(names, ["Ann Lee", "Bo Chen"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_larger_than_the_deployment_takes_are_refused_with_a_hint() {
    let stack = Stack::start_with(&[("MAX_LEADS_PER_IMPORT", "100")]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 150, &[]);
    let run = stack
        .run(&["import", path_str(&file), "--created-by", "ann"])
        .await;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert_eq!(run.last()["title"], "Too many leads");
    assert!(
        run.stderr.contains("a smaller --part-size fits"),
        "{}",
        run.stderr
    );
    let run = stack
        .run(&[
            "import",
            path_str(&file),
            "--created-by",
            "ann",
            "--part-size",
            "100",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(stack.count("SELECT count(*) FROM leads").await, 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_already_stored_are_skipped_or_updated_as_asked() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = write_csv(dir.path(), "first.csv", 300, &[]);
    let run = stack
        .run(&["import", path_str(&first), "--created-by", "ann"])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // The same emails again, with new phone numbers, and 100 new leads.
    let again = dir.path().join("again.csv");
    let text = std::fs::read_to_string(&first)
        .unwrap()
        .replace("+1555", "+1666");
    let more: String = (300..400)
        .map(|i| format!("Lead {i},lead{i}@example.com,+1777{i:07},NEW,WEBSITE\n"))
        .collect();
    std::fs::write(&again, text + &more).unwrap();
    let again = path_str(&again);

    let failing = stack.run(&["import", again, "--created-by", "ann"]).await;
    assert_eq!(failing.code, Some(1), "onExisting=fail by default");
    assert_eq!(
        (&failing.last()["created"], &failing.last()["failed"]),
        (&100.into(), &300.into())
    );

    let dry = stack
        .run(&[
            "import",
            again,
            "--created-by",
            "ann",
            "--on-existing",
            "skip",
            "--dry-run",
        ])
        .await;
    assert_eq!(dry.code, Some(0), "skipping is no failure: {}", dry.stderr);
    // The 100 new leads were created by the run that failed the others.
    assert_eq!(
        (&dry.last()["skipped"], &dry.last()["failed"]),
        (&400.into(), &0.into())
    );

    let skipped = stack
        .run(&[
            "import",
            again,
            "--created-by",
            "ann",
            "--on-existing",
            "skip",
        ])
        .await;
    assert_eq!(skipped.code, Some(0), "{}", skipped.stderr);
    assert_eq!(
        (&skipped.last()["skipped"], &skipped.last()["created"]),
        (&400.into(), &0.into())
    );

    let updated = stack
        .run(&[
            "import",
            again,
            "--created-by",
            "ann",
            "--on-existing",
            "update",
        ])
        .await;
    assert_eq!(updated.code, Some(0), "{}", updated.stderr);
    assert_eq!(
        (&updated.last()["updated"], &updated.last()["failed"]),
        (&400.into(), &0.into())
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM leads WHERE phone LIKE '+1666%'")
            .await,
        300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_says_how_to_resume_and_the_rerun_does() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "export.csv", 3_000, &[]);
    let args = [
        "import",
        path_str(&file),
        "--created-by",
        "ann",
        "--part-size",
        "1000",
    ];
    let mut first = Running::spawn(stack.leads(&args));
    first.until(|e| e["event"] == "part_accepted").await;
    let pid = first.child.id().expect("running") as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let error = first.until(|e| e["event"] == "error").await;
    assert_eq!(error["title"], "Interrupted");
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("run the same command again")
    );
    assert_eq!(first.child.wait().await.unwrap().code(), Some(130));

    let second = stack.run(&args).await;
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert_eq!(second.named("part_accepted")[0]["resumed"], true);
    assert_eq!(stack.count("SELECT count(*) FROM leads").await, 3_000);
}
