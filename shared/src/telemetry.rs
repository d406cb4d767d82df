//! Logs: JSON lines for CloudWatch, `RUST_LOG` to filter (default `info`).
//!
//! At `info` and above the code logs counts and ids only, never a lead's name, email or phone,
//! and never a URL (which could carry a password).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .try_init();
}
