//! The logs a test's own thread writes, captured as production writes them.
//!
//! One subscriber serves the whole test binary (installed once, globally), and its writer
//! hands each line to the buffer of the thread that wrote it, if that thread is capturing.
//! A subscriber per test (`set_default`) would be simpler but is not reliable: tracing caches
//! each callsite's interest, and a callsite first hit on another thread while this one's
//! subscriber was being installed can stay cached as "never", silently losing the line the
//! test is looking for (seen in CI). A global subscriber is interested in every callsite at
//! `info` and above, always.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};
use tracing_subscriber::fmt::MakeWriter;

/// Log lines written on one thread while the guard of [`capture_logs`] lives.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    /// Where this thread's log lines go; `None` drops them, as with no subscriber.
    static CAPTURING: RefCell<Option<CapturedLogs>> = const { RefCell::new(None) };
}

/// The global subscriber's writer: whatever thread writes, to that thread's capture.
struct ThisThreadsCapture;

impl Write for ThisThreadsCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|capturing| {
            if let Some(logs) = capturing.borrow().as_ref() {
                logs.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ThisThreadsCapture {
    type Writer = ThisThreadsCapture;
    fn make_writer(&'a self) -> ThisThreadsCapture {
        ThisThreadsCapture
    }
}

/// Stops capturing on its thread when dropped.
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURING.with(|capturing| capturing.borrow_mut().take());
    }
}

/// Captures everything at `info` and above, as JSON lines like production, on this thread
/// (a `#[tokio::test]` runs its tasks on it) until the guard is dropped.
pub fn capture_logs() -> (CapturedLogs, CaptureGuard) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(ThisThreadsCapture)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the integration tests");
        // Callsites hit before the subscriber existed cached "never": ask them again.
        tracing::callsite::rebuild_interest_cache();
    });
    let logs = CapturedLogs::default();
    CAPTURING.with(|capturing| *capturing.borrow_mut() = Some(logs.clone()));
    (logs, CaptureGuard(()))
}
