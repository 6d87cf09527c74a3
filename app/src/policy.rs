//! The routing policy (README, "Notification plan"): where it comes from (a file, a document
//! in a request, keys inside the schedule), public-safety screening, the
//! merge, the window shape checks, binding the routing pack to it, and the
//! owners and providers of a schedule's routes after the provider filter.

use crate::documents::read_json;
use crate::error::{AppError, Field, Refusal};
use crate::packs::{BoundPack, PackSource};
use crate::routing::{OwnerProviders, ScheduleRoutes};
use crate::safety::Screen;
use cavra_engine::BindOptions;
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) const ROUTING_PACK: &str = "routing.cavra";
/// Policy keys that may also sit inside the schedule document.
const POLICY_KEYS: &[&str] = &["owner_routes", "maintenance_windows", "owner_calendars", "acknowledgement_minutes"];
/// How a request's own policy document is named in errors.
const REQUEST_POLICY: &str = "$.routing_policy";

/// A routing policy given separately from the schedule; its keys win.
#[derive(Clone, Debug)]
pub enum PolicySource {
    /// A file (`--routing-policy`), named by its path in errors.
    File(PathBuf),
    /// A document held in memory (a request's `routing_policy`, or the
    /// server's), named `$.routing_policy` in errors.
    Document(Json),
}

/// The separate routing policy with the label its errors name.
pub(crate) fn separate_policy(source: Option<&PolicySource>) -> Result<Option<(String, Json)>, AppError> {
    match source {
        Some(PolicySource::Document(doc)) => Ok(Some((REQUEST_POLICY.to_string(), doc.clone()))),
        Some(PolicySource::File(path)) => {
            let doc = read_json(path).map_err(|e| AppError::field(Field::named("routing_policy"), e))?;
            Ok(Some((path.display().to_string(), doc)))
        }
        None => Ok(None),
    }
}

/// The routing pack bound to a policy, after the window shapes are checked.
pub(crate) fn bind_routing(packs: &PackSource, policy: &Json, options: BindOptions) -> Result<BoundPack, AppError> {
    let problems = window_problems(policy);
    if let Some((path, _)) = problems.first() {
        let lines: Vec<&str> = problems.iter().map(|(_, line)| line.as_str()).collect();
        return Err(AppError::at_path(path.clone(), format!("routing policy: {}", lines.join("\n  "))));
    }
    let pack = packs.pack(ROUTING_PACK)?;
    let program = pack.bind_with(&HashMap::from([("policy".to_string(), policy.clone())]), options).map_err(|e| match &e {
        cavra_engine::BindError::Input { source, .. } => AppError::at_path(source.path.clone(), format!("routing policy: {e}")),
        _ => AppError::input(format!("routing policy: {e}")),
    })?;
    Ok(BoundPack::new(ROUTING_PACK, program))
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
/// one with neither would silently never match. Each problem with its path.
fn window_problems(policy: &Json) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (path, w) in policy_windows(policy) {
        let has = |key: &str| w.get(key).is_some_and(|v| !v.is_null());
        let one_off = has("start_at") && has("end_at");
        if !one_off && !has("recurrence") {
            problems.push((path.clone(), format!("{path}: a window needs start_at and end_at, or a recurrence")));
            continue;
        }
        let time = |key: &str| w[key].as_str().and_then(|t| cavra_engine::time::parse_time(t).ok());
        if let (Some(start), Some(end)) = (time("start_at"), time("end_at")) {
            if end <= start {
                let line = format!("{path}.end_at: the window ends before it starts ({} <= {})", w["end_at"], w["start_at"]).replace('"', "");
                problems.push((format!("{path}.end_at"), line));
            }
        }
    }
    problems
}

/// The schedule document and the routing policy (the schedule's policy keys,
/// overridden by the separate policy), both screened: nothing is planned or
/// stored from a document that is not public-safe.
pub(crate) fn routing_documents(packs: &PackSource, schedule_path: &Path, separate: Option<(String, Json)>) -> Result<(Json, Json), AppError> {
    let schedule = read_json(schedule_path).map_err(AppError::input)?;
    let screen = Screen::load(packs)?;
    let mut refused: Vec<Refusal> = Vec::new();
    let mut documents = vec![(schedule_path.display().to_string(), &schedule)];
    documents.extend(separate.as_ref().map(|(label, doc)| (label.clone(), doc)));
    for (label, doc) in documents {
        refused.extend(screen.refusals(doc)?.iter().map(|r| r.located(&label)));
    }
    if !refused.is_empty() {
        return Err(AppError::NotPublicSafe { head: "the input documents are not public-safe; nothing was planned or stored".into(), refusals: refused });
    }
    let policy = merged_policy(&schedule, separate.map(|(_, doc)| doc))?;
    Ok((schedule, policy))
}

/// The schedule's policy keys, overridden key by key by the separate policy.
fn merged_policy(schedule: &Json, separate: Option<Json>) -> Result<Json, AppError> {
    let mut policy = Map::new();
    for key in POLICY_KEYS {
        if let Some(v) = schedule.get(*key) {
            policy.insert(key.to_string(), v.clone());
        }
    }
    match separate {
        None => {}
        Some(Json::Object(separate)) => policy.extend(separate),
        Some(_) => return Err(AppError::at_path(REQUEST_POLICY, "routing policy: expected a JSON object")),
    }
    Ok(Json::Object(policy))
}

/// What the router needs of a schedule: its id, the status the routing pack
/// sees, and each owner's providers after the provider filter.
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

/// The providers of an owner's route (README, "Notification plan"): its own, else the schedule's.
fn owner_providers(policy: &Json, owner: &str, schedule_providers: &[String]) -> Vec<String> {
    match policy["owner_routes"][owner].get("providers").filter(|p| p.as_array().is_some_and(|a| !a.is_empty())) {
        Some(list) => text_list(list),
        None => schedule_providers.to_vec(),
    }
}

/// `all`, or provider names separated by commas (any case); `None` is all.
pub fn provider_filter(given: &str) -> Result<Option<BTreeSet<String>>, AppError> {
    let given = given.trim();
    if given.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let names: BTreeSet<String> = given.split(',').map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()).collect();
    if names.is_empty() {
        return Err(AppError::field(Field::named("provider"), format!("expected `all` or provider names separated by commas, got {given:?}")));
    }
    Ok(Some(names))
}

fn text_list(value: &Json) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
}
