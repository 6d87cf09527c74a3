//! Delivery of a notification plan through connector plugins. The plan is
//! built and stored as for `plan`; the application turns each `deliver`
//! route into a [`Notification`] named by its one idempotency key
//! ([`notification_key`]: schedule, owner, provider, alert level, due time),
//! which providers receive; `cavra-plugin-host` loads the plugins, retries
//! and redacts; every attempt is stored as it completes. A re-run delivers
//! only what was not delivered yet, and a provider that honours the key
//! never gets it twice.

use crate::error::AppError;
use crate::packs::PackSource;
use crate::plan::{build_plan, PlanRequest};
use crate::records::{content_hash, DeliveryAttempt, DeliveryResult, Plan, SkippedNotification};
use crate::store::StoreProvider;
use cavra_plugin_host::{find_plugin_files, plugin_dirs, ConnectorConfig, DeliveryOptions, DeliveryRecord, Isolation, LoadReport, Notification, Registry};
use serde_json::{json, Value as Json};
use std::path::PathBuf;
use std::time::Duration;

/// Runs one plugin library for a parent process (`--plugin-isolation process`): the
/// hidden `cavra plugin-child` command.
pub use cavra_plugin_host::run_child;

pub const DELIVERY_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-notification-delivery.v1";
/// Minutes to acknowledge when a route does not say.
const DEFAULT_ACK_MINUTES: f64 = 60.0;

/// Where plugins run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PluginIsolation {
    /// Inside this process (fastest; a panic is contained, an abort is not).
    InProcess,
    /// Each plugin library in a child cavra process (an abort or crash fails only its deliveries).
    Process,
}

/// Which plugins to load and how to run them.
#[derive(Clone, Debug)]
pub struct PluginSettings {
    /// Plugin folders (`--plugin-dir`); `CAVRA_PLUGIN_PATH` adds more.
    pub dirs: Vec<PathBuf>,
    pub isolation: PluginIsolation,
}

impl PluginSettings {
    /// The plugins: the given folders, else the bundled connectors next to the binary.
    pub fn registry(&self) -> Registry {
        let isolation = match self.isolation {
            PluginIsolation::InProcess => Isolation::InProcess,
            // The child is this binary's hidden `plugin-child` command.
            PluginIsolation::Process => {
                Isolation::Process { program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cavra")), args: vec!["plugin-child".into()] }
            }
        };
        let dirs = plugin_dirs(&self.dirs);
        if !dirs.is_empty() {
            return Registry::load(&dirs, &isolation);
        }
        let bundled = bundled_dir().map(|d| vec![d]).unwrap_or_default();
        let (files, _) = find_plugin_files(&bundled);
        let ours: Vec<PathBuf> = files.into_iter().filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().contains("cavra_plugin_"))).collect();
        Registry::load_files(&ours, &isolation)
    }
}

/// The folder of the running binary (cargo puts the bundled cdylibs there;
/// test executables live one level down, in `deps/`).
fn bundled_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    Some(if dir.ends_with("deps") { dir.parent()?.to_path_buf() } else { dir.to_path_buf() })
}

/// What `plugins list` reports: the plugins loaded, refused and conflicting.
pub fn plugin_report(settings: &PluginSettings) -> LoadReport {
    settings.registry().report().clone()
}

/// One delivery run.
#[derive(Clone, Debug)]
pub struct DeliverRequest {
    pub plan: PlanRequest,
    pub plugins: PluginSettings,
    /// Attempts per notification, the first included.
    pub max_attempts: u32,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// Delay before the first retry (doubles per retry, with jitter).
    pub backoff: Duration,
}

impl DeliverRequest {
    /// A delivery with the default attempts, timeout and backoff.
    pub fn new(plan: PlanRequest, plugins: PluginSettings) -> DeliverRequest {
        DeliverRequest { plan, plugins, max_attempts: 4, attempt_timeout: Duration::from_millis(10_000), backoff: Duration::from_millis(500) }
    }
}

/// Names a notification across plans (README, "Notification plan"): the same drill due at the
/// same time, at the same alert level, for the same owner and provider. It is
/// the idempotency key providers receive.
pub fn notification_key(schedule_id: &str, owner: &str, provider: &str, alert_level: &str, next_due_at: Option<&str>) -> String {
    let key = json!([schedule_id, owner, provider, alert_level, next_due_at]);
    format!("notification_{}", crate::hash::content_hash(&key))
}

/// One notification per `deliver` route of the plan, in plan order. The due
/// time and runbook come from the schedule document.
pub fn notifications(plan: &Plan, schedule: &Json) -> Vec<Notification> {
    let next_due_at = schedule["next_due_at"].as_str().map(String::from);
    let runbook_ref = schedule["runbook_ref"].as_str().map(String::from);
    let alert_level = plan.alert_level.as_str();
    plan.route_decisions
        .iter()
        .filter(|r| r.delivers())
        .map(|r| Notification {
            idempotency_key: notification_key(&r.schedule_id, &r.owner, &r.provider, alert_level, next_due_at.as_deref()),
            route_id: r.route_id.clone(),
            plan_id: r.plan_id.clone(),
            schedule_id: r.schedule_id.clone(),
            owner: r.owner.clone(),
            escalation_owner: r.escalation_owner_or_owner().to_string(),
            provider: r.provider.clone(),
            alert_level: alert_level.to_string(),
            status: plan.status.as_str().to_string(),
            next_due_at: next_due_at.clone(),
            reason: r.reason.clone().unwrap_or_default(),
            runbook_ref: runbook_ref.clone(),
            // Whole minutes for providers; a fraction rounds up, never to less time.
            acknowledgement_minutes: r.acknowledgement_minutes.map_or(DEFAULT_ACK_MINUTES, |m| m.0).max(0.0).ceil() as u64,
            created_at: r.created_at.clone(),
        })
        .collect()
}

/// Builds and stores the plan, then delivers its notifications, storing
/// every attempt. `warn` hears what an operator should know but does not stop
/// the run (refused plugins, config problems). Returns the delivery result and the plan.
pub fn deliver(
    packs: &PackSource,
    store: &dyn StoreProvider,
    request: &DeliverRequest,
    warn: &mut dyn FnMut(&str),
) -> Result<(DeliveryResult, Plan), AppError> {
    let mut config = ConnectorConfig::from_env().map_err(|e| AppError::Plugin(format!("CAVRA_CONNECTOR_CONFIG: {e}")))?;
    let built = build_plan(packs, &request.plan)?;
    let plan = built.plan;
    let writable = store.writable()?;
    writable.save_plan(&plan)?;

    if config.section("outbox").is_none() {
        let outbox = store.folder().join("outbox.jsonl");
        config.insert_default("outbox", json!({ "path": outbox.display().to_string() }));
    }
    let registry = request.plugins.registry();
    for refusal in &registry.report().refused {
        warn(&format!("plugin {} refused: {}", refusal.path.display(), refusal.reason));
    }
    if let Err(e) = registry.ensure_no_conflicts() {
        warn(&e.to_string());
    }
    // Only the connectors this plan needs: a missing section of another is not news.
    for problem in registry.validate_config(&config).into_iter().filter(|p| plan.selected_providers.contains(&p.connector)) {
        warn(&problem.to_string());
    }

    let notifications = notifications(&plan, &built.schedule);
    let keys: Vec<String> = notifications.iter().map(|n| n.idempotency_key.clone()).collect();
    let done = writable.delivered_keys(&keys)?;
    let (skipped, todo): (Vec<_>, Vec<_>) = notifications.into_iter().partition(|n| done.contains(&n.idempotency_key));

    let options = DeliveryOptions {
        max_attempts: request.max_attempts,
        backoff_base: request.backoff,
        attempt_timeout: request.attempt_timeout,
        ..DeliveryOptions::default()
    };
    let mut store_error = None;
    let records = registry.deliver_all(todo, &config, &options, |attempt| {
        if store_error.is_none() {
            if let Err(e) = writable.save_delivery(&delivery_attempt(attempt, &plan.schedule_id)) {
                store_error = Some(e);
            }
        }
    });
    if let Some(e) = store_error {
        return Err(AppError::Store(e));
    }

    let finals: Vec<DeliveryAttempt> = records.iter().filter(|r| r.is_final).map(|r| delivery_attempt(r, &plan.schedule_id)).collect();
    let delivered = finals.iter().filter(|r| r.record.is_delivered()).count();
    let skipped: Vec<SkippedNotification> = skipped
        .into_iter()
        .map(|n| SkippedNotification {
            route_id: n.route_id,
            owner: n.owner,
            provider: n.provider,
            notification_key: n.idempotency_key,
            reason: "already delivered".into(),
        })
        .collect();
    let result = DeliveryResult {
        schema_version: DELIVERY_SCHEMA.to_string(),
        plan_id: plan.plan_id.clone(),
        schedule_id: plan.schedule_id.clone(),
        generated_at: plan.generated_at.clone(),
        alert_level: plan.alert_level,
        deliverable_route_count: plan.deliverable_route_count,
        suppressed_route_count: plan.suppressed_route_count,
        delivered_count: delivered,
        failed_count: finals.len() - delivered,
        skipped_count: skipped.len(),
        attempt_count: records.len(),
        deliveries: finals,
        skipped,
    };
    Ok((result, plan))
}

/// A stored delivery attempt: the host's record plus the schedule, the
/// notification key and an id over its content.
fn delivery_attempt(record: &DeliveryRecord, schedule_id: &str) -> DeliveryAttempt {
    let mut attempt = DeliveryAttempt {
        record: record.clone(),
        schedule_id: schedule_id.to_string(),
        notification_key: record.idempotency_key.clone(),
        delivery_id: String::new(),
    };
    attempt.delivery_id = format!("delivery_{}", content_hash(&attempt));
    attempt
}
