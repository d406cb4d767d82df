//! CSV imports (`Content-Type: text/csv`) end to end, with fixtures shaped like real exports
//! (`tests/fixtures/` at the repository root): accepted, drained into Postgres, and reported like JSON imports.

use crate::support::app::{TestApp, spawn_app};
use crate::support::assertions::{assert_nothing_left, error_indexes};
use axum::body::Body;
use http::{Request, StatusCode};
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl TestApp {
    async fn post_csv(
        &self,
        query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> crate::support::requests::Answer {
        self.call(
            Request::post(format!("/leads/import?{query}"))
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// The stored leads of an import: (full_name, email, phone, status, source), by email.
    async fn stored(
        &self,
        import_id: &str,
    ) -> Vec<(String, String, Option<String>, String, String)> {
        sqlx::query_as(
            "SELECT full_name, email, phone, status, source FROM leads WHERE import_id = $1 ORDER BY email",
        )
        .bind(import_id)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }
}

/// Imports a fixture, drains it, and returns its `202` body and finished status document.
async fn import_fixture(
    t: &TestApp,
    name: &str,
    import_id: &str,
    content_type: &str,
    total: u64,
) -> (serde_json::Value, serde_json::Value) {
    let answer = t
        .post_csv(
            &format!("importId={import_id}&createdBy=u1"),
            content_type,
            fixture(name),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["total"], total, "{}", answer.body);
    assert_eq!(
        answer.location.as_deref(),
        Some(format!("/leads/import/{import_id}/status").as_str())
    );
    t.drain_all().await;
    let doc = t.assert_job_accounted(import_id, total).await;
    assert_eq!(doc["status"], "completed", "{doc}");
    (answer.body, doc)
}

#[tokio::test]
async fn an_excel_utf8_export_with_bom_crlf_and_quoted_newlines() {
    let t = spawn_app().await;
    let (accepted, doc) = import_fixture(
        &t,
        "excel-utf8-bom-crlf.csv",
        "excel",
        "text/csv; charset=utf-8; header=present",
        4,
    )
    .await;
    assert_eq!(
        accepted["mapping"],
        json!({
            "mapped": [
                {"column": "Full Name", "field": "fullName"},
                {"column": "E-mail", "field": "email"},
                {"column": "Phone", "field": "phone"},
                {"column": "Lead Status", "field": "status"},
                {"column": "Lead Source", "field": "source"}
            ],
            "attributes": ["Company"],
            "ignored": []
        })
    );
    assert_eq!(doc["progress"]["successful"], 3, "{doc}");
    assert_eq!(error_indexes(&doc, "invalid_email"), [2]);
    // Ann's record spans lines 3 and 4 (a quoted CRLF), so the bad email is on line 5.
    assert_eq!(doc["progress"]["errors"][0]["line"], 5, "{doc}");

    // The same file again: the drain finds every email stored and names each lead's line.
    let (_, again) =
        import_fixture(&t, "excel-utf8-bom-crlf.csv", "excel-again", "text/csv", 4).await;
    let found: Vec<(&str, u64, u64)> = again["progress"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["code"].as_str().unwrap(),
                e["index"].as_u64().unwrap(),
                e["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("email_exists", 0, 2),
            ("email_exists", 1, 3),
            ("invalid_email", 2, 5),
            ("email_exists", 3, 6)
        ]
    );
    let stored = t.stored("excel").await;
    assert_eq!(
        stored[0],
        (
            "Ann Lee".into(),
            "ann.lee@example.com".into(),
            None,
            "CONTACTED".into(),
            "REFERRAL".into()
        )
    );
    assert_eq!(stored[1].0, "Doe, John");
    assert_eq!(
        (stored[1].3.as_str(), stored[1].4.as_str()),
        ("NEW", "WEBSITE")
    );
    assert!(stored[1].2.is_some(), "the phone is kept");
    assert_eq!(
        (stored[2].0.as_str(), stored[2].1.as_str()),
        ("Zoë \"Z\" Quinn", "zoe@example.com")
    );
}

#[tokio::test]
async fn an_excel_unicode_text_export_in_utf16le_with_tabs_and_split_names() {
    let t = spawn_app().await;
    let (accepted, _) =
        import_fixture(&t, "excel-unicode-text-utf16le.txt", "utf16", "text/csv", 2).await;
    assert_eq!(
        accepted["mapping"]["mapped"],
        json!([
            {"column": "First Name", "field": "firstName"},
            {"column": "Last Name", "field": "lastName"},
            {"column": "Email Address", "field": "email"},
            {"column": "Mobile", "field": "phone"}
        ])
    );
    let names: Vec<String> = t.stored("utf16").await.into_iter().map(|l| l.0).collect();
    assert_eq!(names, ["Åsa Nordström", "José Müller"]);
}

#[tokio::test]
async fn a_windows_1252_export_separated_by_semicolons() {
    let t = spawn_app().await;
    let (accepted, doc) =
        import_fixture(&t, "windows-1252-semicolon.csv", "cp1252", "text/csv", 3).await;
    // The headers as the file spells them, odd spacing included.
    assert_eq!(accepted["mapping"]["mapped"][1]["column"], " EMAIL ");
    assert_eq!(accepted["mapping"]["ignored"], json!([]));
    assert_eq!(error_indexes(&doc, "duplicate_in_import"), [2], "{doc}");
    let stored = t.stored("cp1252").await;
    let names: Vec<(&str, &str)> = stored
        .iter()
        .map(|l| (l.0.as_str(), l.3.as_str()))
        .collect();
    assert_eq!(
        names,
        [("François Œuvre", "QUALIFIED"), ("José Müller", "NEW")]
    );
}

#[tokio::test]
async fn the_same_leads_as_csv_or_json_are_the_same_import() {
    let t = spawn_app().await;
    let csv = t
        .post_csv(
            "importId=same&createdBy=u1",
            "text/csv",
            b"email,name\na@x.io,Ann\n".to_vec(),
        )
        .await;
    assert_eq!(csv.status, StatusCode::ACCEPTED, "{}", csv.body);
    let json = t
        .post_import(&json!({"importId": "same", "createdBy": "u1", "leads": [{"fullName": "Ann", "email": "a@x.io"}]}).to_string())
        .await;
    assert_eq!(
        json.status,
        StatusCode::OK,
        "a retry in the other format: {}",
        json.body
    );
    let other = t
        .post_csv(
            "importId=same&createdBy=u1",
            "text/csv",
            b"email,name\nb@x.io,Ann\n".to_vec(),
        )
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_explicit_mapping_reads_columns_no_alias_names() {
    let t = spawn_app().await;
    let answer = t
        .post_csv(
            "importId=mapped&createdBy=u1&mapping=Kontakt:fullName,Work%20Mail:email",
            "text/csv",
            b"Kontakt,Work Mail,Email\nAda Byron,ada@work.io,ada@home.io\n".to_vec(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["mapping"]["attributes"], json!(["Email"]));
    t.drain_all().await;
    t.assert_job_accounted("mapped", 1).await;
    let stored = t.stored("mapped").await;
    assert_eq!(
        (stored[0].0.as_str(), stored[0].1.as_str()),
        ("Ada Byron", "ada@work.io")
    );
}

#[tokio::test]
async fn request_level_problems_are_refused_with_problem_json_and_nothing_is_kept() {
    let t = spawn_app().await;
    let cases: [(&str, &str, &[u8], u16, &str); 8] = [
        (
            "createdBy=u1&mapping=Nope:email",
            "text/csv",
            b"email\na@x.io\n",
            400,
            "/mapping",
        ),
        (
            "createdBy=u1",
            "text/csv",
            b"Name,Phone\nA,1\n",
            400,
            "\"Name\", \"Phone\"",
        ),
        (
            "importId=x",
            "text/csv",
            b"email\na@x.io\n",
            400,
            "/createdBy",
        ),
        (
            "createdBy=u1&delimiter=%7C",
            "text/csv",
            b"email\na@x.io\n",
            400,
            "/delimiter",
        ),
        (
            "createdBy=u1",
            "text/csv; charset=klingon",
            b"email\na@x.io\n",
            400,
            "/charset",
        ),
        (
            "createdBy=u1&createdBy=u2",
            "text/csv",
            b"email\na@x.io\n",
            400,
            "more than once",
        ),
        ("createdBy=u1", "text/csv", b"email\n\n", 400, "/leads"),
        (
            "createdBy=u1",
            "text/plain",
            b"email\na@x.io\n",
            415,
            "text/csv",
        ),
    ];
    for (query, content_type, body, status, says) in cases {
        let answer = t.post_csv(query, content_type, body.to_vec()).await;
        assert_eq!(
            answer.status.as_u16(),
            status,
            "{query} {content_type}: {}",
            answer.body
        );
        assert_eq!(answer.content_type, "application/problem+json");
        let errors = answer.body["errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let said = format!(
            "{} {}",
            answer.body["detail"].as_str().unwrap(),
            errors
                .iter()
                .map(|e| format!("{} {}", e["pointer"], e["message"]))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(said.contains(says), "{says}: {}", answer.body);
    }
    let max = t.app.import_limits().max_leads;
    let mut over = b"email\n".to_vec();
    for i in 0..=max {
        over.extend_from_slice(format!("l{i}@x.io\n").as_bytes());
    }
    let too_many = t.post_csv("createdBy=u1", "text/csv", over).await;
    assert_eq!(
        too_many.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_many.body
    );
    assert_nothing_left(&t).await;
}

#[tokio::test]
async fn json_imports_errors_name_no_line() {
    let t = spawn_app().await;
    t.post_accepted(
        "json-lines",
        &[
            json!({"fullName": "A", "email": "bad"}),
            json!({"fullName": "B", "email": "b@x.io"}),
        ],
    )
    .await;
    t.drain_all().await;
    let doc = t.assert_job_accounted("json-lines", 2).await;
    let error = &doc["progress"]["errors"][0];
    assert_eq!(error["code"], "invalid_email", "{doc}");
    assert!(error.get("line").is_none(), "{doc}");
}

#[tokio::test]
async fn a_dry_run_reports_everything_and_stores_nothing() {
    let t = spawn_app().await;
    let answer = t
        .post_csv(
            "createdBy=u1&dryRun=true",
            "text/csv",
            fixture("excel-utf8-bom-crlf.csv"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["dryRun"], true);
    assert_eq!(
        (
            &answer.body["total"],
            &answer.body["wouldImport"],
            &answer.body["failed"]
        ),
        (&json!(4), &json!(3), &json!(1))
    );
    assert_eq!(answer.body["errors"][0]["line"], 5, "{}", answer.body);
    assert_eq!(answer.body["mapping"]["attributes"], json!(["Company"]));
    assert_nothing_left(&t).await;
    assert_eq!(t.lead_count("excel").await, 0);

    // Once the file is imported, a dry run of it finds every valid email taken, by line.
    import_fixture(&t, "excel-utf8-bom-crlf.csv", "excel", "text/csv", 4).await;
    let jobs_before: i64 = sqlx::query_scalar("SELECT count(*) FROM import_jobs")
        .fetch_one(&t.db)
        .await
        .unwrap();
    let again = t
        .post_csv(
            "importId=excel-2&createdBy=u1&dryRun=1",
            "text/csv",
            fixture("excel-utf8-bom-crlf.csv"),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(
        again.body["failedByCode"],
        json!({"email_exists": 3, "invalid_email": 1})
    );
    let lines: Vec<u64> = again.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3, 5, 6]);
    // JSON too, with the query parameter; and a bad value is refused.
    let json_dry = t
        .call(
            Request::post("/leads/import?dryRun=true")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"importId": "j-dry", "createdBy": "u1", "leads": [{"fullName": "Ann", "email": "ann.lee@example.com"}]})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(json_dry.status, StatusCode::OK, "{}", json_dry.body);
    assert_eq!(json_dry.body["errors"][0]["code"], "email_exists");
    assert!(json_dry.body["errors"][0].get("line").is_none());
    let bad = t
        .post_csv(
            "createdBy=u1&dryRun=maybe",
            "text/csv",
            b"email\na@x.io\n".to_vec(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.content_type, "application/problem+json");
    let jobs_after: i64 = sqlx::query_scalar("SELECT count(*) FROM import_jobs")
        .fetch_one(&t.db)
        .await
        .unwrap();
    assert_eq!(jobs_before, jobs_after, "a dry run records no job");
    assert_eq!(t.lead_count("excel-2").await, 0);
    assert_eq!(t.lead_count("j-dry").await, 0);
}

/// A `multipart/form-data` body as browsers send a form with a file input.
fn form(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----leadsFormBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, content_type, bytes)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n")
                .as_bytes(),
        );
        if !content_type.is_empty() {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_form_upload_imports_its_file_part_as_csv_or_json() {
    let t = spawn_app().await;
    let utf16 = fixture("excel-unicode-text-utf16le.txt");
    let (content_type, body) = form(
        &[("importId", "form-csv"), ("createdBy", "u1")],
        Some(("leads.txt", "", &utf16)),
    );
    let answer = t.post_csv("", &content_type, body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["mapping"]["mapped"][0]["field"], "firstName");
    t.drain_all().await;
    t.assert_job_accounted("form-csv", 2).await;
    assert_eq!(t.lead_count("form-csv").await, 2);

    let json_file = json!({"importId": "form-json", "createdBy": "u1", "leads": [{"fullName": "Kim", "email": "kim@x.io"}]}).to_string();
    let (content_type, body) = form(
        &[],
        Some(("leads.json", "application/json", json_file.as_bytes())),
    );
    let answer = t.post_csv("", &content_type, body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert!(answer.body.get("mapping").is_none());

    // A dry run as a field; the charset of the file part is obeyed.
    let (content_type, body) = form(
        &[("createdBy", "u1"), ("dryRun", "true")],
        Some((
            "x.csv",
            "text/csv; charset=windows-1252",
            b"Name;Email\r\nJos\xe9;jose@x.io\r\n",
        )),
    );
    let dry = t.post_csv("", &content_type, body).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(
        (&dry.body["wouldImport"], &dry.body["failed"]),
        (&json!(1), &json!(0))
    );
    assert_eq!(t.lead_count("form-json").await, 0, "not drained yet");
    // Windows browsers with Excel installed label a .csv file part as an Excel file.
    let (content_type, body) = form(
        &[("createdBy", "u1"), ("dryRun", "true")],
        Some((
            "x.csv",
            "application/vnd.ms-excel",
            b"Name,Email\r\nAda,ada@x.io\r\n",
        )),
    );
    let dry = t.post_csv("", &content_type, body).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["wouldCreate"], 1, "{}", dry.body);

    for ((content_type, body), status) in [
        (form(&[("createdBy", "u1")], None), 400),
        (form(&[], Some(("x.pdf", "application/pdf", b"%PDF"))), 415),
        (("multipart/form-data".to_owned(), b"x".to_vec()), 400),
        (
            (
                "multipart/form-data; boundary=b".to_owned(),
                b"--b\r\nbroken".to_vec(),
            ),
            400,
        ),
    ] {
        let answer = t.post_csv("", &content_type, body).await;
        assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
        assert_eq!(answer.content_type, "application/problem+json");
    }
}
