//! `cavra runtime go-rollback-drill-notification-plan`: who is told about a
//! due or stale rollback drill, on which provider, and which routes are
//! suppressed. The schedule report (readiness pack) says whether to notify;
//! the routing pack decides each route. This module only resolves the
//! policy, iterates owners and providers, and assembles the plan document.

pub(crate) use crate::routing::content_hash;
use crate::routing::{plan_document, OwnerProviders, PlanHeader, Router, ScheduleRoutes};
use crate::runtime::{load_pack, schedule_report, ReportArgs, UsageError};
use cavra_engine::{BindOptions, Program};
use clap::Args;
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const ROUTING_PACK: &str = "routing.cavra";
/// Policy keys that may also sit inside the schedule document.
const POLICY_KEYS: &[&str] = &["owner_routes", "maintenance_windows", "owner_calendars", "acknowledgement_minutes"];

#[derive(Args, Debug, Clone)]
pub(crate) struct PlanArgs {
    /// Routing policy document (public-safe); its keys win over the same keys in the schedule.
    #[arg(long, value_name = "FILE")]
    routing_policy: Option<PathBuf>,
    /// `all`, or providers separated by commas (e.g. `slack,teams`).
    #[arg(long, value_name = "all|NAME[,NAME]", default_value = "all")]
    provider: String,
    /// Plan notifications even when the schedule is not due soon or stale.
    #[arg(long)]
    force: bool,
    /// The store that keeps every plan and its route decisions (append-only) [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", value_name = "FILE")]
    pub store: Option<PathBuf>,
    /// Do not store the plan: a dry run (wins over --store and CAVRA_STORE).
    #[arg(long)]
    pub no_store: bool,
    #[command(flatten)]
    pub report: ReportArgs,
    /// A routing policy given as a document (the API's `routing_policy`); wins over `--routing-policy`.
    #[arg(skip)]
    pub policy_document: Option<Json>,
}

impl PlanArgs {
    /// Plan arguments for a front end that holds its documents in memory (the API).
    pub(crate) fn new(report: ReportArgs, policy_document: Option<Json>, provider: String, force: bool, store: Option<PathBuf>) -> PlanArgs {
        PlanArgs { routing_policy: None, provider, force, store, no_store: false, report, policy_document }
    }
}

/// The separate routing policy, with the label its errors name: the inline
/// document (`$.routing_policy`) or the file behind `--routing-policy`.
pub(crate) fn separate_policy(path: Option<&Path>, inline: Option<&Json>) -> Result<Option<(String, Json)>, UsageError> {
    match (inline, path) {
        (Some(doc), _) => Ok(Some(("$.routing_policy".to_string(), doc.clone()))),
        (None, Some(path)) => {
            let doc = crate::documents::read_json(path).map_err(|e| UsageError(format!("--routing-policy: {e}")))?;
            Ok(Some((path.display().to_string(), doc)))
        }
        (None, None) => Ok(None),
    }
}

/// Builds the plan document; also returns the schedule document it was built from.
pub(crate) fn build_plan(args: &PlanArgs, generated_by: &str) -> Result<(Json, Json), UsageError> {
    let (session, schedule_report) = schedule_report(&args.report)?;
    let schedule_path = args
        .report
        .schedule_path()
        .ok_or_else(|| UsageError("a drill schedule is needed: give --rollback-drill-schedule-path or CAVRA_GO_ROLLBACK_DRILL_SCHEDULE".into()))?;
    let separate = separate_policy(args.routing_policy.as_deref(), args.policy_document.as_ref())?;
    let (schedule, policy) = routing_documents(&args.report, schedule_path, separate)?;
    let status = schedule_report["status"].as_str().unwrap_or_default().to_string();
    let notify = args.force || matches!(status.as_str(), "needs_attention" | "due_soon");
    let schedule_id = schedule["schedule_id"].as_str().unwrap_or_default().to_string();

    let now = cavra_engine::time::parse_time(&session.now).map_err(UsageError)?;
    // Every route is decided at `now`: pin the clock so window tests run once, at bind time.
    let program = bind_routing(&args.report, &policy, BindOptions::at(now))?;
    let router = Router::new(&program).map_err(|e| UsageError(format!("{ROUTING_PACK}: {e}")))?;
    let wanted = provider_filter(&args.provider)?;
    let request = schedule_routes(&schedule, &policy, if notify { &status } else { "healthy" }, wanted.as_ref());
    let planned = router.plan(now, &request).map_err(|e| UsageError(program.render_error(&e)))?;

    let reason = plan_reason(&schedule_id, &status, notify, args.force, &schedule_report);
    let header = PlanHeader { generated_at: &session.now, generated_by, mode: &session.mode, status: &status, reason: &reason };
    Ok((plan_document(&header, &request, planned.view()), schedule))
}

fn plan_reason(schedule_id: &str, status: &str, notify: bool, forced: bool, report: &Json) -> String {
    let failing: Vec<&str> =
        report["checks"].as_array().into_iter().flatten().filter(|c| c["status"] == "fail").filter_map(|c| c["message"].as_str()).collect();
    match (status, notify) {
        ("needs_attention", _) => format!("rollback drill schedule {schedule_id} needs attention: {}", failing.join("; ")),
        ("due_soon", _) => {
            let next = report["checks"].as_array().into_iter().flatten().find(|c| c.get("next_due_at").is_some());
            match next {
                Some(c) => format!(
                    "rollback drill schedule {schedule_id} is due soon: the next drill is due at {} (in {} days)",
                    c["next_due_at"].as_str().unwrap_or_default(),
                    c["days_until_due"]
                ),
                None => format!("rollback drill schedule {schedule_id} is due soon"),
            }
        }
        (_, true) if forced => format!("rollback drill schedule {schedule_id} is {status}; notifications forced with --force"),
        _ => format!("rollback drill schedule {schedule_id} is {status}; no notification is due"),
    }
}

/// The routing pack bound to a policy, after the window shapes are checked.
pub(crate) fn bind_routing(report: &ReportArgs, policy: &Json, options: BindOptions) -> Result<Program, UsageError> {
    let problems = window_problems(policy);
    if !problems.is_empty() {
        return Err(UsageError(format!("routing policy: {}", problems.join("\n  "))));
    }
    let pack = load_pack(report, ROUTING_PACK)?;
    pack.bind_with(&HashMap::from([("policy".to_string(), policy.clone())]), options).map_err(|e| UsageError(format!("routing policy: {e}")))
}

/// Every maintenance window and calendar absence of a policy, with its JSON path.
pub(crate) fn policy_windows(policy: &Json) -> Vec<(String, &Json)> {
    let mut windows: Vec<(String, &Json)> = Vec::new();
    for (i, w) in policy["maintenance_windows"].as_array().into_iter().flatten().enumerate() {
        windows.push((format!("$.maintenance_windows[{i}]"), w));
    }
    for (owner, calendar) in policy["owner_calendars"].as_object().into_iter().flatten() {
        for (i, w) in calendar["unavailable_windows"].as_array().into_iter().flatten().enumerate() {
            windows.push((format!("$.owner_calendars[{owner:?}].unavailable_windows[{i}]"), w));
        }
    }
    windows
}

/// Every window must be one-off (`start_at` before `end_at`) or recurring;
/// one with neither would silently never match.
fn window_problems(policy: &Json) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, w) in policy_windows(policy) {
        let has = |key: &str| w.get(key).is_some_and(|v| !v.is_null());
        let one_off = has("start_at") && has("end_at");
        if !one_off && !has("recurrence") {
            problems.push(format!("{path}: a window needs start_at and end_at, or a recurrence"));
            continue;
        }
        let time = |key: &str| w[key].as_str().and_then(|t| cavra_engine::time::parse_time(t).ok());
        if let (Some(start), Some(end)) = (time("start_at"), time("end_at")) {
            if end <= start {
                problems.push(format!("{path}.end_at: the window ends before it starts ({} <= {})", w["end_at"], w["start_at"]).replace('"', ""));
            }
        }
    }
    problems
}

/// The schedule document and the routing policy (the schedule's policy keys,
/// overridden by the separate policy), both screened: nothing is planned or
/// stored from a document that is not public-safe.
pub(crate) fn routing_documents(report: &ReportArgs, schedule_path: &Path, separate: Option<(String, Json)>) -> Result<(Json, Json), UsageError> {
    let schedule = crate::documents::read_json(schedule_path).map_err(UsageError)?;
    let screen = crate::safety::Screen::load(report)?;
    let mut refused = Vec::new();
    let mut documents = vec![(schedule_path.display().to_string(), &schedule)];
    documents.extend(separate.as_ref().map(|(label, doc)| (label.clone(), doc)));
    for (label, doc) in documents {
        refused.extend(screen.refusals(doc)?.into_iter().map(|r| locate(&label, &r)));
    }
    if !refused.is_empty() {
        return Err(UsageError(format!("the input documents are not public-safe; nothing was planned or stored:\n  {}", refused.join("\n  "))));
    }
    let policy = merged_policy(&schedule, separate.map(|(_, doc)| doc))?;
    Ok((schedule, policy))
}

/// A refusal reason (`$.path: why`) placed in its document: a file's name
/// before it, or, for a document inside a request (`$.routing_policy`), one
/// JSON path from the request's root.
pub(crate) fn locate(label: &str, reason: &str) -> String {
    match (label.strip_prefix('$'), reason.strip_prefix('$')) {
        (Some(_), Some(rest)) => format!("{label}{rest}"),
        _ => format!("{label}: {reason}"),
    }
}

/// What the router needs of a schedule: its id, the status the routing pack
/// sees, and each owner's providers after the `--provider` filter.
pub fn schedule_routes(schedule: &Json, policy: &Json, status: &str, wanted: Option<&BTreeSet<String>>) -> ScheduleRoutes {
    let schedule_providers = text_list(&schedule["notification_providers"]);
    let owners = text_list(&schedule["owners"])
        .into_iter()
        .map(|owner| {
            let configured: Vec<Arc<str>> = owner_providers(policy, &owner, &schedule_providers).iter().map(|p| Arc::from(p.as_str())).collect();
            let providers = configured.iter().filter(|p| wanted.is_none_or(|w| w.contains(p.as_ref()))).cloned().collect();
            OwnerProviders { owner: Arc::from(owner.as_str()), configured, providers }
        })
        .collect();
    ScheduleRoutes { schedule_id: Arc::from(schedule["schedule_id"].as_str().unwrap_or_default()), status: Arc::from(status), owners }
}

/// The providers of an owner's route (DOMAIN §5 step 2): its own, else the schedule's.
pub(crate) fn owner_providers(policy: &Json, owner: &str, schedule_providers: &[String]) -> Vec<String> {
    match policy["owner_routes"][owner].get("providers").filter(|p| p.as_array().is_some_and(|a| !a.is_empty())) {
        Some(list) => text_list(list),
        None => schedule_providers.to_vec(),
    }
}

/// The schedule's policy keys, overridden key by key by the separate policy.
fn merged_policy(schedule: &Json, separate: Option<Json>) -> Result<Json, UsageError> {
    let mut policy = Map::new();
    for key in POLICY_KEYS {
        if let Some(v) = schedule.get(*key) {
            policy.insert(key.to_string(), v.clone());
        }
    }
    match separate {
        None => {}
        Some(Json::Object(separate)) => policy.extend(separate),
        Some(_) => return Err(UsageError("routing policy: expected a JSON object".into())),
    }
    Ok(Json::Object(policy))
}

pub(crate) fn provider_filter(arg: &str) -> Result<Option<BTreeSet<String>>, UsageError> {
    let arg = arg.trim();
    if arg.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let names: BTreeSet<String> = arg.split(',').map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
    if names.is_empty() {
        return Err(UsageError(format!("--provider: expected `all` or provider names separated by commas, got {arg:?}")));
    }
    Ok(Some(names))
}

pub(crate) fn text_list(value: &Json) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
}

pub(crate) fn print_plan(io: &mut crate::Io, plan: &Json) {
    use crate::authoring::say;
    say!(
        io.out,
        "plan {} for {}: {} ({}) - {}",
        plan["plan_id"].as_str().unwrap_or_default(),
        plan["schedule_id"].as_str().unwrap_or_default(),
        plan["status"].as_str().unwrap_or_default(),
        plan["alert_level"].as_str().unwrap_or_default(),
        plan["reason"].as_str().unwrap_or_default()
    );
    let rows: Vec<[String; 5]> = plan["route_decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| ["owner", "provider", "action", "category", "reason"].map(|k| r[k].as_str().unwrap_or_default().to_string()))
        .collect();
    let headers = ["OWNER", "PROVIDER", "ACTION", "CATEGORY", "REASON"];
    let widths: Vec<usize> = (0..4).map(|i| rows.iter().map(|r| r[i].len()).chain([headers[i].len()]).max().unwrap_or(0)).collect();
    let line = |cells: [&str; 5]| {
        format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    say!(io.out, "{}", line(headers).trim_end());
    for r in &rows {
        say!(io.out, "{}", line([&r[0], &r[1], &r[2], &r[3], &r[4]]).trim_end());
    }
    say!(
        io.out,
        "{} to deliver, {} suppressed ({} maintenance window, {} owner calendar, {} healthy schedule)",
        plan["deliverable_route_count"],
        plan["suppressed_route_count"],
        plan["maintenance_suppressed_count"],
        plan["calendar_suppressed_count"],
        plan["healthy_suppressed_count"]
    );
}
