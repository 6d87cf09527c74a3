//! Delivery (README, "Notification lifecycle"): a run builds and stores the
//! plan as `plan` does, then sends the schedule's notifications that are
//! `pending_delivery` (never one delivered before, never a failed one: that
//! needs an approved retry), then decides and sends escalations of the
//! schedule's breached notifications. Each notification goes out as a
//! [`Notification`] whose idempotency key is its id (`ntf_...`);
//! `cavra-plugin-host` loads the plugins, retries and redacts; every attempt
//! is stored as it completes, stamped with the run's logical instant (`at`).

use crate::claims::{checked_lease, Holder, DEFAULT_LEASE};
use crate::error::AppError;

use crate::escalation::checked_minutes;
use crate::lifecycle::{self, micros, Entry, Lifecycle};
use crate::packs::PackSource;
use crate::plan::{build_plan, count_open, BuiltPlan, PlanRequest};
use crate::policy::{bind_routing, notification_providers, provider_filter, route_providers, schedule_providers, ROUTING_PACK};
use crate::records::{
    content_hash, escalation_id, AlertLevel, DeliveryAttempt, DeliveryResult, NotificationKind, Plan, RouteRecord, SkippedNotification, Text,
};
use crate::recovery::record_recoveries;
use crate::routing::{route_record, OwnerProviders, Router, ScheduleRoutes};
use crate::store::{wall_micros, Store, StoreProvider};
use cavra_engine::BindOptions;
use cavra_plugin_host::{
    find_plugin_files, plugin_dirs, ConnectorConfig, DeliveryOptions, DeliveryRecord, Isolation, LoadReport, Notification, Registry, Sources,
    CONNECTOR_CONFIG_ENV,
};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Runs one plugin library for a parent process (`--plugin-isolation process`): the
/// hidden `cavra plugin-child` command.
pub use cavra_plugin_host::run_child;

/// Interrupts every delivery of this process (a server's shutdown grace
/// ended): plugin children are killed, open attempts are recorded as
/// `interrupted`, and nothing new starts; and whether that happened.
pub use cavra_plugin_host::{interrupt_all, interrupted};

pub const DELIVERY_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-notification-delivery.v1";
/// Minutes to acknowledge when a route does not say.
const DEFAULT_ACK_MINUTES: f64 = 60.0;

/// Where connectors run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginIsolation {
    /// The default: the built-in connectors run in this process (trusted
    /// code, compiled into cavra); plugin libraries loaded from files run
    /// in a child process, as untrusted code.
    Auto,
    /// Everything inside this process (fastest; a panic is contained, but an
    /// abort, a crash or an `exit` in a plugin takes cavra down with it).
    InProcess,
    /// Each connector, built-ins too, in a child cavra process (an abort or
    /// crash fails only its deliveries).
    Process,
}

/// Which connectors to load and how to run them.
#[derive(Clone, Debug)]
pub struct PluginSettings {
    /// Plugin folders (`--plugin-dir`); `CAVRA_PLUGIN_PATH` adds more.
    pub dirs: Vec<PathBuf>,
    pub isolation: PluginIsolation,
    /// Providers that a plugin file may take over from a built-in connector
    /// (`--plugin-override`); otherwise the built-in serves them.
    pub overrides: Vec<String>,
    /// The connector configuration file. `None` (every front end) reads the
    /// file `CAVRA_CONNECTOR_CONFIG` names; `cavra demo` gives its own,
    /// which sends the sample's providers to the local outbox.
    pub connector_config: Option<PathBuf>,
}

impl PluginSettings {
    /// Plugin folders and isolation as given, no overrides.
    pub fn new(dirs: Vec<PathBuf>, isolation: PluginIsolation) -> PluginSettings {
        PluginSettings { dirs, isolation, overrides: Vec::new(), connector_config: None }
    }

    /// The private connector configuration these settings name.
    fn config(&self) -> Result<ConnectorConfig, AppError> {
        match &self.connector_config {
            Some(path) => ConnectorConfig::from_file(path).map_err(|e| AppError::Plugin(e.to_string())),
            None => ConnectorConfig::from_env().map_err(|e| AppError::Plugin(format!("{CONNECTOR_CONFIG_ENV}: {e}"))),
        }
    }

    /// The connectors: the built-ins, and the plugin files of the given
    /// folders (else the plugin builds cargo leaves next to the binary,
    /// which the built-ins shadow unless overridden).
    pub fn registry(&self) -> Registry {
        // The child is this binary's hidden `plugin-child` command.
        let child = || Isolation::Process { program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cavra")), args: vec!["plugin-child".into()] };
        let (builtin_isolation, isolation) = match self.isolation {
            PluginIsolation::InProcess => (Isolation::InProcess, Isolation::InProcess),
            PluginIsolation::Auto => (Isolation::InProcess, child()),
            PluginIsolation::Process => (child(), child()),
        };
        let mut dirs = plugin_dirs(&self.dirs);
        let (files, search_refusals) = if dirs.is_empty() {
            dirs = bundled_dir().into_iter().collect();
            let (files, _) = find_plugin_files(&dirs);
            (files.into_iter().filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().contains("cavra_plugin_"))).collect(), Vec::new())
        } else {
            find_plugin_files(&dirs)
        };
        let builtins = crate::connectors::builtins();
        Registry::load_sources(Sources { builtins, builtin_isolation, dirs, files, search_refusals, isolation, overrides: self.overrides.clone() })
    }
}

/// The folder of the running binary (cargo puts the plugin builds there;
/// test executables live one level down, in `deps/`).
fn bundled_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    Some(if dir.ends_with("deps") { dir.parent()?.to_path_buf() } else { dir.to_path_buf() })
}

/// What `plugins list` reports: the connectors loaded (built in or from
/// files), the folders searched, the files refused or shadowed, conflicts,
/// and the providers the connector configuration sends elsewhere; with why
/// that configuration cannot be used, if it cannot (the reason only: never a
/// value of it; the report then names no configured provider).
pub fn plugin_report(settings: &PluginSettings) -> (LoadReport, Option<String>) {
    let registry = settings.registry();
    match settings.config() {
        Ok(config) => (registry.report_for(&config), None),
        Err(e) => (registry.report().clone(), Some(e.to_string())),
    }
}

/// How a run sends: its plugins, attempts, timeout, backoff and claim lease
/// (delivery, approved retries and the API's sweeper alike).
#[derive(Clone, Debug)]
pub struct SendSettings {
    pub plugins: PluginSettings,
    /// Attempts per notification, the first included.
    pub max_attempts: u32,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// Delay before the first retry (doubles per retry, with jitter).
    pub backoff: Duration,
    /// How long a claim on a notification lasts without its heartbeat.
    pub claim_lease: Duration,
}

impl SendSettings {
    /// The default attempts (4), timeout (10 s), backoff (500 ms) and lease (60 s).
    pub fn new(plugins: PluginSettings) -> SendSettings {
        SendSettings {
            plugins,
            max_attempts: 4,
            attempt_timeout: Duration::from_millis(10_000),
            backoff: Duration::from_millis(500),
            claim_lease: DEFAULT_LEASE,
        }
    }

    fn options(&self) -> DeliveryOptions {
        DeliveryOptions { max_attempts: self.max_attempts, backoff_base: self.backoff, attempt_timeout: self.attempt_timeout, ..DeliveryOptions::default() }
    }
}

/// One delivery run.
#[derive(Clone, Debug)]
pub struct DeliverRequest {
    pub plan: PlanRequest,
    pub send: SendSettings,
    /// Minutes to acknowledge for every notification when deciding which
    /// are breached (overrides the minutes frozen at delivery).
    pub acknowledgement_minutes: Option<f64>,
}

/// The connectors of a run: their private configuration, the loaded
/// plugins, and the attempts, timeout and backoff.
pub(crate) struct Connectors {
    config: ConnectorConfig,
    registry: Registry,
    options: DeliveryOptions,
}

impl Connectors {
    /// Loads the configuration (`CAVRA_CONNECTOR_CONFIG`, with the outbox
    /// beside the store by default) and the plugins; `warn` hears refused
    /// plugins and configuration problems of the providers named.
    pub(crate) fn load(
        store: &dyn StoreProvider,
        settings: &SendSettings,
        providers: &BTreeSet<String>,
        warn: &mut dyn FnMut(&str),
    ) -> Result<Connectors, AppError> {
        let (plugins, options) = (&settings.plugins, settings.options());
        let mut config = plugins.config()?;
        if config.section("outbox").is_none() {
            let outbox = store.folder().join("outbox.jsonl");
            config.insert_default("outbox", json!({ "path": outbox.display().to_string() }));
        }
        let registry = plugins.registry();
        for refusal in &registry.report().refused {
            warn(&format!("plugin {} refused: {}", refusal.path.display(), refusal.reason));
        }
        if let Err(e) = registry.ensure_no_conflicts() {
            warn(&e.to_string());
        }
        // Only the connectors this run needs: a missing section of another is not news.
        for problem in registry.validate_config(&config).into_iter().filter(|p| providers.contains(&p.connector)) {
            warn(&problem.to_string());
        }
        Ok(Connectors { config, registry, options })
    }

    /// Claims and sends the notifications, storing every attempt as it
    /// completes (stamped with the run's instant and, for an approved retry,
    /// its id) and giving each claim up with the notification's last attempt.
    /// A notification another run holds, or delivered or attempted since this
    /// run looked, is not sent: it is returned in `unclaimed`.
    pub(crate) fn send(&self, holder: &Holder, store: &dyn Store, outgoing: Vec<Outgoing>, at: &str, retry_id: Option<&str>) -> Result<Sent, AppError> {
        let mut unclaimed = Vec::new();
        let mut claimed = Vec::with_capacity(outgoing.len());
        for item in outgoing {
            if holder.claim(&item.notification.idempotency_key, &item.route.schedule_id, item.seen_attempt.as_deref())? {
                claimed.push(item);
            } else {
                unclaimed.push(item.notification.idempotency_key);
            }
        }
        let outgoing = claimed;
        if outgoing.is_empty() {
            return Ok(Sent { attempts: Vec::new(), unclaimed });
        }
        // The route each attempt delivers, by its key (the notification id).
        let routes: HashMap<String, RouteRecord> = outgoing.iter().map(|o| (o.notification.idempotency_key.clone(), o.route.clone())).collect();
        let stamp = |record: &DeliveryRecord| {
            let route = routes.get(&record.idempotency_key);
            let mut attempt = DeliveryAttempt {
                record: record.clone(),
                schedule_id: route.map_or_else(String::new, |r| r.schedule_id.to_string()),
                notification_key: record.idempotency_key.clone(),
                notification_id: record.idempotency_key.clone(),
                at: at.to_string(),
                // Frozen here: the lifecycle reads them from the first successful delivery.
                acknowledgement_minutes: route.and_then(|r| r.acknowledgement_minutes),
                escalation_owner: route.and_then(|r| r.escalation_owner.as_deref().map(String::from)),
                retry_id: retry_id.map(String::from),
                delivery_id: String::new(),
                recorded_at: None,
            };
            attempt.delivery_id = format!("delivery_{}", content_hash(&attempt));
            attempt
        };
        let notifications: Vec<Notification> = outgoing.iter().map(|o| o.notification.clone()).collect();
        // Where each notification stands in the plan's order.
        let order: HashMap<String, usize> = notifications.iter().enumerate().map(|(i, n)| (n.idempotency_key.clone(), i)).collect();
        let mut store_error = None;
        let mut attempts = Vec::new();
        // The lease is renewed before every attempt: a notification whose
        // claim another run took over (this run stalled past its lease) is
        // not sent again, and is listed as held by another run.
        let lost = std::sync::Mutex::new(Vec::new());
        let may_attempt = |notification: &Notification| {
            let ours = holder.renew(&notification.idempotency_key);
            if !ours {
                lost.lock().unwrap_or_else(|p| p.into_inner()).push(notification.idempotency_key.clone());
            }
            ours
        };
        holder.while_renewed(|| {
            self.registry.deliver_all_gated(notifications, &self.config, &self.options, &may_attempt, |record| {
                let attempt = stamp(record);
                if store_error.is_none() {
                    // Recorded first, then released: a run that looks in between sees the attempt.
                    let saved = store.save_delivery(&attempt).and_then(|_| if record.is_final { holder.release(&record.idempotency_key) } else { Ok(()) });
                    if let Err(e) = saved {
                        store_error = Some(e);
                    }
                }
                attempts.push(attempt);
            })
        })?;
        unclaimed.extend(lost.into_inner().unwrap_or_else(|p| p.into_inner()));
        // Attempts are stored as they complete, in whatever order the
        // providers answer; a run reports them in the plan's order, so the
        // same run prints the same table.
        attempts.sort_by_key(|a| (order.get(&a.notification_id).copied().unwrap_or(usize::MAX), a.record.attempt));
        match store_error {
            Some(e) => Err(AppError::Store(e)),
            None => Ok(Sent { attempts, unclaimed }),
        }
    }
}

/// A delivery run's connectors, loaded the first time there is something to send.
struct OnDemand<'a> {
    store: &'a dyn StoreProvider,
    settings: &'a SendSettings,
    providers: &'a BTreeSet<String>,
    loaded: Option<Connectors>,
}

impl OnDemand<'_> {
    fn send(&mut self, holder: &Holder, store: &dyn Store, outgoing: Vec<Outgoing>, at: &str, warn: &mut dyn FnMut(&str)) -> Result<Sent, AppError> {
        if outgoing.is_empty() {
            return Ok(Sent::default());
        }
        let connectors = match self.loaded.take() {
            Some(loaded) => loaded,
            None => Connectors::load(self.store, self.settings, self.providers, warn)?,
        };
        let sent = connectors.send(holder, store, outgoing, at, None);
        self.loaded = Some(connectors);
        sent
    }
}

/// What a send did: every attempt, and the notifications it did not claim.
#[derive(Default)]
pub(crate) struct Sent {
    pub attempts: Vec<DeliveryAttempt>,
    pub unclaimed: Vec<String>,
}

/// A notification to send and the route decision it comes from.
pub(crate) struct Outgoing {
    pub route: RouteRecord,
    pub notification: Notification,
    /// The newest attempt the run saw (its claim fails if another came since).
    pub seen_attempt: Option<String>,
}

/// What a provider receives about a notification: its newest route
/// decision, the drill's due time (its episode) and the runbook.
pub(crate) fn outgoing(entry: &Entry, runbook_ref: Option<&str>) -> Outgoing {
    let route = entry.route.clone();
    let status = match entry.alert_level {
        AlertLevel::Critical => "needs_attention",
        AlertLevel::Warning => "due_soon",
        AlertLevel::Healthy => "ready",
    };
    let notification = Notification {
        idempotency_key: route.notification_id.to_string(),
        route_id: route.route_id.to_string(),
        plan_id: route.plan_id.to_string(),
        schedule_id: route.schedule_id.to_string(),
        owner: route.owner.to_string(),
        escalation_owner: route.escalation_owner_or_owner().to_string(),
        provider: route.provider.to_string(),
        alert_level: entry.alert_level.as_str().to_string(),
        status: status.to_string(),
        next_due_at: route.episode.as_deref().map(String::from),
        reason: route.reason.as_deref().unwrap_or_default().to_string(),
        runbook_ref: runbook_ref.map(String::from),
        // Whole minutes for providers; a fraction rounds up, never to less time.
        acknowledgement_minutes: route.acknowledgement_minutes.map_or(DEFAULT_ACK_MINUTES, |m| m.0).max(0.0).ceil() as u64,
        created_at: route.created_at.to_string(),
    };
    Outgoing { route, notification, seen_attempt: entry.last_attempt.as_ref().map(|a| a.delivery_id.clone()) }
}

/// Builds and stores the plan, then delivers the schedule's pending
/// notifications and its escalations, storing every attempt. `warn` hears
/// what an operator should know but does not stop the run (refused plugins,
/// config problems). Returns the delivery result and the plan.
pub fn deliver(
    packs: &PackSource,
    store: &dyn StoreProvider,
    request: &DeliverRequest,
    warn: &mut dyn FnMut(&str),
) -> Result<(DeliveryResult, Plan), AppError> {
    let minutes = checked_minutes(request.acknowledgement_minutes)?;
    let built = build_plan(packs, &request.plan)?;
    let mut plan = built.plan.clone();
    let at_text = plan.generated_at.clone();
    let at = micros(&at_text).ok_or_else(|| AppError::input(format!("not a time: {at_text}")))?;
    let schedule_id = plan.schedule_id.clone();
    let writable = store.writable()?;
    let options = lifecycle::Options { acknowledgement_minutes: minutes, resolve: None };
    // The schedule's states with this plan in them: what the plan counts and what this run sends.
    let before = count_open(packs, &mut plan, writable.history(Some(&schedule_id), at)?, at, &options)?;
    plan.stored = Some(true);
    writable.save_plans(std::slice::from_ref(&plan), std::slice::from_ref(&built.policy_record))?;
    let wanted = provider_filter(&request.plan.provider)?;
    let wanted = |provider: &str| wanted.as_ref().is_none_or(|w| w.contains(provider));
    let derive = || -> Result<Lifecycle, AppError> { lifecycle::derive(packs, &writable.history(Some(&schedule_id), at)?, at, &options) };
    let runbook_ref = built.schedule["runbook_ref"].as_str();

    // The notifications waiting for delivery. One whose successor (a later
    // episode or a higher alert level) is pending too, or was just decided by
    // this plan, is not sent: the successor is what the owner should hear,
    // and when it is suppressed the older one waits with it.
    let pending: Vec<&Entry> =
        before.entries.iter().filter(|e| e.kind() == NotificationKind::Notification && e.state == "pending_delivery" && wanted(&e.route.provider)).collect();
    let current: Vec<&Entry> = before.entries.iter().filter(|e| e.route.plan_id == plan.plan_id && e.kind() == NotificationKind::Notification).collect();
    let (held, sendable): (Vec<&Entry>, Vec<&Entry>) = pending.iter().partition(|e| pending.iter().chain(&current).any(|o| succeeds(o, e)));
    let held: BTreeSet<&str> = held.iter().map(|e| e.id()).collect();
    let todo: Vec<Outgoing> = sendable.iter().map(|e| outgoing(e, runbook_ref)).collect();

    // Escalations may go to any provider of the schedule.
    let mut providers = schedule_providers(&built.schedule, &built.policy);
    providers.extend(notification_providers(&built.schedule));
    // Plugins load (child processes start) only when there is something to send.
    let mut connectors = OnDemand { store, settings: &request.send, providers: &providers, loaded: None };
    let holder = Holder::new(&*writable, checked_lease(request.send.claim_lease)?);
    let sent = connectors.send(&holder, &*writable, todo, &at_text, warn)?;
    let (mut attempts, mut unclaimed) = (sent.attempts, sent.unclaimed);

    // Escalations of the breached notifications (and re-decided ones still waiting).
    let after = derive()?;
    let escalations = decide_escalations(packs, &built, &after, at, &plan.plan_id)?;
    if !escalations.is_empty() {
        writable.save_routes(&escalations)?;
    }
    let with_escalations = derive()?;
    let escalate: Vec<Outgoing> = with_escalations
        .entries
        .iter()
        .filter(|e| e.kind() == NotificationKind::Escalation && e.state == "pending_delivery" && wanted(&e.route.provider))
        .map(|e| outgoing(e, runbook_ref))
        .collect();
    let sent = connectors.send(&holder, &*writable, escalate, &at_text, warn)?;
    let escalation_count = sent.attempts.iter().map(|a| a.notification_id.as_str()).collect::<BTreeSet<_>>().len();
    attempts.extend(sent.attempts);
    unclaimed.extend(sent.unclaimed);

    let delivered_providers: BTreeSet<String> = attempts.iter().filter(|a| a.record.is_delivered()).map(|a| a.record.provider.clone()).collect();
    let recoveries = record_recoveries(&*writable, &delivered_providers, None)?;
    let attempted: BTreeSet<&str> = attempts.iter().map(|a| a.notification_id.as_str()).collect();
    let finals: Vec<DeliveryAttempt> = attempts.iter().filter(|a| a.record.is_final).cloned().collect();
    let delivered = finals.iter().filter(|a| a.record.is_delivered()).count();
    // Interrupted (a shutdown) is not failed: those notifications stay pending.
    let interrupted = finals.iter().filter(|a| a.record.is_interrupted()).count();
    let skipped: Vec<SkippedNotification> = with_escalations
        .open()
        .filter(|e| !attempted.contains(e.id()))
        .map(|e| SkippedNotification {
            route_id: e.route.route_id.to_string(),
            owner: e.route.owner.to_string(),
            provider: e.route.provider.to_string(),
            notification_key: e.id().to_string(),
            state: e.state.clone(),
            reason: if held.contains(e.id()) {
                "a later notification to this owner on this provider replaces it".to_string()
            } else if unclaimed.contains(&e.id().to_string()) {
                "another delivery run holds it, or sent it since this run looked".to_string()
            } else {
                skip_reason(e, wanted(&e.route.provider))
            },
        })
        .collect();
    let earlier_failed_count = skipped.iter().filter(|s| s.state == "delivery_failed").count();
    let result = DeliveryResult {
        schema_version: DELIVERY_SCHEMA.to_string(),
        plan_id: plan.plan_id.clone(),
        schedule_id,
        generated_at: plan.generated_at.clone(),
        alert_level: plan.alert_level,
        deliverable_route_count: plan.deliverable_route_count,
        suppressed_route_count: plan.suppressed_route_count,
        delivered_count: delivered,
        failed_count: finals.len() - delivered - interrupted,
        interrupted_count: interrupted,
        skipped_count: skipped.len(),
        attempt_count: attempts.len(),
        escalation_count,
        earlier_failed_count,
        deliveries: finals,
        skipped,
        recoveries,
    };
    Ok((result, plan))
}

/// Takes over the claims whose run died (their lease ran out) and sends
/// those notifications that still wait for delivery, as of now: what the
/// API's sweeper runs every half lease. Returns the attempts made.
pub fn take_over_expired(
    packs: &PackSource,
    store: &dyn StoreProvider,
    settings: &SendSettings,
    warn: &mut dyn FnMut(&str),
) -> Result<Vec<DeliveryAttempt>, AppError> {
    let Some(readable) = store.readable()? else { return Ok(Vec::new()) };
    let expired = readable.expired_claims(wall_micros())?;
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let writable = store.writable()?;
    let at = wall_micros();
    let at_text = cavra_engine::time::format_time(at);
    let schedules: BTreeSet<&str> = expired.iter().map(|c| c.schedule_id.as_str()).collect();
    let ids: BTreeSet<&str> = expired.iter().map(|c| c.notification_id.as_str()).collect();
    let mut outgoing_all = Vec::new();
    for schedule in schedules {
        let states = lifecycle::derive(packs, &writable.history(Some(schedule), at)?, at, &lifecycle::Options::default())?;
        outgoing_all.extend(states.entries.iter().filter(|e| ids.contains(e.id()) && e.state == "pending_delivery").map(|e| outgoing(e, None)));
    }
    if outgoing_all.is_empty() {
        return Ok(Vec::new());
    }
    let providers: BTreeSet<String> = outgoing_all.iter().map(|o| o.route.provider.to_string()).collect();
    let connectors = Connectors::load(store, settings, &providers, warn)?;
    let holder = Holder::new(&*writable, checked_lease(settings.claim_lease)?);
    let sent = connectors.send(&holder, &*writable, outgoing_all, &at_text, None)?;
    let delivered: BTreeSet<String> = sent.attempts.iter().filter(|a| a.record.is_delivered()).map(|a| a.record.provider.clone()).collect();
    record_recoveries(&*writable, &delivered, None)?;
    Ok(sent.attempts)
}

/// Whether `later` succeeds `earlier`: same schedule, owner and provider; a
/// later episode, or the same episode at a higher alert level.
fn succeeds(later: &Entry, earlier: &Entry) -> bool {
    let (a, b) = (&later.route, &earlier.route);
    (&a.schedule_id, &a.owner, &a.provider) == (&b.schedule_id, &b.owner, &b.provider) && lifecycle::succeeds(a, b)
}

/// Why a run left an open notification alone.
fn skip_reason(entry: &Entry, wanted: bool) -> String {
    match entry.state.as_str() {
        _ if !wanted => "not one of the providers asked for (--provider)".to_string(),
        "outstanding" | "breached" => "delivered before; waiting for acknowledgement".to_string(),
        "delivery_failed" => "delivery failed earlier; an approved retry (go-rollback-drill-delivery-retry) sends it again".to_string(),
        "suppressed" => entry.reason.clone().unwrap_or_else(|| "suppressed".to_string()),
        _ => entry.reason.clone().unwrap_or_default(),
    }
}

/// The escalation route decisions of this run, at `at`: for each breached
/// notification of the schedule that has no escalation yet, one per
/// provider of its escalation owner's route (else the schedule's); and each
/// escalation still waiting (pending or suppressed) decided again. The
/// routing pack decides each, so maintenance windows and calendars apply.
fn decide_escalations(packs: &PackSource, built: &BuiltPlan, states: &Lifecycle, at: i64, plan_id: &str) -> Result<Vec<RouteRecord>, AppError> {
    let escalated: BTreeSet<&str> = states.entries.iter().filter_map(|e| e.route.escalates.as_deref()).collect();
    // (escalates, escalation owner, providers, the escalated notification)
    let mut wanted: Vec<(&Entry, String, Vec<String>)> = Vec::new();
    for entry in &states.entries {
        match entry.kind() {
            NotificationKind::Notification if entry.state == "breached" && !escalated.contains(entry.id()) => {
                let owner = entry.escalation_owner.clone();
                let providers = route_providers(&built.schedule, &built.policy, &owner);
                wanted.push((entry, owner, providers));
            }
            NotificationKind::Escalation if matches!(entry.state.as_str(), "pending_delivery" | "suppressed") => {
                if let Some(parent) = entry.route.escalates.as_deref().and_then(|p| states.get(p)) {
                    wanted.push((parent, entry.route.owner.to_string(), vec![entry.route.provider.to_string()]));
                }
            }
            _ => {}
        }
    }
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let routing = bind_routing(packs, &built.policy, BindOptions::at(at))?;
    let router = Router::new(&routing.program).map_err(|e| AppError::Pack(format!("{ROUTING_PACK}: {e}")))?;
    let at_text = cavra_engine::time::format_time(at);
    let mut routes = Vec::new();
    for (parent, owner, providers) in wanted {
        let providers: Vec<Arc<str>> = providers.iter().map(|p| Arc::from(p.as_str())).collect();
        let schedule = ScheduleRoutes {
            schedule_id: Arc::from(parent.route.schedule_id.as_str()),
            // An escalation is of a due schedule.
            status: Arc::from("needs_attention"),
            owners: vec![OwnerProviders { owner: Arc::from(owner.as_str()), configured: providers.clone(), providers }],
        };
        let planned = router.plan(at, &schedule).map_err(|e| routing.render_error(&e))?;
        for decision in planned.routes.iter() {
            let mut route = route_record(decision, &parent.route.schedule_id, &at_text, parent.route.episode.as_deref());
            route.notification_id = escalation_id(parent.id(), &owner, decision.provider());
            route.escalates = Some(parent.id().into());
            route.alert_level = Some(parent.alert_level);
            if route.delivers() {
                // What the escalation owner is told: who missed what.
                route.reason = parent.reason.as_deref().map(Text::from).or(route.reason);
            }
            route.plan_id = plan_id.into();
            route.route_id = format!("route_{}", content_hash(&route)).into();
            routes.push(route);
        }
    }
    Ok(routes)
}
