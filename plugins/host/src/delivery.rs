//! The delivery engine: every route to its provider's plugin, with retries.
//!
//! * **Parallel across providers, sequential within one**: one worker thread
//!   per provider, so a slow provider does not hold up the others, and no
//!   provider receives a burst of concurrent posts from one run.
//! * **Retries**: a retryable failure (HTTP 429/5xx, connection error,
//!   timeout) is retried after `backoff_base * 2^(attempt-1)` (capped at
//!   `backoff_max`) with "equal jitter" (a random point in the upper half),
//!   up to `max_attempts` attempts in all; a permanent failure is not
//!   retried. The last attempt of a route that never succeeded is recorded
//!   as `failed`, so nothing is silently dropped.
//! * **Interrupts**: once [`interrupt_all`](crate::interrupt_all) is called
//!   (a host that must stop), a call in flight ends at once (its child is
//!   killed, an in-process call abandoned), a backoff sleep is cut short, and
//!   every route still open gets one last attempt recorded as `interrupted`
//!   (final, not a failure: nothing was refused, the route may be sent
//!   again) instead of a call, a retry or a restart. A plugin child stopped
//!   from outside by SIGTERM or SIGINT (a service manager or a terminal
//!   signalling the whole service) interrupts its call the same way.
//! * **Idempotency**: every attempt sends the notification's
//!   [`Notification::idempotency_key`] exactly as given (cavra computes it;
//!   the host never derives one), so a provider that honours it never shows
//!   a retried notification twice.
//! * **Records**: every attempt yields a [`DeliveryRecord`], handed to the
//!   caller's `on_attempt` callback *on the calling thread* as it happens (so
//!   the callback may write to a database handle that is not `Send`), and
//!   returned at the end in route order.
//! * **Secrets**: plugin messages and targets pass through the configuration's
//!   [`Redactor`](crate::Redactor); records never hold a URL path or query, a
//!   header value, a token or a configuration value.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use cavra_connector_api::{DeliveryRequest, Notification, Outcome};
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::CallResult;
use crate::config::ConnectorConfig;
use crate::interrupt;
use crate::isolation::PROCESS_EXITED;
use crate::registry::{Plugin, Registry};

/// The message of an attempt interrupted before its connector call.
const INTERRUPTED_BEFORE: &str = "interrupted: the host is shutting down; not sent";
/// The message of an attempt whose connector call was interrupted.
const INTERRUPTED_DURING: &str = "interrupted: the host is shutting down during the connector call (the provider may have received it)";

/// Knobs of [`Registry::deliver_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Attempts per route, first one included (default 4; at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry (default 500 ms); doubles per retry.
    pub backoff_base: Duration,
    /// Longest delay between attempts (default 30 s).
    pub backoff_max: Duration,
    /// Time one attempt may take (default 10 s). Plugins receive it; the host
    /// abandons the attempt a little later if the plugin ignores it.
    pub attempt_timeout: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            max_attempts: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The provider accepted it.
    Delivered,
    /// Failed; will be retried.
    RetryableFailure,
    /// Failed for good (the provider refused it, bad configuration, the connector panicked).
    PermanentFailure,
    /// Failed for good after the last allowed attempt, or because the
    /// connector process died or no plugin serves the provider.
    Failed,
    /// Not finished because the host interrupted its deliveries to stop
    /// ([`interrupt_all`](crate::interrupt_all)): the call was stopped, or
    /// never made; or because the plugin's child process was stopped from
    /// outside (SIGTERM, SIGINT) during the call. Final, but not a failure:
    /// the route may be sent again.
    Interrupted,
}

impl AttemptOutcome {
    /// The outcome's JSON name (`delivered`, `retryable_failure`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::RetryableFailure => "retryable_failure",
            AttemptOutcome::PermanentFailure => "permanent_failure",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Interrupted => "interrupted",
        }
    }
}

/// One delivery attempt, as the caller should store it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The route decision delivered.
    pub route_id: String,
    /// Its plan.
    pub plan_id: String,
    /// The provider.
    pub provider: String,
    /// The plugin that handled it (empty when none could).
    pub connector: String,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Provider status (HTTP status, SMTP code), when there was one.
    pub status_code: Option<u16>,
    /// What happened.
    pub outcome: AttemptOutcome,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub completed_at: String,
    /// Where it went, public-safe (`https://hooks.slack.com/…`).
    pub target: String,
    /// Public-safe description.
    pub message: String,
    /// The key sent to the provider.
    pub idempotency_key: String,
    /// Whether this is the route's last attempt in this run.
    #[serde(rename = "final")]
    pub is_final: bool,
}

impl DeliveryRecord {
    /// Whether the route was delivered by this attempt.
    pub fn is_delivered(&self) -> bool {
        self.outcome == AttemptOutcome::Delivered
    }

    /// Whether the host interrupted the route (see [`AttemptOutcome::Interrupted`]).
    pub fn is_interrupted(&self) -> bool {
        self.outcome == AttemptOutcome::Interrupted
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `base * 2^(attempt-1)`, capped, with equal jitter: uniformly in `[d/2, d]`.
fn backoff(options: &DeliveryOptions, attempt: u32, random: u64) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(20);
    let full = options.backoff_base.saturating_mul(factor).min(options.backoff_max);
    let half = full / 2;
    let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let extra = if jitter_nanos == 0 { 0 } else { random % (jitter_nanos + 1) };
    half + Duration::from_nanos(extra)
}

/// A random number without a dependency: std's hasher keys are random per process and per `RandomState`.
fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

impl Registry {
    /// Delivers every notification through its provider's plugin, in
    /// parallel across providers, retrying retryable failures. Each attempt is
    /// passed to `on_attempt` as it completes (on this thread), and all
    /// records are returned ordered by route (input order), then attempt.
    ///
    /// Never fails as a whole: a route that cannot be delivered yields a
    /// record with outcome `permanent_failure` or `failed` (`interrupted`
    /// once [`interrupt_all`](crate::interrupt_all) was called). To deliver only
    /// what a previous run did not, filter `routes` by the route ids whose
    /// stored records include `delivered`.
    pub fn deliver_all(
        &self,
        routes: Vec<Notification>,
        config: &ConnectorConfig,
        options: &DeliveryOptions,
        on_attempt: impl FnMut(&DeliveryRecord),
    ) -> Vec<DeliveryRecord> {
        self.deliver_all_gated(routes, config, options, &|_| true, on_attempt)
    }

    /// As [`Registry::deliver_all`], asking `may_attempt` (on the provider's
    /// thread) before every attempt, retries included: when it says no, the
    /// route stops there, with no attempt and no record. A caller that holds
    /// a lease on each notification renews it here, so a notification whose
    /// lease was lost (taken over by another run) is not sent again.
    pub fn deliver_all_gated(
        &self,
        routes: Vec<Notification>,
        config: &ConnectorConfig,
        options: &DeliveryOptions,
        may_attempt: &(dyn Fn(&Notification) -> bool + Sync),
        mut on_attempt: impl FnMut(&DeliveryRecord),
    ) -> Vec<DeliveryRecord> {
        let mut by_provider: BTreeMap<String, Vec<(usize, Notification)>> = BTreeMap::new();
        for (index, route) in routes.into_iter().enumerate() {
            by_provider.entry(route.provider.clone()).or_default().push((index, route));
        }
        let mut records: Vec<(usize, DeliveryRecord)> = Vec::new();
        let (tx, rx) = mpsc::channel::<(usize, DeliveryRecord)>();
        thread::scope(|scope| {
            for (provider, jobs) in by_provider {
                let tx = tx.clone();
                let thread_name = format!("cavra-deliver-{provider}");
                let work = move || {
                    let context = self.provider_context(&provider, config);
                    for (index, notification) in jobs {
                        self.deliver_route(&context, &notification, config, options, may_attempt, &mut |record| {
                            let _ = tx.send((index, record));
                        });
                    }
                };
                // Should no thread be available, deliver on this one: slower, still complete.
                let work = Arc::new(Mutex::new(Some(work)));
                let for_thread = Arc::clone(&work);
                let spawned = thread::Builder::new().name(thread_name).spawn_scoped(scope, move || run_once(&for_thread));
                if spawned.is_err() {
                    run_once(&work);
                }
            }
            drop(tx);
            for (index, record) in rx {
                on_attempt(&record);
                records.push((index, record));
            }
        });
        records.sort_by_key(|(index, record)| (*index, record.attempt));
        records.into_iter().map(|(_, record)| record).collect()
    }

    /// What every route of one provider shares: computed once per provider.
    fn provider_context<'a>(&'a self, provider: &str, config: &'a ConnectorConfig) -> ProviderContext<'a> {
        match self.plugin_for(provider, config) {
            Ok((plugin, section)) => {
                let target = config.redactor().target(&plugin.target(section));
                ProviderContext { plugin: Ok(plugin), section, target }
            }
            Err(reason) => ProviderContext { plugin: Err(reason), section: None, target: String::new() },
        }
    }

    /// All attempts at one route.
    fn deliver_route(
        &self,
        context: &ProviderContext<'_>,
        notification: &Notification,
        config: &ConnectorConfig,
        options: &DeliveryOptions,
        may_attempt: &(dyn Fn(&Notification) -> bool + Sync),
        emit: &mut dyn FnMut(DeliveryRecord),
    ) {
        let redactor = config.redactor();
        let record = |attempt: u32, started_at: String, result: AttemptResult| DeliveryRecord {
            route_id: notification.route_id.clone(),
            plan_id: notification.plan_id.clone(),
            provider: notification.provider.clone(),
            connector: context.plugin.as_ref().map(|p| p.info.name.clone()).unwrap_or_default(),
            attempt,
            status_code: result.status_code,
            outcome: result.outcome,
            started_at,
            completed_at: now(),
            target: context.target.clone(),
            message: redactor.scrub(&result.message),
            idempotency_key: notification.idempotency_key.clone(),
            is_final: !result.retry,
        };
        // After an interrupt, plugins refuse to load: that is no failure of the route.
        if interrupt::interrupted() {
            emit(record(1, now(), AttemptResult::interrupted(INTERRUPTED_BEFORE)));
            return;
        }
        let plugin = match &context.plugin {
            Ok(plugin) => *plugin,
            Err(reason) => {
                let result = AttemptResult { outcome: AttemptOutcome::Failed, status_code: None, message: reason.clone(), retry: false };
                emit(record(1, now(), result));
                return;
            }
        };
        let max_attempts = options.max_attempts.max(1);
        let timeout_ms = u64::try_from(options.attempt_timeout.as_millis()).unwrap_or(u64::MAX);
        for attempt in 1..=max_attempts {
            if interrupt::interrupted() {
                emit(record(attempt, now(), AttemptResult::interrupted(INTERRUPTED_BEFORE)));
                return;
            }
            if !may_attempt(notification) {
                return;
            }
            let started_at = now();
            let request = DeliveryRequest { notification: notification.clone(), config: context.section.cloned().unwrap_or_default(), attempt, timeout_ms };
            let last = attempt == max_attempts;
            let result = match plugin.deliver(&request, options.attempt_timeout) {
                CallResult::Outcome(Outcome::Delivered { status_code }) => {
                    AttemptResult { outcome: AttemptOutcome::Delivered, status_code, message: "delivered".into(), retry: false }
                }
                CallResult::Outcome(Outcome::PermanentFailure { status_code, message }) => {
                    AttemptResult { outcome: AttemptOutcome::PermanentFailure, status_code, message, retry: false }
                }
                CallResult::Outcome(Outcome::RetryableFailure { status_code, message }) => AttemptResult::retryable(status_code, message, last, max_attempts),
                CallResult::TimedOut => AttemptResult::retryable(None, format!("no outcome within {timeout_ms} ms (attempt abandoned)"), last, max_attempts),
                CallResult::ProcessExited => AttemptResult { outcome: AttemptOutcome::Failed, status_code: None, message: PROCESS_EXITED.into(), retry: false },
                CallResult::Unavailable(reason) => AttemptResult { outcome: AttemptOutcome::Failed, status_code: None, message: reason, retry: false },
                CallResult::Interrupted => AttemptResult::interrupted(INTERRUPTED_DURING),
                CallResult::Stopped(signal) => AttemptResult::interrupted(&format!(
                    "interrupted: the connector process was stopped by {signal} during the call (the provider may have received it)"
                )),
            };
            let retry = result.retry;
            emit(record(attempt, started_at, result));
            if !retry {
                return;
            }
            // Cut short by an interrupt: the next turn records it.
            interrupt::pause(backoff(options, attempt, random_u64()));
        }
    }
}

/// See [`Registry::provider_context`].
struct ProviderContext<'a> {
    plugin: Result<&'a Plugin, String>,
    section: Option<&'a Value>,
    target: String,
}

/// One attempt's result, before it becomes a record.
struct AttemptResult {
    outcome: AttemptOutcome,
    status_code: Option<u16>,
    message: String,
    retry: bool,
}

impl AttemptResult {
    /// The route's last attempt, interrupted: final, and not retried.
    fn interrupted(message: &str) -> Self {
        AttemptResult { outcome: AttemptOutcome::Interrupted, status_code: None, message: message.into(), retry: false }
    }

    /// A retryable failure: retried unless it was the last attempt, which is `failed`.
    fn retryable(status_code: Option<u16>, message: String, last: bool, max_attempts: u32) -> Self {
        if last {
            let message = format!("{message}; giving up after {max_attempts} attempt(s)");
            AttemptResult { outcome: AttemptOutcome::Failed, status_code, message, retry: false }
        } else {
            AttemptResult { outcome: AttemptOutcome::RetryableFailure, status_code, message, retry: true }
        }
    }
}

/// Runs the closure in `slot` unless it already ran.
fn run_once<F: FnOnce()>(slot: &Mutex<Option<F>>) {
    let work = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(work) = work {
        work();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let o = DeliveryOptions { backoff_base: Duration::from_millis(100), backoff_max: Duration::from_millis(350), ..DeliveryOptions::default() };
        assert_eq!(backoff(&o, 1, 0), Duration::from_millis(50));
        assert_eq!(backoff(&o, 2, 0), Duration::from_millis(100));
        assert_eq!(backoff(&o, 3, 0), Duration::from_millis(175)); // capped at 350, half of it
        for r in [1, 7, u64::MAX] {
            let d = backoff(&o, 2, r);
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_millis(200), "{d:?}");
        }
        assert_eq!(backoff(&o, 100, 0), Duration::from_millis(175));
    }

    #[test]
    fn records_serialise_with_the_documented_names() {
        let r = DeliveryRecord {
            route_id: "route_1".into(),
            plan_id: "plan_1".into(),
            provider: "slack".into(),
            connector: "slack".into(),
            attempt: 2,
            status_code: Some(503),
            outcome: AttemptOutcome::RetryableFailure,
            started_at: "2026-05-21T19:00:00.000Z".into(),
            completed_at: "2026-05-21T19:00:00.100Z".into(),
            target: "https://hooks.slack.com/…".into(),
            message: "provider answered HTTP 503".into(),
            idempotency_key: "cavra-00".into(),
            is_final: false,
        };
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["outcome"], "retryable_failure");
        assert_eq!(json["final"], false);
        assert_eq!(json["status_code"], 503);
    }
}
