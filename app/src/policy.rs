//! The routing policy (README, "Notification plan"): where it comes from (a file, a document
//! in a request, keys inside the schedule), public-safety screening, the
//! merge, the window shape checks, binding the routing pack to it, the
//! owners and providers of a schedule's routes after the provider filter, and
//! every owner, provider and schedule a policy names.

use crate::documents::{read_json_limited, Limits};
use crate::error::{AppError, Field, Refusal};
use crate::packs::{BoundPack, PackSource};
use crate::records::PolicyRecord;
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

/// Who gave a policy: each is merged over the ones before it, in this order,
/// and the plan names them in `policy_sources`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// The CLI's `--routing-policy`.
    Cli,
    /// The server's `--routing-policy`.
    Server,
    /// A request body's `routing_policy`.
    Request,
}

impl PolicyOrigin {
    /// The name in `policy_sources`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyOrigin::Cli => "policy",
            PolicyOrigin::Server => "server",
            PolicyOrigin::Request => "request",
        }
    }
}

/// The routing policies given besides the schedule, in merge order (a later
/// one's top-level keys replace an earlier one's whole).
#[derive(Clone, Debug, Default)]
pub struct Policies(pub Vec<(PolicyOrigin, PolicySource)>);

impl Policies {
    /// The CLI's `--routing-policy FILE`, if given.
    pub fn cli(file: Option<PathBuf>) -> Policies {
        Policies(file.map(|f| (PolicyOrigin::Cli, PolicySource::File(f))).into_iter().collect())
    }

    /// The server's policy, then the request's.
    pub fn server_and_request(server: Option<Json>, request: Option<Json>) -> Policies {
        let server = server.map(|p| (PolicyOrigin::Server, PolicySource::Document(p)));
        let request = request.map(|p| (PolicyOrigin::Request, PolicySource::Document(p)));
        Policies(server.into_iter().chain(request).collect())
    }
}

/// One separate policy, read, with the label its errors name.
pub(crate) struct LoadedPolicy {
    pub origin: PolicyOrigin,
    pub label: String,
    pub document: Json,
}

/// The separate routing policies, read, in merge order.
pub(crate) fn separate_policies(policies: &Policies, max_document_bytes: u64) -> Result<Vec<LoadedPolicy>, AppError> {
    policies
        .0
        .iter()
        .map(|(origin, source)| match source {
            PolicySource::Document(doc) => {
                let label = if *origin == PolicyOrigin::Server { "the server's routing policy" } else { REQUEST_POLICY };
                Ok(LoadedPolicy { origin: *origin, label: label.to_string(), document: doc.clone() })
            }
            PolicySource::File(path) => {
                let document = read_json_limited(path, max_document_bytes).map_err(|e| AppError::field(Field::named("routing_policy"), e))?;
                Ok(LoadedPolicy { origin: *origin, label: path.display().to_string(), document })
            }
        })
        .collect()
}

/// The separate policies merged into one, with a label for its errors
/// (`None` when none was given).
pub(crate) fn separate_policy(policies: &Policies) -> Result<Option<(String, Json)>, AppError> {
    let loaded = separate_policies(policies, crate::documents::DEFAULT_MAX_DOCUMENT_BYTES)?;
    let Some(last) = loaded.last() else { return Ok(None) };
    let label = last.label.clone();
    let mut merged = Map::new();
    for layer in &loaded {
        merge_over(&mut merged, &layer.document, &layer.label)?;
    }
    Ok(Some((label, Json::Object(merged))))
}

/// Puts `layer`'s top-level keys over `into`'s.
fn merge_over(into: &mut Map<String, Json>, layer: &Json, label: &str) -> Result<(), AppError> {
    match layer {
        Json::Object(keys) => {
            into.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(())
        }
        other => Err(AppError::at_path(label, format!("{label}: routing policy: expected a JSON object, got {}", crate::error::shown(other)))),
    }
}

/// The most minutes a notification may wait for its acknowledgement: a week.
pub const MAX_ACKNOWLEDGEMENT_MINUTES: u32 = 10_080;

/// Minutes to acknowledge, checked: a whole number from 1 to a week.
pub fn acknowledgement_minutes_problem(value: f64) -> Option<String> {
    let max = f64::from(MAX_ACKNOWLEDGEMENT_MINUTES);
    (!(value.is_finite() && value.fract() == 0.0 && (1.0..=max).contains(&value)))
        .then(|| format!("expected a whole number of minutes from 1 to {MAX_ACKNOWLEDGEMENT_MINUTES} (a week), got {value}"))
}

/// The routing pack bound to a policy, after the window shapes and the
/// acknowledgement minutes are checked.
pub(crate) fn bind_routing(packs: &PackSource, policy: &Json, options: BindOptions) -> Result<BoundPack, AppError> {
    let mut problems = minutes_problems(policy);
    problems.extend(window_problems(policy));
    if let Some((path, _)) = problems.first() {
        let lines: Vec<&str> = problems.iter().map(|(_, line)| line.as_str()).collect();
        return Err(AppError::at_path(path.clone(), format!("routing policy: {}", lines.join("\n  "))));
    }
    let pack = packs.pack(ROUTING_PACK)?;
    // A server's packs carry its horizon (`--bind-horizon-days`); a pinned clock needs none.
    let options = match packs {
        PackSource::Compiled(compiled) if options.recurrence_horizon.is_none() && options.clock.is_none() => {
            BindOptions::horizon_days(crate::store::wall_micros(), compiled.horizon_days())
        }
        _ => options,
    };
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

/// The global and every owner's `acknowledgement_minutes`, where given,
/// must be whole minutes from 1 to a week: a stored plan with 1e15 or -5
/// would make every later escalation plan fail or say nonsense.
fn minutes_problems(policy: &Json) -> Vec<(String, String)> {
    let mut given = vec![("$.acknowledgement_minutes".to_string(), &policy["acknowledgement_minutes"])];
    for (owner, route) in policy["owner_routes"].as_object().into_iter().flatten() {
        given.push((format!("$.owner_routes[{owner:?}].acknowledgement_minutes"), &route["acknowledgement_minutes"]));
    }
    given
        .into_iter()
        .filter(|(_, value)| !value.is_null())
        .filter_map(|(path, value)| {
            let problem = match value.as_f64() {
                Some(n) => acknowledgement_minutes_problem(n),
                None => Some(format!("expected a whole number of minutes, got {value}")),
            }?;
            Some((path.clone(), format!("{path}: {problem}")))
        })
        .collect()
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

/// The schedule document, the merged routing policy and the sources merged
/// (`schedule`, then each separate policy's origin), all screened: nothing
/// is planned or stored from a document that is not public-safe. The
/// schedule's policy keys come first; each separate policy's top-level keys
/// replace the same keys before it whole.
pub(crate) fn routing_documents(packs: &PackSource, schedule_path: &Path, policies: &Policies, limits: &Limits) -> Result<RoutingDocuments, AppError> {
    let schedule = read_json_limited(schedule_path, limits.max_document_bytes).map_err(AppError::input)?;
    usable_schedule(schedule_path, &schedule)?;
    let separate = separate_policies(policies, limits.max_document_bytes)?;
    let screen = Screen::load(packs)?;
    let mut refused: Vec<Refusal> = Vec::new();
    let mut documents = vec![(schedule_path.display().to_string(), &schedule)];
    documents.extend(separate.iter().map(|p| (p.label.clone(), &p.document)));
    for (label, doc) in documents {
        refused.extend(screen.refusals(doc)?.iter().map(|r| r.located(&label)));
    }
    if !refused.is_empty() {
        return Err(AppError::NotPublicSafe { head: "the input documents are not public-safe; nothing was planned or stored".into(), refusals: refused });
    }
    let mut policy = Map::new();
    let mut sources = Vec::new();
    let mut key_origins = HashMap::new();
    for key in POLICY_KEYS {
        if let Some(v) = schedule.get(*key) {
            policy.insert(key.to_string(), v.clone());
            key_origins.insert(key.to_string(), schedule_path.display().to_string());
        }
    }
    if !policy.is_empty() {
        sources.push("schedule".to_string());
    }
    for layer in &separate {
        merge_over(&mut policy, &layer.document, &layer.label)?;
        key_origins.extend(layer.document.as_object().into_iter().flatten().map(|(k, _)| (k.clone(), layer.label.clone())));
        sources.push(layer.origin.as_str().to_string());
    }
    Ok(RoutingDocuments { schedule, policy: Json::Object(policy), sources, key_origins })
}

/// A schedule document a plan can be made from: an object with a
/// `schedule_id` (letters, digits, `_`, `-`, `.`) and a non-empty list of
/// `owners`. Anything else would make a plan that notifies nobody and looks
/// like success, so it is an input error naming the file and the field.
fn usable_schedule(path: &Path, schedule: &Json) -> Result<(), AppError> {
    let file = path.display();
    let Some(fields) = schedule.as_object() else {
        let kind = match schedule {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "a list",
            Json::Object(_) => "an object",
        };
        return Err(AppError::at_path("$", format!("{file}: expected a schedule object, got {kind}; nothing was planned or stored")));
    };
    let id_ok = fields
        .get("schedule_id")
        .and_then(Json::as_str)
        .is_some_and(|id| !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
    if !id_ok {
        let given = fields.get("schedule_id").map_or("nothing".to_string(), crate::error::shown);
        return Err(AppError::at_path(
            "$.schedule_id",
            format!("{file}: $.schedule_id: expected an id of letters, digits, `_`, `-` or `.`, got {given}; nothing was planned or stored"),
        ));
    }
    let owners = fields.get("owners").and_then(Json::as_array);
    if owners.is_none_or(|o| o.is_empty() || !o.iter().all(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()))) {
        return Err(AppError::at_path(
            "$.owners",
            format!("{file}: $.owners: expected a non-empty list of owner names, so that someone is notified; nothing was planned or stored"),
        ));
    }
    Ok(())
}

/// Refuses a plan of more routes than the limit, before any is decided.
pub(crate) fn check_route_count(schedule_path: &Path, routes: &ScheduleRoutes, limits: &Limits) -> Result<(), AppError> {
    let count = routes.route_count();
    if count > limits.max_routes_per_plan {
        return Err(AppError::input(format!(
            "{}: the plan would have {count} routes, over the limit of {} (--max-routes-per-plan, CAVRA_MAX_ROUTES_PER_PLAN); nothing was planned or stored",
            schedule_path.display(),
            limits.max_routes_per_plan
        )));
    }
    Ok(())
}

/// What a plan is routed with.
pub(crate) struct RoutingDocuments {
    pub schedule: Json,
    /// The merged policy.
    pub policy: Json,
    /// `schedule`, `policy`, `server`, `request`: the sources merged, in order.
    pub sources: Vec<String>,
    /// Which document each top-level key of the merged policy came from (its label).
    pub key_origins: HashMap<String, String>,
}

impl RoutingDocuments {
    /// An error at a path of the merged policy, naming the document that
    /// gave the key (a file, or `$.routing_policy` of the request).
    pub(crate) fn locate(&self, error: AppError) -> AppError {
        match error {
            AppError::Input { field, path: Some(path), message } => {
                let key = path.trim_start_matches("$.").split(['.', '[']).next().unwrap_or_default();
                match self.key_origins.get(key) {
                    Some(origin) if !message.starts_with(origin.as_str()) => {
                        AppError::Input { field, message: format!("{origin}: {message}"), path: Some(path) }
                    }
                    _ => AppError::Input { field, path: Some(path), message },
                }
            }
            other => other,
        }
    }
}

/// The merged policy as stored: `pol_` and its hash, and its canonical text.
pub(crate) fn policy_record(policy: &Json) -> PolicyRecord {
    PolicyRecord { policy_id: format!("pol_{}", crate::hash::content_hash(policy)), document: crate::hash::canonical_text(policy) }
}

/// The providers of a schedule's routes: each owner's route providers, else
/// the schedule's `notification_providers`; sorted.
pub(crate) fn schedule_providers(schedule: &Json, policy: &Json) -> BTreeSet<String> {
    let fallback = text_list(&schedule["notification_providers"]);
    text_list(&schedule["owners"]).iter().flat_map(|owner| owner_providers(policy, owner, &fallback)).collect()
}

/// The schedule's own `notification_providers`.
pub(crate) fn notification_providers(schedule: &Json) -> Vec<String> {
    text_list(&schedule["notification_providers"])
}

/// The providers of an owner's route under a policy, else the schedule's (README,
/// "Notification plan"); for escalation owners, who need no route of their own.
pub(crate) fn route_providers(schedule: &Json, policy: &Json, owner: &str) -> Vec<String> {
    owner_providers(policy, owner, &text_list(&schedule["notification_providers"]))
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

/// The owners, providers and schedule ids a routing policy names: its
/// owner routes and calendars, and the owners, providers and schedule ids
/// its maintenance windows are scoped to. Each sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NamedKeys {
    pub owners: BTreeSet<String>,
    pub providers: BTreeSet<String>,
    pub schedule_ids: BTreeSet<String>,
}

impl NamedKeys {
    /// Adds what `policy` names.
    pub(crate) fn add(&mut self, policy: &Json) {
        for (owner, route) in policy["owner_routes"].as_object().into_iter().flatten() {
            self.owners.insert(owner.clone());
            self.providers.extend(text_list(&route["providers"]));
        }
        self.owners.extend(policy["owner_calendars"].as_object().into_iter().flatten().map(|(owner, _)| owner.clone()));
        for (_, window) in policy_windows(policy) {
            self.owners.extend(text_list(&window["owners"]));
            self.providers.extend(text_list(&window["providers"]));
            self.schedule_ids.extend(text_list(&window["schedule_ids"]));
        }
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
