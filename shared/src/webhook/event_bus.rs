//! The same notification on an EventBridge bus (`EVENT_BUS_NAME`), so other services can
//! subscribe without a URL: `PutEvents` with source `lead-import`, detail-type
//! `Lead Import Finished` and the import's summary as detail. It is owed and retried like a
//! webhook, as a row whose target is [`TARGET_PREFIX`] and the bus's name.

use std::sync::Arc;
use tokio::sync::OnceCell;

/// A `webhook_deliveries.url` that names a bus instead of a URL.
pub const TARGET_PREFIX: &str = "eventbridge:";
pub const SOURCE: &str = "lead-import";
pub const DETAIL_TYPE: &str = "Lead Import Finished";

/// The EventBridge client, made on first use from the SDK's default chain (its endpoint
/// follows `AWS_ENDPOINT_URL_EVENTBRIDGE`).
#[derive(Clone, Default)]
pub struct EventBus {
    client: Arc<OnceCell<aws_sdk_eventbridge::Client>>,
}

impl EventBus {
    /// With a client made elsewhere (the tests' fake endpoint).
    pub fn with_client(client: aws_sdk_eventbridge::Client) -> Self {
        EventBus {
            client: Arc::new(OnceCell::new_with(Some(client))),
        }
    }

    /// Puts one event on `bus`; whether EventBridge took it.
    pub async fn put(&self, bus: &str, detail: &str) -> bool {
        let client = self
            .client
            .get_or_init(|| async {
                aws_sdk_eventbridge::Client::new(&crate::aws::sdk_config().await)
            })
            .await;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail)
            .build();
        match client.put_events().entries(entry).send().await {
            Ok(out) if out.failed_entry_count() == 0 => true,
            Ok(out) => {
                let code = out
                    .entries()
                    .first()
                    .and_then(|e| e.error_code())
                    .unwrap_or("unknown");
                tracing::warn!(bus, code, "EventBridge refused the event");
                false
            }
            Err(e) => {
                tracing::warn!(bus, error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), "could not put the event on EventBridge");
                false
            }
        }
    }
}
