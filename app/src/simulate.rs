//! Routing simulated over a span: for each owner and provider of a
//! schedule, the intervals of `[from, to)` in which a due notification would
//! be delivered or suppressed, and why. Lets an operator check a change
//! freeze or a calendar before it starts.
//!
//! The routing pack decides, as for a plan; this module only finds the
//! instants where a decision can change (every window bound, every recurring
//! occurrence's start and end), decides once per elementary interval, and
//! merges neighbours with the same outcome.

use crate::documents::document_instants;
use crate::error::{AppError, Field};
use crate::packs::PackSource;
use crate::policy::{bind_routing, check_route_count, provider_filter, routing_documents, schedule_routes, Policies, ROUTING_PACK};
use crate::records::{SimulatedInterval, SimulatedRoute, Simulation};
use crate::routing::Router;
use cavra_engine::time::{format_time, parse_time, MICROS_PER_SECOND};
use cavra_engine::{BindOptions, Value};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::path::PathBuf;

pub const SIMULATION_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-routing-simulation.v1";
/// Longest simulated span: a year keeps the output readable and bounded.
pub const MAX_SPAN_DAYS: i64 = 366;

/// One simulation.
#[derive(Clone, Debug)]
pub struct SimulateRequest {
    /// The drill schedule document (owners, providers, schedule id).
    pub schedule: Option<PathBuf>,
    /// Routing policies besides the schedule's own keys, merged over them in order.
    pub policies: Policies,
    /// Start of the span (RFC 3339, inclusive).
    pub from: String,
    /// End of the span (RFC 3339, exclusive).
    pub to: String,
    /// `all`, or provider names separated by commas.
    pub provider: String,
    /// Document size and plan size limits.
    pub limits: crate::documents::Limits,
}

fn instant(field: &'static str, text: &str) -> Result<i64, AppError> {
    parse_time(text).map_err(|e| AppError::field(Field::named(field), e))
}

pub fn simulate(packs: &PackSource, request: &SimulateRequest) -> Result<Simulation, AppError> {
    let (from, to) = (instant("from", &request.from)?, instant("to", &request.to)?);
    if to <= from {
        return Err(AppError::input(format!("{{@to}} ({}) must be after {{@from}} ({})", format_time(to), format_time(from))));
    }
    if to - from > MAX_SPAN_DAYS * 86_400 * MICROS_PER_SECOND {
        return Err(AppError::input(format!("{{@from}}/{{@to}}: at most {MAX_SPAN_DAYS} days can be simulated at once")));
    }
    let schedule_path = request.schedule.as_deref().filter(|p| !p.as_os_str().is_empty()).ok_or_else(crate::readiness::schedule_needed)?;
    let documents = routing_documents(packs, schedule_path, &request.policies, &request.limits)?;
    let routing = bind_routing(packs, &documents.policy, BindOptions::around(from, to)).map_err(|e| documents.locate(e))?;
    let (schedule, policy) = (documents.schedule, documents.policy);
    let cuts = change_points(&policy, from, to);

    let router = Router::new(&routing.program).map_err(|e| AppError::Pack(format!("{ROUTING_PACK}: {e}")))?;
    let wanted = provider_filter(&request.provider)?;
    let routes = schedule_routes(&schedule, &policy, "needs_attention", wanted.as_ref());
    check_route_count(schedule_path, &routes, &request.limits)?;
    let schedule_id = routes.schedule_id.to_string();
    let text = |v: &Value| v.as_text().map(String::from);

    // One timeline per route, in the router's (owner, provider) order.
    let mut timelines: Vec<SimulatedRoute> = Vec::new();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let planned = router.plan(start, &routes).map_err(|e| routing.render_error(&e))?;
        if timelines.is_empty() {
            timelines = planned
                .routes
                .iter()
                .map(|r| SimulatedRoute {
                    owner: r.owner().to_string(),
                    provider: r.provider().to_string(),
                    delivered_minutes: 0,
                    suppressed_minutes: 0,
                    intervals: Vec::new(),
                })
                .collect();
        }
        for (timeline, r) in timelines.iter_mut().zip(&planned.routes) {
            let interval = SimulatedInterval {
                start_at: format_time(start),
                end_at: format_time(end),
                action: r.action().to_string(),
                category: r.category().to_string(),
                reason: text(r.reason()),
                maintenance_window_id: text(r.maintenance_window_id()),
                owner_availability: text(r.owner_availability()),
            };
            // Microseconds while summing; minutes at the end.
            *(if r.action() == "deliver" { &mut timeline.delivered_minutes } else { &mut timeline.suppressed_minutes }) += end - start;
            match timeline.intervals.last_mut() {
                Some(last) if last.same_outcome(&interval) => last.end_at = interval.end_at,
                _ => timeline.intervals.push(interval),
            }
        }
    }
    for timeline in &mut timelines {
        timeline.delivered_minutes /= 60 * MICROS_PER_SECOND;
        timeline.suppressed_minutes /= 60 * MICROS_PER_SECOND;
    }
    Ok(Simulation {
        schema_version: SIMULATION_SCHEMA.to_string(),
        schedule_id,
        from: format_time(from),
        to: format_time(to),
        assumes: "a notification is due throughout the span".to_string(),
        routes: timelines,
    })
}

/// `from`, `to` and every window bound strictly between them, sorted. A
/// decision can only change at these instants, since the windows are the
/// routing pack's only time-dependent inputs.
fn change_points(policy: &Json, from: i64, to: i64) -> Vec<i64> {
    let mut cuts = BTreeSet::from([from, to]);
    document_instants(policy, from, to, &mut cuts);
    cuts.into_iter().collect()
}
