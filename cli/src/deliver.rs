//! Delivery of a notification plan through connector plugins
//! (`cavra runtime go-rollback-drill-notifications-deliver`) and the plugin
//! commands (`cavra plugins list`, the hidden `cavra plugin-child`).
//!
//! The plan is built and stored as by `go-rollback-drill-notification-plan`;
//! each `deliver` route becomes a notification for its provider's plugin
//! (`cavra-plugin-host` loads them, retries and redacts); every attempt is
//! stored as it completes. A notification is named across re-runs by its
//! key (schedule, owner, provider, alert level, due time), which is also the
//! idempotency key sent to providers: a re-run delivers only what was not
//! delivered yet, and a provider that honours the key never gets it twice.

use crate::authoring::say;
use crate::plan::PlanArgs;
use crate::routing::content_hash;
use crate::runtime::{print_columns, UsageError};
use crate::store::{SqliteStore, Store};
use crate::{exit, Io};
use cavra_plugin_host::{
    find_plugin_files, notifications_from_plan, plugin_dirs, ConnectorConfig, DeliveryOptions, DeliveryRecord, Isolation, PlanContext, Registry,
};
use clap::{Args, ValueEnum};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const DELIVERY_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-notification-delivery.v1";

pub(crate) const DELIVER_HELP: &str = "Builds and stores the plan (as go-rollback-drill-notification-plan does), then delivers each
`deliver` route through the plugin serving its provider, in parallel across providers, retrying
retryable failures (HTTP 429/5xx, connection errors, timeouts) with exponential backoff and jitter.
Every attempt is stored (deliveries: provider, route, status code, attempt, times, outcome, redacted
target). A notification already delivered (same schedule, owner, provider, alert level and due time)
is skipped, so a re-run delivers only what is left.

Plugins: --plugin-dir and CAVRA_PLUGIN_PATH (folders separated by ':'); without either, the bundled
connectors next to the cavra binary (files named *cavra_plugin_*). Private settings come only from
CAVRA_CONNECTOR_CONFIG (a JSON file, {\"connectors\": {\"slack\": {\"url_env\": \"SLACK_WEBHOOK_URL\"}}});
the outbox connector writes to .cavra/outbox.jsonl next to the store unless configured.

Exit status: 0 when every route was delivered (or was already), 1 when a delivery failed, 2 on a
usage or configuration error.

Examples:
  CAVRA_CONNECTOR_CONFIG=connectors.json cavra runtime go-rollback-drill-notifications-deliver \\
      --mode promoted --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\
      --rollback-drill-history-path examples/rollback-drills.json \\
      --routing-policy examples/routing-policy.json --provider slack,teams
  cavra runtime go-rollback-drill-notifications-deliver ... --plugin-isolation process --json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum IsolationMode {
    /// Plugins run inside cavra (fastest; a panic is contained, an abort is not).
    InProcess,
    /// Each plugin library runs in a child cavra process (an abort or crash fails only its deliveries).
    Process,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct PluginArgs {
    /// A folder of connector plugins (repeatable); CAVRA_PLUGIN_PATH adds more.
    #[arg(long = "plugin-dir", value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,
    /// Where plugins run.
    #[arg(long, value_enum, default_value_t = IsolationMode::InProcess)]
    plugin_isolation: IsolationMode,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct DeliverArgs {
    #[command(flatten)]
    plan: PlanArgs,
    #[command(flatten)]
    plugins: PluginArgs,
    /// Attempts per route, the first included.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10))]
    max_attempts: u32,
    /// How long one attempt may take, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=300_000))]
    attempt_timeout_ms: u64,
    /// Delay before the first retry, in milliseconds (doubles per retry, with jitter).
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    backoff_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    plugins: PluginArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl PluginArgs {
    pub(crate) fn new(plugin_dirs: Vec<PathBuf>, plugin_isolation: IsolationMode) -> PluginArgs {
        PluginArgs { plugin_dirs, plugin_isolation }
    }

    /// The plugins: the given folders, else the bundled connectors next to the binary.
    fn registry(&self) -> Registry {
        let isolation = match self.plugin_isolation {
            IsolationMode::InProcess => Isolation::InProcess,
            IsolationMode::Process => {
                Isolation::Process { program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cavra")), args: vec!["plugin-child".into()] }
            }
        };
        let dirs = plugin_dirs(&self.plugin_dirs);
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

pub(crate) fn list(io: &mut Io, args: &ListArgs) -> i32 {
    let registry = args.plugins.registry();
    let report = registry.report();
    if args.json {
        say!(io.out, "{}", serde_json::to_string_pretty(report).unwrap_or_default());
    } else {
        let _ = write!(io.out, "{report}");
    }
    if report.conflicts.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}

impl DeliverArgs {
    /// Delivery with the default attempts, timeouts and backoff, for the API.
    pub(crate) fn new(plan: PlanArgs, plugins: PluginArgs) -> DeliverArgs {
        DeliverArgs { plan, plugins, max_attempts: 4, attempt_timeout_ms: 10_000, backoff_ms: 500 }
    }
}

pub(crate) fn run(io: &mut Io, args: &DeliverArgs) -> i32 {
    let mut warn = |message: &str| say!(io.err, "warning: {message}");
    let result = deliver(args, "cli", &mut warn).map(|(result, _)| result);
    let code = |result: &Json| if result["failed_count"].as_u64().unwrap_or(0) == 0 { exit::OK } else { exit::FAILED };
    crate::runtime::finish_with(io, args.plan.report.json(), result, print_delivery, code)
}

/// Builds and stores the plan, then delivers its `deliver` routes, storing
/// every attempt. `warn` hears what an operator should know but does not stop
/// the run (refused plugins, config problems). Returns the delivery result and the plan.
pub(crate) fn deliver(args: &DeliverArgs, generated_by: &str, warn: &mut dyn FnMut(&str)) -> Result<(Json, Json), UsageError> {
    if args.plan.no_store {
        return Err(UsageError("--no-store: deliveries are always stored; plan a dry run with go-rollback-drill-notification-plan".into()));
    }
    let mut config = ConnectorConfig::from_env().map_err(|e| UsageError(format!("CAVRA_CONNECTOR_CONFIG: {e}")))?;
    let (plan, schedule) = crate::plan::build_plan(&args.plan, generated_by)?;
    let store_path = crate::store::store_path(args.plan.store.as_deref());
    let store = SqliteStore::open(&store_path).map_err(|e| UsageError(e.to_string()))?;
    store.save_plan(&plan).map_err(|e| UsageError(e.to_string()))?;

    if config.section("outbox").is_none() {
        let outbox = store_path.parent().unwrap_or(Path::new(".")).join("outbox.jsonl");
        config.insert_default("outbox", json!({ "path": outbox.display().to_string() }));
    }
    let registry = args.plugins.registry();
    for refusal in &registry.report().refused {
        warn(&format!("plugin {} refused: {}", refusal.path.display(), refusal.reason));
    }
    if let Err(e) = registry.ensure_no_conflicts() {
        warn(&e.to_string());
    }
    // Only the connectors this plan needs: a missing section of another is not news.
    let needed: Vec<&str> = plan["selected_providers"].as_array().into_iter().flatten().filter_map(Json::as_str).collect();
    for problem in registry.validate_config(&config).into_iter().filter(|p| needed.contains(&p.connector.as_str())) {
        warn(&problem.to_string());
    }

    let context =
        PlanContext { next_due_at: schedule["next_due_at"].as_str().map(String::from), runbook_ref: schedule["runbook_ref"].as_str().map(String::from) };
    let mut notifications = notifications_from_plan(&plan, &context).map_err(|e| UsageError(e.to_string()))?;
    for n in &mut notifications {
        n.idempotency_key = notification_key(&n.schedule_id, &n.owner, &n.provider, &n.alert_level, n.next_due_at.as_deref());
    }
    let keys: Vec<String> = notifications.iter().map(|n| n.idempotency_key.clone()).collect();
    let done = store.delivered_keys(&keys).map_err(|e| UsageError(e.to_string()))?;
    let (skipped, todo): (Vec<_>, Vec<_>) = notifications.into_iter().partition(|n| done.contains(&n.idempotency_key));

    let options = DeliveryOptions {
        max_attempts: args.max_attempts,
        backoff_base: Duration::from_millis(args.backoff_ms),
        attempt_timeout: Duration::from_millis(args.attempt_timeout_ms),
        ..DeliveryOptions::default()
    };
    let schedule_id = plan["schedule_id"].as_str().unwrap_or_default().to_string();
    let mut store_error = None;
    let records = registry.deliver_all(todo, &config, &options, |attempt| {
        if store_error.is_none() {
            if let Err(e) = store.save_delivery(&delivery_document(attempt, &schedule_id)) {
                store_error = Some(e);
            }
        }
    });
    if let Some(e) = store_error {
        return Err(UsageError(format!("{e}; the deliveries made before it are stored, re-run to finish")));
    }

    let finals: Vec<Json> = records.iter().filter(|r| r.is_final).map(|r| delivery_document(r, &schedule_id)).collect();
    let delivered = finals.iter().filter(|r| r["outcome"] == "delivered").count();
    let skipped: Vec<Json> = skipped
        .iter()
        .map(
            |n| json!({"route_id": n.route_id, "owner": n.owner, "provider": n.provider, "notification_key": n.idempotency_key, "reason": "already delivered"}),
        )
        .collect();
    let result = json!({
        "schema_version": DELIVERY_SCHEMA,
        "plan_id": plan["plan_id"],
        "schedule_id": schedule_id,
        "generated_at": plan["generated_at"],
        "alert_level": plan["alert_level"],
        "deliverable_route_count": plan["deliverable_route_count"],
        "suppressed_route_count": plan["suppressed_route_count"],
        "delivered_count": delivered,
        "failed_count": finals.len() - delivered,
        "skipped_count": skipped.len(),
        "attempt_count": records.len(),
        "deliveries": finals,
        "skipped": skipped,
    });
    Ok((result, plan))
}

/// Names a notification across plans: the same drill due at the same time,
/// at the same alert level, for the same owner and provider.
fn notification_key(schedule_id: &str, owner: &str, provider: &str, alert_level: &str, next_due_at: Option<&str>) -> String {
    let key = json!([schedule_id, owner, provider, alert_level, next_due_at]);
    format!("notification_{}", content_hash(&key))
}

/// A stored delivery attempt: the host's public-safe record plus the
/// schedule, the notification key and an id over its content.
fn delivery_document(record: &DeliveryRecord, schedule_id: &str) -> Json {
    let mut doc = serde_json::to_value(record).unwrap_or(Json::Null);
    doc["schedule_id"] = json!(schedule_id);
    doc["notification_key"] = json!(record.idempotency_key);
    let id = format!("delivery_{}", content_hash(&doc));
    doc["delivery_id"] = json!(id);
    doc
}

fn print_delivery(io: &mut Io, result: &Json) {
    say!(
        io.out,
        "plan {} for {}: {} delivered, {} failed, {} already delivered ({} attempts)",
        result["plan_id"].as_str().unwrap_or_default(),
        result["schedule_id"].as_str().unwrap_or_default(),
        result["delivered_count"],
        result["failed_count"],
        result["skipped_count"],
        result["attempt_count"]
    );
    let rows: Vec<Json> = result["deliveries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            json!({
                "provider": d["provider"], "outcome": d["outcome"], "attempt": d["attempt"].to_string(),
                "status": d["status_code"].as_u64().map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                "target": d["target"], "message": d["message"],
            })
        })
        .collect();
    if !rows.is_empty() {
        print_columns(
            io,
            &[("PROVIDER", "provider"), ("OUTCOME", "outcome"), ("ATTEMPTS", "attempt"), ("STATUS", "status"), ("TARGET", "target"), ("MESSAGE", "message")],
            &rows,
        );
    }
}
