//! The endpoints: each one reads its query or body into the application's
//! typed request (the same operations the CLI calls) and answers with the
//! record as JSON. Work that reads files, runs packs over documents or
//! touches the store runs on tokio's blocking pool.

use crate::auth::Role;
use crate::http::{in_query, json_reply, parse_object, typed_reply, ApiError, Fields, Query, Reply};
use crate::state::{Call, State};
use cavra_app::acks::AckRequest;
use cavra_app::deliver::DeliverRequest;
use cavra_app::diff::{DiffCase, DiffOver, DiffRequest, Given, Source};
use cavra_app::escalation::EscalationRequest;
use cavra_app::evaluate::EvaluateRequest;
use cavra_app::evaluation::PackEvaluationRequest;
use cavra_app::history::RouteQuery;
use cavra_app::plan::PlanRequest;
use cavra_app::policy::Policies;
use cavra_app::retry::{RetryOutcome, RetryRequest};

use cavra_app::readiness::{Evidence, ReadinessRequest, ReportName};
use cavra_app::records::Plan;
use cavra_app::simulate::SimulateRequest;
use cavra_app::trends::TrendRequest;
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Value as Json};
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
    Ready,
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
    Retries,
    Recoveries,
    Policy(String),
    Packs,
    Reload,
    PackEvaluate(String),
    PackDiff(String),
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
            Endpoint::Health | Endpoint::Ready | Endpoint::Console => Access::Public,
            Endpoint::Deliver | Endpoint::Escalation | Endpoint::Reload => Access::Change,
            Endpoint::Acknowledgements(_) | Endpoint::Retries if method == Method::POST => Access::Change,
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
        "/readyz" => return route(Endpoint::Ready, "/readyz", GET),
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
            ["retries"] => route(Endpoint::Retries, "/runtime/go-pilot/rollback-drill-notifications/retries", GET_POST),
            ["connector-recovery"] => route(Endpoint::Recoveries, "/runtime/go-pilot/rollback-drill-notifications/connector-recovery", GET),
            ["policies", policy] if !policy.is_empty() => {
                route(Endpoint::Policy(crate::http::percent_decode(policy)?), "/runtime/go-pilot/rollback-drill-notifications/policies/{policy_id}", GET)
            }
            [schedule, "acknowledgements"] if !schedule.is_empty() => route(
                Endpoint::Acknowledgements(crate::http::percent_decode(schedule)?),
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
        if let Some(pack) = rest.strip_suffix("/diff").filter(|p| !p.is_empty() && !p.contains('/')) {
            return route(Endpoint::PackDiff(pack.to_string()), "/v1/packs/{pack}/diff", POST);
        }
    }
    None
}

pub(crate) async fn handle(state: Arc<State>, endpoint: Endpoint, call: Call) -> Result<Reply, ApiError> {
    match endpoint {
        Endpoint::Health => health(&state),
        Endpoint::Ready => {
            // Opening the store may wait on the file: not on a reactor thread.
            let worker = tokio::task::spawn_blocking(move || ready(&state));
            worker.await.map_err(|_| ApiError::internal("the readiness check stopped unexpectedly"))?
        }
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
        Endpoint::Retries if call.method == Method::POST => retry(state, call),
        Endpoint::Retries => retries(state, call),
        Endpoint::Recoveries => recoveries(state, call),
        Endpoint::Policy(id) => policy(state, &id, call),
        Endpoint::Reload => reload(state, call),
        Endpoint::PackDiff(pack) => diff_pack(state, &pack, call),
        Endpoint::Health | Endpoint::Ready | Endpoint::Metrics | Endpoint::Console | Endpoint::Packs | Endpoint::PackEvaluate(_) => {
            Err(ApiError::internal("endpoint dispatched to the wrong pool"))
        }
    }
}

fn ok(doc: &impl Serialize) -> Result<Reply, ApiError> {
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

impl State {
    /// The server's evidence settings with this request's clock and mode.
    fn evidence(&self, at: Option<String>, mode: Option<String>) -> Evidence {
        self.settings.evidence.with_request(at, mode)
    }

    /// The server's `--routing-policy`, with the request's merged over it key by key.
    fn policies(&self, given: Option<Json>) -> Policies {
        Policies::server_and_request(self.policy.clone(), given)
    }

    fn plan_request(&self, fields: &mut Fields) -> Result<PlanRequest, ApiError> {
        let provider = fields.providers()?;
        let policy = fields.object("routing_policy")?;
        let force = fields.flag("force")?;
        let at = fields.text("at")?;
        let mode = fields.text("mode")?;
        Ok(PlanRequest { evidence: self.evidence(at, mode), policies: self.policies(policy), provider, force, generated_by: "api".into() })
    }
}

/// `GET /healthz`: the process is alive (it does not touch the store).
fn health(state: &State) -> Result<Reply, ApiError> {
    let packs = state.packs();
    ok(&json!({"status": "ok", "packs": packs.names().count(), "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /readyz`: ready to serve, which needs the store open and answering
/// (a database server may have gone away since); 503 with the reason
/// (naming the store as `postgres://…/DBNAME` or by its file, never its
/// credentials or contents) until it is.
fn ready(state: &State) -> Result<Reply, ApiError> {
    let packs = state.packs().names().count();
    match state.store.get().and_then(|store| store.ping()) {
        Ok(()) => ok(&json!({"status": "ready", "packs": packs, "store": {"status": "ok"}})),
        Err(e) => {
            let (status, code) = crate::http::store_problem(&e);
            let body = json!({"status": "not_ready", "packs": packs, "store": {"status": status, "code": code, "error": e.to_string()}});
            Ok(json_reply(StatusCode::SERVICE_UNAVAILABLE, &body))
        }
    }
}

fn readiness(state: &State, name: &str, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["at", "mode"])?;
    let report = ReportName::from_path(name).ok_or_else(|| ApiError::not_found(format!("no report {name}")))?;
    let request = ReadinessRequest { report, evidence: state.evidence(query.get("at"), query.get("mode")) };
    ok(&cavra_app::readiness::readiness(&state.pack_source(), &request).map_err(in_query)?)
}

fn go_pilot_evaluate(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let action_type = body.required_text("action_type")?;
    let target = body.required_text("target")?;
    let at = body.text("at")?;
    let mode = body.text("mode")?;
    body.finish(&["action_type", "target", "mode", "at"])?;
    let request = EvaluateRequest {
        action_type,
        target,
        runtime: state.settings.runtime.clone(),
        runtime_timeout: cavra_app::evaluate::DEFAULT_RUNTIME_TIMEOUT,
        // The runtime's files are the server's, as the runtime itself is: a
        // caller never names a path on the server.
        files: state.settings.runtime_files.clone(),
        evidence: state.evidence(at, mode),
    };
    let doc = cavra_app::evaluate::evaluate(&state.pack_source(), &request)?;
    state.metrics.decisions([(doc.effective_decision.decision.as_str(), "go_pilot_action")]);
    ok(&doc)
}

/// Whether the caller may write: anyone when no tokens are configured, else an operator.
fn may_write(call: &Call) -> bool {
    call.identity.as_ref().is_none_or(|identity| identity.role >= Role::Operator)
}

/// `POST .../plan` and `POST .../deliver`: `{provider, routing_policy, force, at, mode}`
/// (deliver also takes `acknowledgement_minutes`). A reader's plan is a dry run.
fn plan(state: &State, call: &Call, deliver: bool) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let request = state.plan_request(&mut body)?;
    let acknowledgement_minutes = if deliver { body.number("acknowledgement_minutes")? } else { None };
    body.finish(if deliver {
        &["provider", "routing_policy", "force", "at", "mode", "acknowledgement_minutes"]
    } else {
        &["provider", "routing_policy", "force", "at", "mode"]
    })?;
    let packs = state.pack_source();
    if !deliver {
        let store: Option<&dyn cavra_app::store::StoreProvider> = if may_write(call) { Some(&state.store) } else { None };
        let plan = cavra_app::plan::plan_and_store(&packs, &request, store)?.plan;
        record_decisions(state, &plan);
        return ok(&plan);
    }
    let mut warn = |message: &str| state.log(&[("event", "delivery_warning".into()), ("warning", message.into())]);
    let request = DeliverRequest { plan: request, send: state.send_settings(), acknowledgement_minutes };
    let (result, plan) = cavra_app::deliver::deliver(&packs, &state.store, &request, &mut warn)?;
    record_decisions(state, &plan);
    state.metrics.deliveries(result.deliveries.iter().map(|d| (d.record.provider.as_str(), d.record.outcome.as_str())));
    ok(&result)
}

fn record_decisions(state: &State, plan: &Plan) {
    state.metrics.decisions(plan.route_decisions.iter().map(|r| (r.action.as_str(), r.category.as_str())));
}

fn routes(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["owner", "action", "category", "provider", "schedule_id", "since", "until", "at", "limit", "offset"])?;
    let request = RouteQuery {
        owner: query.get("owner"),
        action: query.get("action"),
        category: query.get("category"),
        provider: query.get("provider"),
        schedule_id: query.get("schedule_id"),
        since: query.get("since"),
        until: query.get("until"),
        at: query.get("at"),
        limit: query.number("limit")?.unwrap_or(u64::from(cavra_app::store::DEFAULT_LIMIT)),
        offset: query.number("offset")?.unwrap_or(0),
    };
    ok(&cavra_app::history::stored_routes(&state.store, &request).map_err(in_query)?)
}

fn trends(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["owner", "provider", "schedule_id", "at"])?;
    let request = TrendRequest {
        owner: query.get("owner"),
        provider: query.get("provider"),
        schedule_id: query.get("schedule_id"),
        at: query.get("at"),
        keep: may_write(call),
    };
    ok(&cavra_app::trends::trends(&state.store, &request).map_err(in_query)?)
}

fn latest_plans(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["at"])?;
    ok(&cavra_app::history::latest_plans(&state.store, query.get("at").as_deref()).map_err(in_query)?)
}

fn simulate(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let from = body.required_text("from")?;
    let to = body.required_text("to")?;
    let provider = body.providers()?;
    let policy = body.object("routing_policy")?;
    body.finish(&["from", "to", "provider", "routing_policy"])?;
    let request = SimulateRequest {
        schedule: state.settings.evidence.rollback_drill_schedule.clone(),
        policies: state.policies(policy),
        from,
        to,
        provider,
        limits: state.settings.evidence.limits,
    };
    ok(&cavra_app::simulate::simulate(&state.pack_source(), &request)?)
}

fn escalation(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let policy = body.object("routing_policy")?;
    let acknowledgement_minutes = body.number("acknowledgement_minutes")?;
    let at = body.text("at")?;
    body.finish(&["routing_policy", "acknowledgement_minutes", "at"])?;
    let request = EscalationRequest { policies: state.policies(policy), acknowledgement_minutes, at };
    ok(&cavra_app::escalation::escalation_plan(&state.pack_source(), &state.store, &request)?)
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
    let notification_id = body.text("notification_id")?;
    let owner = body.text("owner")?;
    let at = body.text("at")?;
    body.finish(&["provider", "acknowledged_by", "acknowledgement_state", "plan_id", "external_ref", "notes", "notification_id", "owner", "at"])?;
    let acknowledged_by = match &call.identity {
        Some(identity) => identity.name.clone(),
        None => given_by.filter(|s| !s.trim().is_empty()).ok_or_else(|| ApiError::invalid("$.acknowledged_by", "`acknowledged_by` is required"))?,
    };
    let request = AckRequest {
        schedule_id: schedule_id.to_string(),
        provider,
        acknowledged_by,
        acknowledgement_state,
        plan_id,
        external_ref,
        notes,
        notification_id,
        owner,
        at,
    };
    let ack = cavra_app::acks::acknowledge(&state.pack_source(), &state.store, &request)?;
    Ok(json_reply(StatusCode::CREATED, &ack))
}

fn acknowledgements(state: &State, schedule_id: &str, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["at"])?;
    ok(&cavra_app::acks::list_acknowledgements(&state.store, schedule_id, query.get("at").as_deref()).map_err(in_query)?)
}

/// `POST .../retries`: `{approval_id, approved_by, schedule_id, provider, at}`.
/// With tokens, the approver is the token's identity; a different
/// `approved_by` in the body is refused. Nothing to retry: 200 with a message.
fn retry(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let mut body = call.fields()?;
    let approval_id = body.text("approval_id")?;
    let given_by = body.text("approved_by")?;
    let schedule_id = body.text("schedule_id")?;
    let provider = body.text("provider")?;
    let at = body.text("at")?;
    body.finish(&["approval_id", "approved_by", "schedule_id", "provider", "at"])?;
    let approved_by = match (&call.identity, given_by) {
        (Some(identity), Some(given)) if given.trim() != identity.name => {
            return Err(ApiError::invalid("$.approved_by", format!("the approver is the token's identity ({}), not {:?}", identity.name, given.trim())));
        }
        (Some(identity), _) => Some(identity.name.clone()),
        (None, given) => given,
    };
    let request = RetryRequest { approval_id, approved_by, schedule_id, provider, at, send: state.send_settings() };
    let mut warn = |message: &str| state.log(&[("event", "delivery_warning".into()), ("warning", message.into())]);
    let outcome = cavra_app::retry::retry(&state.pack_source(), &state.store, &request, &mut warn)?;
    match &outcome {
        RetryOutcome::NothingToRetry { .. } => ok(&outcome),
        RetryOutcome::Retried { retry, .. } => {
            state.metrics.deliveries(retry.notifications.iter().map(|n| (n.provider.as_str(), n.outcome.as_str())));
            Ok(json_reply(StatusCode::CREATED, &outcome))
        }
    }
}

/// `GET .../retries?at=`: the retry execution records, newest first.
fn retries(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["at"])?;
    ok(&cavra_app::retry::list_retries(&state.store, query.get("at").as_deref()).map_err(in_query)?)
}

/// `GET .../connector-recovery?provider=&at=`.
fn recoveries(state: &State, call: &Call) -> Result<Reply, ApiError> {
    let query = call.query()?;
    query.only(&["provider", "at"])?;
    ok(&cavra_app::recovery::list_recoveries(&state.store, query.get("provider").as_deref(), query.get("at").as_deref()).map_err(in_query)?)
}

/// `GET .../policies/{policy_id}`: a merged routing policy a plan used.
fn policy(state: &State, policy_id: &str, call: &Call) -> Result<Reply, ApiError> {
    call.query()?.only(&[])?;
    let found = cavra_app::history::stored_policy(&state.store, policy_id).map_err(in_query)?;
    let document = found.ok_or_else(|| ApiError::not_found(format!("no stored policy {policy_id}")))?;
    ok(&json!({ "policy_id": policy_id, "policy": document }))
}

/// Recompiles every pack from `--rules`. All or nothing: when a pack fails to
/// check, the running set stays and the diagnostics are returned.
fn reload(state: &State, call: &Call) -> Result<Reply, ApiError> {
    call.fields()?.finish(&[])?;
    match cavra_app::packs::CompiledPacks::load(state.settings.rules.as_deref()) {
        Ok(packs) => {
            let names: Vec<String> = packs.names().map(String::from).collect();
            state.replace_packs(packs.with_horizon_days(state.settings.bind_horizon_days));
            state.log(&[("event", "packs_reloaded".into()), ("packs", names.len().into())]);
            ok(&json!({"reloaded": true, "packs": names, "count": names.len()}))
        }
        Err(cavra_app::packs::LoadError::Read(message)) => {
            Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "reload_failed", format!("{message}; the running packs are unchanged")))
        }
        Err(cavra_app::packs::LoadError::Check(failures)) => {
            let first = failures.first().map(|f| f.file.clone());
            let rendered: Vec<String> = failures.iter().map(|f| f.render()).collect();
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "pack_check_failed",
                format!(
                    "{} pack{} failed to check; the running packs are unchanged:\n{}",
                    failures.len(),
                    if failures.len() == 1 { "" } else { "s" },
                    rendered.join("\n")
                ),
            );
            e.path = first;
            Err(e)
        }
    }
}

/// A loaded pack by its declared name, or 404 naming the loaded ones.
fn named_pack(packs: &cavra_app::packs::CompiledPacks, name: &str) -> Result<cavra_app::diff::Pack, ApiError> {
    packs.named(name).cloned().ok_or_else(|| {
        let names: Vec<&str> = packs.names().collect();
        let hint = cavra_app::evaluation::did_you_mean(name, names.iter().copied());
        ApiError::not_found(format!("no pack `{name}`{hint}; loaded packs: {}", names.join(", ")))
    })
}

/// The members of a body object as given values, each named `$.{member}.{name}` in errors.
fn given_values(object: Option<Json>, member: &'static str, many: bool) -> Vec<Given> {
    let Some(Json::Object(map)) = object else { return Vec::new() };
    let mut given = Vec::new();
    for (input, value) in map {
        // In `set`, a list is the values to examine (a list value itself is written inside one: `[[...]]`).
        let values = match value {
            Json::Array(items) if many => items,
            value => vec![value],
        };
        given.extend(values.into_iter().map(|value| Given { input: input.clone(), value, source: Source::Body(member) }));
    }
    given
}

/// `POST /v1/packs/{pack}/diff`: `{inputs, against, against_pack, set, decision, from, to, at, cases}`.
/// The impact of a change: `inputs` are both sides' documents and values,
/// `against` replaces documents on the new side, `against_pack` names a
/// loaded pack as the new side, `set` gives the values to examine (a list:
/// each one). Over `[from, to)`, or at each of `cases` (`{name, at, decision,
/// inputs}`). A reader may ask: nothing is stored.
fn diff_pack(state: &State, name: &str, call: &Call) -> Result<Reply, ApiError> {
    let packs = state.packs();
    let old_pack = named_pack(&packs, name)?;
    let mut body = call.fields()?;
    let new_pack = match body.text("against_pack")? {
        Some(other) => named_pack(&packs, &other).map_err(|e| ApiError::invalid("$.against_pack", e.message))?,
        None => old_pack.clone(),
    };
    let inputs = given_values(body.object("inputs")?, "$.inputs", false);
    let against = given_values(body.object("against")?, "$.against", false);
    let set = given_values(body.object("set")?, "$.set", true);
    let decision = body.text("decision")?;
    let (from, to, at) = (body.text("from")?, body.text("to")?, body.text("at")?);
    let cases = body.list("cases")?;
    body.finish(&["inputs", "against", "against_pack", "set", "decision", "from", "to", "at", "cases"])?;
    let over = match cases {
        Some(cases) => DiffOver::Cases(diff_cases(cases, at.as_deref())?),
        None => DiffOver::Period { from, to, at },
    };
    let request = DiffRequest { old_pack, new_pack, inputs, against, set, decision, over };
    ok(&cavra_app::diff::diff(&state.pack_source(), &request)?)
}

/// A body's `cases`: `[{name, at, decision, inputs}]`, each case's inputs by name.
fn diff_cases(cases: Vec<Json>, at: Option<&str>) -> Result<Vec<DiffCase>, ApiError> {
    cases
        .into_iter()
        .enumerate()
        .map(|(i, case)| {
            let Json::Object(map) = case else { return Err(ApiError::invalid(format!("$.cases[{i}]"), "expected an object {name, at, decision, inputs}")) };
            let mut fields = Fields::new(map);
            let in_case = |e: ApiError| ApiError { path: e.path.map(|p| p.replacen('$', &format!("$.cases[{i}]"), 1)), ..e };
            let name = fields.required_text("name").map_err(in_case)?;
            let case_at = fields.text("at").map_err(in_case)?;
            let decision = fields.text("decision").map_err(in_case)?;
            let inputs = match fields.object("inputs").map_err(in_case)? {
                Some(Json::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            fields.finish(&["name", "at", "decision", "inputs"]).map_err(in_case)?;
            Ok(DiffCase { name, at: case_at.or_else(|| at.map(String::from)), decision, inputs })
        })
        .collect()
}

/// `POST /v1/packs/{pack}/evaluate`: `{inputs: {name: value}, decision, explain, at}`.
/// Static inputs are bound once per distinct value and the bound program is
/// reused, so a stream of decisions under one policy costs only evaluation.
fn evaluate_pack(state: &State, name: &str, call: &Call) -> Result<Reply, ApiError> {
    let packs = state.packs();
    let pack = packs.named(name).ok_or_else(|| {
        let names: Vec<&str> = packs.names().collect();
        let hint = cavra_app::evaluation::did_you_mean(name, names.iter().copied());
        ApiError::not_found(format!("no pack `{name}`{hint}; loaded packs: {}", names.join(", ")))
    })?;
    let mut body = call.fields()?;
    let inputs = match body.object("inputs")? {
        Some(Json::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let request = PackEvaluationRequest { inputs, decision: body.text("decision")?, explain: body.flag("explain")?, at: body.text("at")? };
    body.finish(&["inputs", "decision", "explain", "at"])?;
    let evaluation = cavra_app::evaluation::evaluate_pack(&packs, pack, &request)?;
    state.metrics.decisions(evaluation.decisions.iter().map(|(action, category)| (action.as_str(), category.as_str())));
    ok(&evaluation.document)
}
