//! Starting drains when there is work, instead of waiting for the schedule.
//!
//! Two moments start drains: an import that was just queued (a *kick*, so its leads start
//! moving at once), and a drain that finds more backlog than the drains running can take
//! (*fan-out*, at its start and again when its deadline stops it with work left). On AWS a
//! drain is started by an asynchronous Lambda `Invoke` (`InvocationType=Event`) of
//! `DRAIN_FUNCTION_NAME`; in the local run by a message to its drain loop; with neither (the
//! tests, or the variable unset) nothing is started and the schedule does the work.
//!
//! Starting can never fail or hold up an import: a kick that cannot be sent within
//! `DRAIN_KICK_TIMEOUT_MS` is logged and left to the schedule, which stays as the backstop.
//!
//! Bounded, and cannot loop:
//! 1. every kick carries a generation: an import's or the schedule's drain is generation 0,
//!    a drain started by a drain is one more, and a drain of generation [`MAX_GENERATION`]
//!    starts none; the next schedule starts a fresh chain;
//! 2. a drain starts only what the backlog needs (`DRAIN_ENTRIES_PER_DRAIN` entries each)
//!    less the drains registered as running, never more than `DRAIN_MAX_CONCURRENCY` in all;
//! 3. drain-fn's reserved concurrency caps Lambda itself: invokes past it are throttled and
//!    retried by Lambda's event queue, not multiplied;
//! 4. Lambda's recursive loop detection (on by default; the SDK passes the X-Ray lineage on)
//!    stops a chain of invocations caused by one event after 16; the generation cap (8) is
//!    below it, so legitimate work never trips it.
//!
//! Imports are coalesced: an import sends no kick while a drain is registered as running with
//! time to spare (it reads new entries as they come; a drain leaving looks once more after it
//! unregistered, so no import falls between the two) or as asked to start and not started
//! yet. So a burst of imports starts one drain, and the backlog's fan-out does the rest.

use crate::config::Config;
use crate::ports::DrainKicker;
use crate::redis::stream::Queue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A drain of this generation starts no other (below the 16 of Lambda's recursive loop
/// detection, checked at compile time below).
pub const MAX_GENERATION: u32 = 8;
const _: () = assert!(MAX_GENERATION < 16);

/// A running drain with less time left than this is not counted on for new entries.
const SPARE_MS: u64 = 2_000;

/// The event of a drain started by an import or another drain (drain-fn's other event is the
/// schedule's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kick {
    pub reason: KickReason,
    pub generation: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum KickReason {
    /// An import was queued.
    Import,
    /// A drain found more backlog than the running drains can take.
    FanOut,
    /// A drain reached its deadline with work left.
    Continuation,
}

/// How many more drains a drain of `generation` should start: what `backlog` entries need at
/// `per_drain` each, capped at `max`, less the `running` ones; none past [`MAX_GENERATION`].
pub fn drains_to_start(
    backlog: u64,
    running: u64,
    max: u32,
    per_drain: u64,
    generation: u32,
) -> u32 {
    if generation >= MAX_GENERATION || backlog == 0 {
        return 0;
    }
    let wanted = backlog.div_ceil(per_drain.max(1)).min(u64::from(max));
    wanted.saturating_sub(running) as u32
}

/// Where drains are started.
#[derive(Clone)]
pub enum DrainStarter {
    /// Nowhere: the schedule starts drains.
    Off,
    Lambda(Arc<LambdaStarter>),
    /// The local run's drain loop.
    Local(mpsc::UnboundedSender<Kick>),
}

pub struct LambdaStarter {
    client: aws_sdk_lambda::Client,
    function: String,
    timeout: Duration,
}

impl DrainStarter {
    /// With `DRAIN_FUNCTION_NAME` set, a Lambda client from the SDK's default chain (region,
    /// credentials, and `AWS_ENDPOINT_URL_LAMBDA` for a test's emulator); otherwise off.
    pub async fn from_config(config: &Config) -> Self {
        let Some(function) = &config.drain_function_name else {
            return DrainStarter::Off;
        };
        let sdk = crate::aws::sdk_config().await;
        DrainStarter::Lambda(Arc::new(LambdaStarter {
            client: aws_sdk_lambda::Client::new(&sdk),
            function: function.clone(),
            timeout: config.drain_kick_timeout,
        }))
    }

    /// Starts `count` drains with `kick`, noted in `queue` as starting (so that no one asks
    /// for them again before they run). Failures are logged, never returned: the schedule is
    /// the backstop.
    pub async fn start(&self, queue: &Queue, count: u32, kick: Kick) {
        if count == 0 || matches!(self, DrainStarter::Off) {
            return;
        }
        if let Err(e) = queue.note_starting(count).await {
            tracing::warn!(error = %e, "could not note drains as starting");
        }
        match self {
            DrainStarter::Off => {}
            DrainStarter::Local(loop_inbox) => {
                for _ in 0..count {
                    let _ = loop_inbox.send(kick);
                }
            }
            DrainStarter::Lambda(lambda) => {
                let payload = serde_json::to_vec(&kick).expect("a kick serializes");
                for _ in 0..count {
                    let invoke = lambda
                        .client
                        .invoke()
                        .function_name(&lambda.function)
                        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                        .payload(aws_sdk_lambda::primitives::Blob::new(payload.clone()))
                        .send();
                    match tokio::time::timeout(lambda.timeout, invoke).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %aws_sdk_lambda::error::DisplayErrorContext(&e), ?kick, "could not start a drain; the schedule will");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(?kick, "starting a drain timed out; the schedule will");
                            return;
                        }
                    }
                }
                tracing::info!(count, ?kick, "drains started");
            }
        }
    }
}

/// The kick after an import, coalesced (see the module comment).
pub struct ImportKicker {
    pub starter: DrainStarter,
    pub queue: Queue,
}

impl DrainKicker for ImportKicker {
    async fn kick(&self) {
        if matches!(self.starter, DrainStarter::Off) {
            return;
        }
        match self.queue.drains_with_time_left(SPARE_MS).await {
            Ok(0) => {}
            Ok(_) => return,
            Err(e) => tracing::warn!(error = %e, "could not see which drains run; starting one"),
        }
        let kick = Kick {
            reason: KickReason::Import,
            generation: 0,
        };
        self.starter.start(&self.queue, 1, kick).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_decides_how_many_more_drains_start() {
        // 1,000 entries at 200 each want 5 drains; capped at 4; less the 1 running.
        assert_eq!(drains_to_start(1_000, 1, 4, 200, 0), 3);
        assert_eq!(drains_to_start(1_000, 4, 4, 200, 0), 0, "at the limit");
        assert_eq!(drains_to_start(1_000, 6, 4, 200, 0), 0, "over it (a race)");
        assert_eq!(drains_to_start(150, 1, 4, 200, 0), 0, "one drain takes it");
        assert_eq!(drains_to_start(0, 0, 4, 200, 0), 0, "nothing waits");
    }

    #[test]
    fn a_chain_of_drains_ends_at_the_generation_cap() {
        assert_eq!(drains_to_start(1_000_000, 1, 64, 1, MAX_GENERATION - 1), 63);
        assert_eq!(drains_to_start(1_000_000, 1, 64, 1, MAX_GENERATION), 0);
    }

    #[test]
    fn a_kick_is_a_small_json_event_and_nothing_else_reads_as_one() {
        let kick = Kick {
            reason: KickReason::FanOut,
            generation: 3,
        };
        let json = serde_json::to_string(&kick).unwrap();
        assert_eq!(json, r#"{"reason":"fanOut","generation":3}"#);
        assert_eq!(serde_json::from_str::<Kick>(&json).unwrap(), kick);
        let scheduled = include_str!("../../events/drain-scheduled.json");
        assert!(serde_json::from_str::<Kick>(scheduled).is_err());
    }
}
