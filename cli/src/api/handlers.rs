//! The endpoints: each one reads its query or body into the arguments of an
//! application function (the same ones the CLI calls) and answers with that
//! function's JSON. Work that reads files, runs packs over documents or
//! touches the store runs on tokio's blocking pool.

use super::http::{json_reply, parse_object, typed_reply, ApiError, Fields, Query, Reply};
use super::server::{Call, State};
use crate::acks::{AckArgs, AckRequest, CommonArgs, EscalationArgs};
use crate::deliver::{DeliverArgs, PluginArgs};
use crate::plan::PlanArgs;
use crate::runtime::{EvaluateArgs, ReportArgs};
use crate::store::{RouteFilter, SqliteStore, Store};
use hyper::{Method, StatusCode};
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

const NOTIFICATIONS: &str = "/runtime/go-pilot/rollback-drill-notifications";
const CONSOLE: &str = include_str!("console.html");

/// Who may call an endpoint when tokens are configured.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    Public,
    Read,
    Change,
}

#[derive(Debug)]
pub(crate) enum Endpoint {
    Health,
    Metrics,
    Console,
    Readiness(&'static str),
    Evaluate,
    Plan,
    Deliver,
    Routes,
    Trends,
    LatestPlans,
    Simulate,
    Escalation,
    Acknowledgements(String),
    Packs,
    Reload,
    PackEvaluate(String),
}

pub(crate) struct Route {
    pub endpoint: Endpoint,
    /// The path template, also the metrics label.
    pub template: &'static str,
    pub methods: &'static [Method],
    /// The `Allow` header for 405.
    pub allow: &'static str,
}

impl Route {
    pub(crate) fn access(&self, method: &Method) -> Access {
        match &self.endpoint {
            Endpoint::Health | Endpoint::Console => Access::Public,
            Endpoint::Deliver | Endpoint::Escalation | Endpoint::Reload => Access::Change,
            Endpoint::Acknowledgements(_) if method == Method::POST => Access::Change,
            _ => Access::Read,
        }
    }
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

/// The route a path names, whatever the method (so a wrong method is 405, not 404).
pub(crate) fn resolve(path: &str) -> Option<Route> {
    let route = |endpoint, template, methods: &'static [Method]| {
        let allow = match methods.len() {
            2 => "GET, POST",
            _ if methods[0] == Method::GET => "GET",
            _ => "POST",
        };
        Some(Route { endpoint, template, methods, allow })
    };
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    match path {
        "/healthz" => return route(Endpoint::Health, "/healthz", GET),
        "/metrics" => return route(Endpoint::Metrics, "/metrics", GET),
        "/console" => return route(Endpoint::Console, "/console", GET),
        "/deployment/production-readiness" => return route(Endpoint::Readiness("production-readiness"), "/deployment/production-readiness", GET),
        "/runtime/go-pilot/evaluate" => return route(Endpoint::Evaluate, "/runtime/go-pilot/evaluate", POST),
        "/v1/packs" => return route(Endpoint::Packs, "/v1/packs", GET),
        "/v1/packs/reload" => return route(Endpoint::Reload, "/v1/packs/reload", POST),
        _ => {}
    }
    if let Some(name) = path.strip_prefix("/runtime/go-pilot/") {
        const REPORTS: [(&str, &str); 5] = [
            ("rollback-readiness", "/runtime/go-pilot/rollback-readiness"),
            ("promotion-readiness", "/runtime/go-pilot/promotion-readiness"),
            ("rollback-rehearsal", "/runtime/go-pilot/rollback-rehearsal"),
            ("rollback-drills", "/runtime/go-pilot/rollback-drills"),
            ("rollback-drill-schedule", "/runtime/go-pilot/rollback-drill-schedule"),
        ];
        if let Some((name, template)) = REPORTS.iter().find(|(n, _)| *n == name) {
            return route(Endpoint::Readiness(name), template, GET);
        }
    }
    if let Some(rest) = path.strip_prefix(NOTIFICATIONS).and_then(|r| r.strip_prefix('/')) {
        return match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["plan"] => route(Endpoint::Plan, "/runtime/go-pilot/rollback-drill-notifications/plan", POST),
            ["deliver"] => route(Endpoint::Deliver, "/runtime/go-pilot/rollback-drill-notifications/deliver", POST),
            ["routes"] => route(Endpoint::Routes, "/runtime/go-pilot/rollback-drill-notifications/routes", GET),
            ["suppression-trends"] => route(Endpoint::Trends, "/runtime/go-pilot/rollback-drill-notifications/suppression-trends", GET),
            ["latest-plans"] => route(Endpoint::LatestPlans, "/runtime/go-pilot/rollback-drill-notifications/latest-plans", GET),
            ["simulate"] => route(Endpoint::Simulate, "/runtime/go-pilot/rollback-drill-notifications/simulate", POST),
            ["escalation-plan"] => route(Endpoint::Escalation, "/runtime/go-pilot/rollback-drill-notifications/escalation-plan", POST),
            [schedule, "acknowledgements"] if !schedule.is_empty() => route(
                Endpoint::Acknowledgements(super::http::percent_decode(schedule)?),
                "/runtime/go-pilot/rollback-drill-notifications/{schedule_id}/acknowledgements",
                GET_POST,
            ),
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/packs/") {
        if let Some(pack) = rest.strip_suffix("/evaluate").filter(|p| !p.is_empty() && !p.contains('/')) {
            return route(Endpoint::PackEvaluate(pack.to_string()), "/v1/packs/{pack}/evaluate", POST);
        }
    }
    None
}

pub(crate) async fn handle(state: Arc<State>, endpoint: Endpoint, call: Call) -> Result<Reply, ApiError> {
    match endpoint {
        Endpoint::Health => health(&state),
        Endpoint::Metrics => Ok(typed_reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", state.metrics.render())),
        Endpoint::Console => Ok(typed_reply(StatusCode::OK, "text/html; charset=utf-8", CONSOLE)),
        Endpoint::Packs => Ok(json_reply(StatusCode::OK, &state.packs().describe())),
        // Decisions take microseconds: run them here rather than hop threads.
        Endpoint::PackEvaluate(pack) => evaluate_pack(&state, &pack, &call),
        endpoint => {
            let worker = tokio::task::spawn_blocking(move || blocking(&state, endpoint, &call));
            worker.await.map_err(|_| ApiError::internal("the request's worker stopped unexpectedly; nothing was changed by it beyond what the store shows"))?
        }
    }
}

fn blocking(state: &State, endpoint: Endpoint, call: &Call) -> Result<Reply, ApiError> {
    match endpoint {
        Endpoint::Readiness(name) => readiness(state, name, call),
        Endpoint::Evaluate => go_pilot_evaluate(state, call),
        Endpoint::Plan => plan(state, call, false),
        Endpoint::Deliver => plan(state, call, true),
        Endpoint::Routes => routes(state, call),
        Endpoint::Trends => trends(state, call),
        Endpoint::LatestPlans => latest_plans(state, call),
        Endpoint::Simulate => simulate(state, call),
        Endpoint::Escalation => escalation(state, call),
        Endpoint::Acknowledgements(schedule) if call.method == Method::POST => acknowledge(state, &schedule, call),
        Endpoint::Acknowledgements(schedule) => acknowledgements(state, &schedule, call),
        Endpoint::Reload => reload(state, call),
        Endpoint::Health | Endpoint::Metrics | Endpoint::Console | Endpoint::Packs | Endpoint::PackEvaluate(_) => {
            Err(ApiError::internal("endpoint dispatched to the wrong pool"))
        }
    }
}

fn ok(doc: &Json) -> Result<Reply, ApiError> {
    Ok(json_reply(StatusCode::OK, doc))
}

impl Call {
    fn fields(&self) -> Result<Fields, ApiError> {
        parse_object(&self.body)
    }

    fn query(&self) -> Result<Query, ApiError> {
        Query::parse(self.query.as_deref())
    }
}

/// An RFC 3339 time from a body or query, checked here so the error names the caller's field.
fn checked_time(path: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(text) => cavra_engine::time::parse_time(&text).map(|_| Some(text)).map_err(|e| ApiError::invalid(path, e)),
        None => Ok(None),
    }
}

fn mode(path: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(m) if !crate::runtime::MODES.contains(&m.trim().to_lowercase().as_str()) => {
            Err(ApiError::invalid(path, format!("expected one of {}, got {m:?}", crate::runtime::MODES.join(", "))))
        }
        other => Ok(other),
    }
}

impl State {
    /// The server's document settings with this request's packs, clock and mode.
    fn report(&self, at: Option<String>, mode: Option<String>) -> ReportArgs {
        self.settings.report.for_request(self.packs(), at, mode)
    }

    fn store(&self) -> Option<std::path::PathBuf> {
        Some(self.settings.store.clone())
    }

    fn common(&self, at: Option<String>) -> CommonArgs {
        CommonArgs::new(at, self.store(), self.packs())
    }

    /// The request's routing policy, else the server's `--routing-policy`.
    fn policy(&self, given: Option<Json>) -> Option<Json> {
        given.or_else(|| self.settings.policy.clone())
    }
}

fn health(state: &State) -> Result<Reply, ApiError> {
    let packs = state.packs();
    ok(&json!({"status": "ok", "packs": packs.names().count(), "version": env!("CARGO_PKG_VERSION")}))
}

fn readiness(state: &State, name: &str, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["at", "mode"])?;
    let at = checked_time("query.at", query.get("at"))?;
    let mode = mode("query.mode", query.get("mode"))?;
    let report = crate::runtime::readiness_report(&state.report(at, mode), name).ok_or_else(|| ApiError::not_found(format!("no report {name}")))??;
    ok(&report)
}

fn go_pilot_evaluate(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let action_type = body.required_text("action_type")?;
    let target = body.required_text("target")?;
    let at = checked_time("$.at", body.text("at")?)?;
    let mode = mode("$.mode", body.text("mode")?)?;
    body.finish(&["action_type", "target", "mode", "at"])?;
    let args = EvaluateArgs::new(action_type, target, state.settings.runtime.clone(), state.report(at, mode));
    let doc = crate::runtime::evaluate(&args)?;
    if let Some(decision) = doc["effective_decision"]["decision"].as_str() {
        state.metrics.decisions([(decision, "go_pilot_action")]);
    }
    ok(&doc)
}

/// `POST .../plan` and `POST .../deliver`: `{provider, routing_policy, force, at, mode}`.
fn plan(state: &State, call: &Call, deliver: bool) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let provider = body.providers()?;
    let policy = body.object("routing_policy")?;
    let force = body.flag("force")?;
    let at = checked_time("$.at", body.text("at")?)?;
    let mode = mode("$.mode", body.text("mode")?)?;
    body.finish(&["provider", "routing_policy", "force", "at", "mode"])?;
    let args = PlanArgs::new(state.report(at, mode), state.policy(policy), provider, force, state.store());
    if !deliver {
        let plan = crate::runtime::plan_and_store(&args, "api")?;
        record_decisions(state, &plan);
        return ok(&plan);
    }
    let plugins = PluginArgs::new(state.settings.plugin_dirs.clone(), state.settings.isolation);
    let mut warn = |message: &str| state.log(&[("event", "delivery_warning".into()), ("warning", message.into())]);
    let (result, plan) = crate::deliver::deliver(&DeliverArgs::new(args, plugins), "api", &mut warn)?;
    record_decisions(state, &plan);
    let finals = result["deliveries"].as_array().into_iter().flatten();
    state.metrics.deliveries(finals.map(|d| (d["provider"].as_str().unwrap_or_default(), d["outcome"].as_str().unwrap_or_default())));
    ok(&result)
}

fn record_decisions(state: &State, plan: &Json) {
    let routes = plan["route_decisions"].as_array().into_iter().flatten();
    state.metrics.decisions(routes.map(|r| (r["action"].as_str().unwrap_or_default(), r["category"].as_str().unwrap_or_default())));
}

fn routes(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    let text = ["owner", "action", "category", "provider", "schedule_id", "since", "until"];
    query.only(&[&text[..], &["limit", "offset"]].concat())?;
    let filter = RouteFilter {
        owner: query.get("owner"),
        action: query.get("action"),
        category: query.get("category"),
        provider: query.get("provider"),
        schedule_id: query.get("schedule_id"),
        since: query.get("since"),
        until: query.get("until"),
        limit: query.number("limit")?.unwrap_or(crate::store::DEFAULT_LIMIT),
        offset: query.number("offset")?.unwrap_or(0),
    };
    // The store's own checks name the CLI flag; say which query parameter is wrong.
    filter.validate().map_err(|message| {
        let name = text.iter().chain(&["limit", "offset"]).find(|n| message.starts_with(&format!("--{}", n.replace('_', "-")))).copied();
        ApiError::invalid(name.map(|n| format!("query.{n}")).unwrap_or_else(|| "query".into()), message)
    })?;
    ok(&crate::runtime::stored_routes(state.store().as_deref(), &filter)?)
}

fn trends(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["owner", "provider", "schedule_id", "at"])?;
    let at = checked_time("query.at", query.get("at"))?;
    let args = crate::trends::TrendArgs::new([query.get("owner"), query.get("provider"), query.get("schedule_id")], at, state.store());
    ok(&crate::trends::trends(&args).map_err(ApiError::rejected)?)
}

fn latest_plans(state: &State, call: &Call) -> Result<Reply, ApiError> {
    call.query()?.only(&[])?;
    let path = &state.settings.store;
    let plans = SqliteStore::open(path).and_then(|store| store.latest_plans()).map_err(|e| ApiError::internal(e.to_string()))?;
    ok(&json!({"plans": plans, "count": plans.len()}))
}

fn simulate(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let from = checked_time("$.from", Some(body.required_text("from")?))?.unwrap_or_default();
    let to = checked_time("$.to", Some(body.required_text("to")?))?.unwrap_or_default();
    let provider = body.providers()?;
    let policy = body.object("routing_policy")?;
    body.finish(&["from", "to", "provider", "routing_policy"])?;
    let args = crate::simulate::SimulateArgs::new(&state.report(None, None), state.policy(policy), (from, to), provider);
    ok(&crate::simulate::simulate(&args)?)
}

fn escalation(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let policy = body.object("routing_policy")?;
    let minutes = body.number("acknowledgement_minutes")?;
    let at = checked_time("$.at", body.text("at")?)?;
    body.finish(&["routing_policy", "acknowledgement_minutes", "at"])?;
    if minutes.is_some_and(|m| !m.is_finite() || m <= 0.0) {
        return Err(ApiError::invalid("$.acknowledgement_minutes", "expected a positive number"));
    }
    let args = EscalationArgs::new(state.policy(policy), minutes, state.common(at));
    ok(&crate::acks::escalation_plan(&args)?)
}

/// `POST .../{schedule_id}/acknowledgements`. With tokens, the acknowledging
/// actor is the token's identity, whatever the body says.
fn acknowledge(state: &State, schedule_id: &str, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let provider = body.required_text("provider")?;
    let given_by = body.text("acknowledged_by")?;
    let acknowledgement_state = body.text("acknowledgement_state")?;
    let plan_id = body.text("plan_id")?;
    let external_ref = body.text("external_ref")?;
    let notes = body.text("notes")?;
    let at = checked_time("$.at", body.text("at")?)?;
    body.finish(&["provider", "acknowledged_by", "acknowledgement_state", "plan_id", "external_ref", "notes", "at"])?;
    let acknowledged_by = match &call.identity {
        Some(identity) => identity.name.clone(),
        None => given_by.filter(|s| !s.trim().is_empty()).ok_or_else(|| ApiError::invalid("$.acknowledged_by", "`acknowledged_by` is required"))?,
    };
    if let Some(state_name) = &acknowledgement_state {
        if !crate::acks::ACK_STATES.contains(&state_name.trim().to_lowercase().as_str()) {
            return Err(ApiError::invalid("$.acknowledgement_state", format!("expected one of {}, got {state_name:?}", crate::acks::ACK_STATES.join(", "))));
        }
    }
    let request = AckRequest { schedule_id: schedule_id.to_string(), provider, acknowledged_by, acknowledgement_state, plan_id, external_ref, notes };
    let ack = crate::acks::acknowledge(&AckArgs::new(request, state.common(at)))?;
    Ok(json_reply(StatusCode::CREATED, &ack))
}

fn acknowledgements(state: &State, schedule_id: &str, call: &Call) -> Result<Reply, ApiError> {
    call.query()?.only(&[])?;
    ok(&crate::acks::list_acknowledgements(state.store().as_deref(), schedule_id)?)
}

/// Recompiles every pack from `--rules`. All or nothing: when a pack fails to
/// check, the running set stays and the diagnostics are returned.
fn reload(state: &State, call: &Call) -> Result<Reply, ApiError> {
    call.fields()?.finish(&[])?;
    match crate::packs::CompiledPacks::load(state.settings.report.rules()) {
        Ok(packs) => {
            let names: Vec<String> = packs.names().map(String::from).collect();
            state.replace_packs(packs);
            state.log(&[("event", "packs_reloaded".into()), ("packs", names.len().into())]);
            ok(&json!({"reloaded": true, "packs": names, "count": names.len()}))
        }
        Err(crate::packs::LoadError::Read(message)) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "reload_failed", format!("{message}; the running packs are unchanged")))
        }
        Err(crate::packs::LoadError::Check(failures)) => {
            let first = failures.first().map(|f| f.file.clone());
            let rendered: Vec<String> = failures.iter().map(|f| f.render()).collect();
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "pack_check_failed",
                format!(
                    "{} pack{} failed to check; the running packs are unchanged:\n{}",
                    failures.len(),
                    crate::authoring::plural(failures.len()),
                    rendered.join("\n")
                ),
            );
            e.path = first;
            Err(e)
        }
    }
}

/// `POST /v1/packs/{pack}/evaluate`: `{inputs: {name: value}, decision, explain, at}`.
/// Static inputs are bound once per distinct value and the bound program is
/// reused, so a stream of decisions under one policy costs only evaluation.
fn evaluate_pack(state: &State, name: &str, call: &Call) -> Result<Reply, ApiError> {
    let packs = state.packs();
    let pack = packs.named(name).ok_or_else(|| {
        let names: Vec<&str> = packs.names().collect();
        let hint = cavra_grammar::diagnostic::did_you_mean(name, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
        ApiError::not_found(format!("no pack `{name}`{hint}; loaded packs: {}", names.join(", ")))
    })?;
    let mut body = call.fields()?;
    let inputs = body.object("inputs")?.and_then(|i| match i {
        Json::Object(map) => Some(map),
        _ => None,
    });
    let decision = body.text("decision")?;
    let explain = body.flag("explain")?;
    let at = checked_time("$.at", body.text("at")?)?;
    body.finish(&["inputs", "decision", "explain", "at"])?;
    let now = crate::documents::clock(at.as_deref()).map_err(|e| ApiError::invalid("$.at", e))?;

    let declared = pack.inputs();
    let mut statics = HashMap::new();
    let mut dynamics = Vec::new();
    for (input, value) in inputs.into_iter().flatten() {
        let Some(info) = declared.iter().find(|i| i.name == input) else {
            let names: Vec<&str> = declared.iter().map(|i| i.name.as_str()).collect();
            let hint = cavra_grammar::diagnostic::did_you_mean(&input, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            return Err(ApiError::invalid(
                format!("$.inputs.{input}"),
                format!("the pack `{name}` has no input `{input}`{hint}; its inputs are: {}", names.join(", ")),
            ));
        };
        if info.is_static {
            statics.insert(input, value);
        } else {
            dynamics.push((input, value));
        }
    }
    let key = statics_key(&statics);
    let program = match packs.cached(pack, &key) {
        Some(program) => program,
        None => {
            // Static inputs are documents (policies): public-safe ones only, checked once per distinct document.
            let screen = crate::safety::Screen::load(&state.report(None, None))?;
            for (input, doc) in &statics {
                let refused = screen.refusals(doc)?;
                if !refused.is_empty() {
                    let located: Vec<String> = refused.iter().map(|r| crate::plan::locate(&format!("$.inputs.{input}"), r)).collect();
                    return Err(ApiError::rejected(format!("input `{input}` is not public-safe; nothing was decided:\n  {}", located.join("\n  "))));
                }
            }
            packs.bind(pack, key, &statics).map_err(|e| bind_error(name, e))?
        }
    };
    let mut values = program.inputs();
    if declared.iter().any(|i| i.name == "now" && !i.is_static) && !dynamics.iter().any(|(n, _)| n == "now") {
        dynamics.push(("now".into(), Json::String(now.clone())));
    }
    for (input, value) in &dynamics {
        program.set_input(&mut values, input, value).map_err(|e| bind_error(name, e))?;
    }
    let evaluation = crate::authoring::evaluate(&program, &values, decision.as_deref(), explain).map_err(|e| ApiError::invalid("$.decision", e))?;
    state.metrics.decisions(evaluation.items.iter().filter_map(|item| match &item.result {
        Ok(crate::authoring::ItemResult::Outcome(o)) => Some((o.action, o.category)),
        _ => None,
    }));
    let doc = evaluation.to_json(&now);
    if let Some(failed) = evaluation.items.iter().find_map(|i| i.result.as_ref().err().map(|e| (i.name.clone(), e.clone()))) {
        let (item, message) = failed;
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "evaluation_failed", format!("`{item}`: {message}"));
        e.path = Some("$.inputs".into());
        return Err(e);
    }
    ok(&doc)
}

/// Names a set of static inputs by content, without copying the documents.
fn statics_key(statics: &HashMap<String, Json>) -> String {
    let mut parts: Vec<(&String, String)> = statics.iter().map(|(name, doc)| (name, crate::routing::content_hash(doc))).collect();
    parts.sort();
    parts.iter().map(|(name, hash)| format!("{name}={hash}")).collect::<Vec<_>>().join(";")
}

fn bind_error(pack: &str, e: cavra_engine::BindError) -> ApiError {
    match e {
        cavra_engine::BindError::Input { input, source } => {
            let inner = source.path.strip_prefix('$').unwrap_or(&source.path);
            ApiError::invalid(format!("$.inputs.{input}{inner}"), format!("input `{input}`: {}", source.message))
        }
        cavra_engine::BindError::Missing(input) => {
            ApiError::invalid(format!("$.inputs.{input}"), format!("the pack `{pack}` needs the static input `{input}`"))
        }
        other => ApiError::invalid("$.inputs", other.to_string()),
    }
}
