//! Suppression trends: how often stored route decisions were suppressed, by
//! category, owner, provider and schedule, with the latest suppressed
//! events. Each result is kept as metadata of kind [`TREND_KIND`].

use crate::documents::clock;
use crate::error::{AppError, Field};
use crate::records::{content_hash, Trend, TrendFilters};
pub use crate::store::TREND_KIND;
use crate::store::{RouteFilter, StoreProvider, SuppressedCount};
use std::collections::BTreeMap;

const TRENDS_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-suppression-trends.v1";
/// How many of the latest suppressed routes a trend lists.
const LATEST: u32 = 10;

/// Which suppressed routes to count.
#[derive(Clone, Debug)]
pub struct TrendRequest {
    /// Routes of this owner or escalation owner.
    pub owner: Option<String>,
    pub provider: Option<String>,
    pub schedule_id: Option<String>,
    /// The clock for `generated_at`, and the view: routes decided after it
    /// are not counted. `None` is now.
    pub at: Option<String>,
    /// Keep the result as metadata (only when the caller may write).
    pub keep: bool,
}

/// Counts the suppressed routes and keeps the result as metadata, when there is a store.
pub fn trends(store: &dyn StoreProvider, request: &TrendRequest) -> Result<Trend, AppError> {
    let generated_at = clock(request.at.as_deref())?;
    let as_of = cavra_engine::time::parse_time(&generated_at).map_err(|e| AppError::field(Field::named("at"), e))?;
    let filter = RouteFilter {
        until: Some(as_of.saturating_add(1)),
        owner: request.owner.clone(),
        provider: request.provider.clone(),
        schedule_id: request.schedule_id.clone(),
        action: Some("suppress".into()),
        limit: LATEST,
        ..RouteFilter::default()
    };
    // Reading a store that does not exist yet creates nothing.
    let store = store.readable()?;
    let (groups, mut latest) = match &store {
        Some(store) => (store.suppressed_counts(&filter)?, store.routes(&filter)?),
        None => (Vec::new(), Vec::new()),
    };
    // The trend's id hashes its content; when the store wrote a route is not part of it.
    for route in &mut latest {
        route.recorded_at = None;
    }
    let mut trend = Trend {
        schema_version: TRENDS_SCHEMA.to_string(),
        kind: TREND_KIND.to_string(),
        generated_at,
        filters: TrendFilters { owner: request.owner.clone(), provider: request.provider.clone(), schedule_id: request.schedule_id.clone() },
        suppressed_route_count: groups.iter().map(|g| g.count).sum(),
        by_category: tally(&groups, |g| &g.category),
        by_owner: tally(&groups, |g| &g.owner),
        by_provider: tally(&groups, |g| &g.provider),
        by_schedule: tally(&groups, |g| &g.schedule_id),
        latest_suppressed: latest,
        trend_id: String::new(),
        stored: None,
    };
    trend.trend_id = format!("trend_{}", content_hash(&trend));
    // The audit record is kept only when the caller may write and the store
    // takes it; a read-only store still answers, with `"stored": false`.
    let kept = match (&store, request.keep) {
        (Some(store), true) => store.save_trend(&trend).is_ok(),
        _ => false,
    };
    trend.stored = Some(kept);
    Ok(trend)
}

fn tally(groups: &[SuppressedCount], key: impl Fn(&SuppressedCount) -> &String) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for g in groups {
        *counts.entry(key(g).clone()).or_default() += g.count;
    }
    counts
}
