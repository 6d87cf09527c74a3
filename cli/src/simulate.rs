//! `cavra runtime go-rollback-drill-routing-simulate`: for each owner and
//! provider of a schedule, the intervals of `[--from, --to)` in which a due
//! notification would be delivered or suppressed, and why. Lets an operator
//! check a change freeze or a calendar before it starts.
//!
//! The routing pack decides, as for a plan; this module only finds the
//! instants where a decision can change (every window bound, every recurring
//! occurrence's start and end), decides once per elementary interval, and
//! merges neighbours with the same outcome.

use crate::plan::{bind_routing, policy_windows, provider_filter, routing_documents, schedule_routes, separate_policy};
use crate::routing::Router;
use crate::runtime::{print_columns, ReportArgs, UsageError};
use crate::{authoring::say, Io};
use cavra_engine::recurrence::Recurrence;
use cavra_engine::time::{format_time, parse_time, MICROS_PER_SECOND};
use cavra_engine::BindOptions;
use clap::Args;
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;
use std::path::PathBuf;

pub(crate) const SIMULATION_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-routing-simulation.v1";
/// Longest simulated span: a year keeps the output readable and bounded.
const MAX_SPAN_DAYS: i64 = 366;

pub(crate) const SIMULATE_HELP: &str = "Assumes a notification is due throughout (the schedule's own status is not simulated) and
decides every owner and provider route of the schedule with the routing pack, at every instant
where a maintenance window or calendar absence opens or closes, recurring ones included. Adjacent
intervals with the same outcome are merged. Nothing is stored. The span is at most 366 days.

Examples:
  cavra runtime go-rollback-drill-routing-simulate \\
      --routing-policy examples/routing-policy.json \\
      --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\
      --from 2026-05-21T00:00:00Z --to 2026-05-23T00:00:00Z
  cavra runtime go-rollback-drill-routing-simulate ... --provider slack --json";

#[derive(Args, Debug, Clone)]
pub(crate) struct SimulateArgs {
    /// Routing policy document (public-safe); its keys win over the same keys in the schedule.
    #[arg(long, value_name = "FILE")]
    routing_policy: Option<PathBuf>,
    /// Rollback drill schedule document (owners, providers, schedule id).
    #[arg(long, env = "CAVRA_GO_ROLLBACK_DRILL_SCHEDULE", value_name = "FILE")]
    rollback_drill_schedule_path: Option<PathBuf>,
    /// Start of the simulated span (RFC 3339, inclusive).
    #[arg(long, value_name = "TIME")]
    from: String,
    /// End of the simulated span (RFC 3339, exclusive).
    #[arg(long, value_name = "TIME")]
    to: String,
    /// `all`, or providers separated by commas.
    #[arg(long, value_name = "all|NAME[,NAME]", default_value = "all")]
    provider: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Use the rule packs in this folder instead of the bundled ones.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// A routing policy given as a document (the API's `routing_policy`); wins over `--routing-policy`.
    #[arg(skip)]
    policy_document: Option<Json>,
    #[arg(skip)]
    packs: Option<std::sync::Arc<crate::packs::CompiledPacks>>,
}

impl SimulateArgs {
    /// Simulation arguments for a front end that holds its documents in memory (the API).
    pub(crate) fn new(report: &ReportArgs, policy_document: Option<Json>, window: (String, String), provider: String) -> SimulateArgs {
        let (from, to) = window;
        SimulateArgs {
            routing_policy: None,
            rollback_drill_schedule_path: report.schedule_path().map(PathBuf::from),
            from,
            to,
            provider,
            json: true,
            rules: report.rules().map(PathBuf::from),
            policy_document,
            packs: report.packs(),
        }
    }
}

pub(crate) fn run(io: &mut Io, args: &SimulateArgs) -> i32 {
    crate::runtime::finish(io, args.json, simulate(args), print_simulation)
}

fn instant(flag: &str, text: &str) -> Result<i64, UsageError> {
    parse_time(text).map_err(|e| UsageError(format!("{flag}: {e}")))
}

pub(crate) fn simulate(args: &SimulateArgs) -> Result<Json, UsageError> {
    let (from, to) = (instant("--from", &args.from)?, instant("--to", &args.to)?);
    if to <= from {
        return Err(UsageError(format!("--to ({}) must be after --from ({})", format_time(to), format_time(from))));
    }
    if to - from > MAX_SPAN_DAYS * 86_400 * MICROS_PER_SECOND {
        return Err(UsageError(format!("--from/--to: at most {MAX_SPAN_DAYS} days can be simulated at once")));
    }
    let schedule_path = args
        .rollback_drill_schedule_path
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| UsageError("a drill schedule is needed: give --rollback-drill-schedule-path or CAVRA_GO_ROLLBACK_DRILL_SCHEDULE".into()))?;
    let report = ReportArgs::rules_only(args.rules.clone()).with_packs(args.packs.clone());
    let separate = separate_policy(args.routing_policy.as_deref(), args.policy_document.as_ref())?;
    let (schedule, policy) = routing_documents(&report, schedule_path, separate)?;
    let program = bind_routing(&report, &policy, BindOptions::around(from, to))?;
    let cuts = change_points(&policy, from, to);

    let router = Router::new(&program).map_err(|e| UsageError(format!("routing.cavra: {e}")))?;
    let wanted = provider_filter(&args.provider)?;
    let request = schedule_routes(&schedule, &policy, "needs_attention", wanted.as_ref());
    let schedule_id = request.schedule_id.to_string();

    // One timeline per route, in the router's (owner, provider) order.
    let mut timelines: Vec<(Json, Vec<Json>, i64, i64)> = Vec::new();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let planned = router.plan(start, &request).map_err(|e| UsageError(program.render_error(&e)))?;
        if timelines.is_empty() {
            timelines = planned.routes.iter().map(|r| (json!({"owner": r.owner, "provider": r.provider}), Vec::new(), 0, 0)).collect();
        }
        for ((_, intervals, delivered, suppressed), r) in timelines.iter_mut().zip(&planned.routes) {
            let interval = json!({
                "start_at": format_time(start),
                "end_at": format_time(end),
                "action": r.action,
                "category": r.category,
                "reason": r.reason.to_json(),
                "maintenance_window_id": r.maintenance_window_id.to_json(),
                "owner_availability": r.owner_availability.to_json(),
            });
            *(if r.action == "deliver" { delivered } else { suppressed }) += end - start;
            match intervals.last_mut() {
                Some(last) if same_outcome(last, &interval) => last["end_at"] = interval["end_at"].clone(),
                _ => intervals.push(interval),
            }
        }
    }
    let minutes = |micros: i64| micros / (60 * MICROS_PER_SECOND);
    let routes: Vec<Json> = timelines
        .into_iter()
        .map(|(mut route, intervals, delivered, suppressed)| {
            route["delivered_minutes"] = json!(minutes(delivered));
            route["suppressed_minutes"] = json!(minutes(suppressed));
            route["intervals"] = Json::Array(intervals);
            route
        })
        .collect();
    Ok(json!({
        "schema_version": SIMULATION_SCHEMA,
        "schedule_id": schedule_id,
        "from": format_time(from),
        "to": format_time(to),
        "assumes": "a notification is due throughout the span",
        "routes": routes,
    }))
}

fn same_outcome(a: &Json, b: &Json) -> bool {
    ["action", "category", "reason", "maintenance_window_id", "owner_availability"].iter().all(|k| a[*k] == b[*k])
}

/// `from`, `to` and every window bound strictly between them, sorted. A
/// decision can only change at these instants, since the windows are the
/// routing pack's only time-dependent inputs.
fn change_points(policy: &Json, from: i64, to: i64) -> Vec<i64> {
    let mut cuts = BTreeSet::from([from, to]);
    for (_, window) in policy_windows(policy) {
        let time = |key: &str| window[key].as_str().and_then(|t| parse_time(t).ok());
        let (start, end) = (time("start_at"), time("end_at"));
        cuts.extend([start, end].into_iter().flatten());
        // A bad recurrence was already refused when the policy was bound.
        if let Ok(rule) = Recurrence::from_json(&window["recurrence"]) {
            for (lo, hi) in rule.occurrences(from, to) {
                cuts.extend([lo, hi]);
            }
        }
    }
    cuts.into_iter().filter(|t| (from..=to).contains(t)).collect()
}

fn print_simulation(io: &mut Io, sim: &Json) {
    say!(
        io.out,
        "simulation of {} from {} to {} (assuming a notification is due throughout)",
        sim["schedule_id"].as_str().unwrap_or_default(),
        sim["from"].as_str().unwrap_or_default(),
        sim["to"].as_str().unwrap_or_default()
    );
    for route in sim["routes"].as_array().into_iter().flatten() {
        say!(
            io.out,
            "\n{} on {}: delivered {} min, suppressed {} min",
            route["owner"].as_str().unwrap_or_default(),
            route["provider"].as_str().unwrap_or_default(),
            route["delivered_minutes"],
            route["suppressed_minutes"]
        );
        let rows: Vec<Json> = route["intervals"].as_array().cloned().unwrap_or_default();
        print_columns(io, &[("FROM", "start_at"), ("TO", "end_at"), ("ACTION", "action"), ("CATEGORY", "category"), ("REASON", "reason")], &rows);
    }
}
