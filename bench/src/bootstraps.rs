//! The release bootstraps of the three functions: their size on disk and their cold start
//! under the Runtime API emulator (`emulator.rs`).

use crate::workload::Workload;
use crate::{emulator, root};
use std::path::PathBuf;
use std::time::Duration;

/// One function's release bootstrap.
pub struct Function {
    pub name: String,
    pub path: PathBuf,
    pub bytes: Option<u64>,
    pub cold_start_ms: Option<f64>,
    pub note: String,
}

/// Sizes of the bootstraps (`target/lambda/<fn>/bootstrap`, else `target/release/<fn>`) and
/// their cold start: exec to the first answer under the Runtime API emulator, median of 3.
pub async fn bootstrap_phase(
    redis_url: &str,
    database_url: &str,
    work: &Workload,
) -> Vec<Function> {
    let target = target_dir();
    let status_event = read_event("status.json").replace(
        "unique-import-id",
        work.bodies.first().map_or("none", |(id, _)| id.as_str()),
    );
    let events = [
        ("import-fn", read_event("import-seed.json")),
        ("drain-fn", read_event("drain-scheduled.json")),
        ("status-fn", status_event),
    ];
    let env = vec![
        ("REDIS_URL".to_owned(), redis_url.to_owned()),
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("BLOCK_TIMEOUT".to_owned(), "0".to_owned()),
    ];
    let mut out = Vec::new();
    for (name, event) in events {
        let lambda = target.join("lambda").join(name).join("bootstrap");
        let path = if lambda.is_file() {
            lambda
        } else {
            target.join("release").join(name)
        };
        let bytes = std::fs::metadata(&path).ok().map(|m| m.len());
        let mut f = Function {
            name: name.to_owned(),
            path: path.clone(),
            bytes,
            cold_start_ms: None,
            note: String::new(),
        };
        if bytes.is_none() {
            f.note = "not built".into();
            out.push(f);
            continue;
        }
        let mut samples = Vec::new();
        for _ in 0..3 {
            match emulator::cold_start(&path, &env, &event, Duration::from_secs(20)).await {
                Ok(c) if c.ok => samples.push(c.ms),
                Ok(c) => {
                    f.note = format!("answered with an error: {}", c.answer);
                    break;
                }
                Err(e) => {
                    f.note = format!("{e:#}");
                    break;
                }
            }
        }
        if !samples.is_empty() {
            samples.sort_by(f64::total_cmp);
            f.cold_start_ms = Some(samples[samples.len() / 2]);
        }
        out.push(f);
    }
    out
}

fn read_event(name: &str) -> String {
    std::fs::read_to_string(root().join("events").join(name)).unwrap_or_default()
}

/// The target directory this binary was built in (`<target>/release/leads-bench`), so that
/// `CARGO_TARGET_DIR` is honoured; the repository's `target/` otherwise.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .filter(|dir| dir.join("release").is_dir())
        .unwrap_or_else(|| root().join("target"))
}
