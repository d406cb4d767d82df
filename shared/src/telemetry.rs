//! Logs: JSON lines for CloudWatch, filtered by `RUST_LOG` (see [`crate::config::VARIABLES`]).
//!
//! At `info` and above the code logs counts and ids only, never a lead's name, email or phone,
//! and never a URL (which could carry a password).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(crate::config::default_of("RUST_LOG")));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .try_init();
}
