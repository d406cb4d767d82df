//! Notifications when an import ends (`completed`, `failed` or `cancelled`): a POST to the
//! import's `callbackUrl` and to the deployment's `WEBHOOK_URL`, signed as the Standard
//! Webhooks specification describes ([`signature`]).
//!
//! Delivery is at least once and never holds up the drain. When a drain records the outcome
//! that finishes an import (or a cancel finishes it), one row per URL is added to the
//! `webhook_deliveries` table in Postgres, the durable store: a notification owed is as
//! durable as the outcome that made it owed, whatever happens to Redis. Each drain invocation
//! (and so the local loop) then sends the rows that are due ([`deliver`]), a few at a time with
//! a short timeout each, and records each attempt (time, response code) in the row and in the
//! status document; a failed attempt is tried again after `WEBHOOK_RETRY_BASE_MS` doubled per
//! attempt, with jitter, until 24 hours after the first. The row's id is the `webhook-id`,
//! the same on every attempt, so a receiver can drop the repeats.
//!
//! Where a URL may point ([`target`]): `https` only, and never to a private, loopback or
//! link-local address once resolved, unless `WEBHOOK_ALLOWED_HOSTS` names the host or a range
//! holding its address. A per-import URL is checked when the import is submitted (a refusal is
//! its `400`), and every URL again before each attempt (DNS may have changed).

pub mod deliver;
pub mod event_bus;
pub mod signature;
pub mod signing_key;
pub mod target;

pub use deliver::{DeliveryReport, deliver_due};
pub use event_bus::EventBus;

use crate::config::Config;
use crate::postgres::{Store, StoreError};

/// The deployment's own targets of every import's notification (`WEBHOOK_URL`, the
/// `EVENT_BUS_NAME` bus) and whether notifications are on at all (`WEBHOOK_SECRET` or a bus
/// set): what the drain and the cancel need to owe one when an import ends.
#[derive(Debug, Clone, Default)]
pub struct Notifications {
    enabled: bool,
    targets: Vec<String>,
}

impl Notifications {
    pub fn from_config(config: &Config) -> Self {
        let bus = config
            .event_bus_name
            .as_ref()
            .map(|bus| format!("{}{bus}", event_bus::TARGET_PREFIX));
        Notifications {
            enabled: config.webhooks_signed() || bus.is_some(),
            targets: config.webhook_url.iter().cloned().chain(bus).collect(),
        }
    }

    /// Owes the notification of each of `import_ids` that has just finished (see
    /// [`Store::owe_notifications`]); nothing when notifications are off.
    pub async fn owe(&self, store: &Store, import_ids: &[&str]) -> Result<(), StoreError> {
        if !self.enabled || import_ids.is_empty() {
            return Ok(());
        }
        store.owe_notifications(import_ids, &self.targets).await
    }
}
pub use signature::WebhookSecret;
pub use signing_key::SigningKey;
pub use target::{AllowList, TargetError, check_url};
