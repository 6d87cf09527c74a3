//! `cavra runtime go-rollback-drill-suppression-trends`: how often stored
//! route decisions were suppressed, by category, owner, provider and schedule,
//! with the latest suppressed events. Each result is kept as metadata of kind
//! `go-backend-rollback-drill-routing-suppression-trend`.

use crate::authoring::say;
use crate::runtime::UsageError;
use crate::store::{RouteFilter, SqliteStore, Store, SuppressedCount};
use crate::Io;
use clap::Args;
use serde_json::{json, Map, Value as Json};
use std::path::PathBuf;

pub(crate) const TREND_KIND: &str = "go-backend-rollback-drill-routing-suppression-trend";
const TRENDS_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-suppression-trends.v1";
const LATEST: u32 = 10;

pub(crate) const TRENDS_HELP: &str = "Counts the stored suppressed route decisions by category, owner, provider and schedule, lists
the latest suppressed events, and stores the result as metadata (kind
go-backend-rollback-drill-routing-suppression-trend). --owner matches the owner or the escalation owner.

Examples:
  cavra runtime go-rollback-drill-suppression-trends
  cavra runtime go-rollback-drill-suppression-trends --owner release-governance --provider slack --json";

#[derive(Args, Debug, Clone)]
pub(crate) struct TrendArgs {
    /// Routes of this owner or escalation owner.
    #[arg(long)]
    owner: Option<String>,
    /// A provider, e.g. slack.
    #[arg(long)]
    provider: Option<String>,
    /// A drill schedule id.
    #[arg(long)]
    schedule_id: Option<String>,
    /// The clock (RFC 3339 with an offset) for `generated_at`; defaults to now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The store [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", value_name = "FILE")]
    store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl TrendArgs {
    pub(crate) fn new(filters: [Option<String>; 3], at: Option<String>, store: Option<PathBuf>) -> TrendArgs {
        let [owner, provider, schedule_id] = filters;
        TrendArgs { owner, provider, schedule_id, at, store, json: true }
    }
}

pub(crate) fn run(io: &mut Io, args: &TrendArgs) -> i32 {
    crate::runtime::finish(io, args.json, trends(args).map_err(UsageError), print)
}

pub(crate) fn trends(args: &TrendArgs) -> Result<Json, String> {
    let generated_at = crate::documents::clock(args.at.as_deref())?;
    let filter = RouteFilter {
        owner: args.owner.clone(),
        provider: args.provider.clone(),
        schedule_id: args.schedule_id.clone(),
        action: Some("suppress".into()),
        limit: LATEST,
        ..RouteFilter::default()
    };
    let path = crate::store::store_path(args.store.as_deref());
    // Reading a store that does not exist yet creates nothing.
    let store = if path.exists() { Some(SqliteStore::open(&path).map_err(|e| e.to_string())?) } else { None };
    let (groups, latest) = match &store {
        Some(store) => (store.suppressed_counts(&filter).map_err(|e| e.to_string())?, store.routes(&filter).map_err(|e| e.to_string())?),
        None => (Vec::new(), Vec::new()),
    };
    let mut doc = json!({
        "schema_version": TRENDS_SCHEMA,
        "kind": TREND_KIND,
        "generated_at": generated_at,
        "filters": {"owner": args.owner, "provider": args.provider, "schedule_id": args.schedule_id},
        "suppressed_route_count": groups.iter().map(|g| g.count).sum::<u64>(),
        "by_category": tally(&groups, |g| &g.category),
        "by_owner": tally(&groups, |g| &g.owner),
        "by_provider": tally(&groups, |g| &g.provider),
        "by_schedule": tally(&groups, |g| &g.schedule_id),
        "latest_suppressed": latest,
    });
    let id = format!("trend_{}", crate::plan::content_hash(&doc));
    doc["trend_id"] = json!(id);
    if let Some(store) = &store {
        store.save_metadata(&id, TREND_KIND, &generated_at, &doc).map_err(|e| e.to_string())?;
    }
    doc["stored"] = json!(store.is_some());
    Ok(doc)
}

fn tally(groups: &[SuppressedCount], key: impl Fn(&SuppressedCount) -> &String) -> Json {
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    for g in groups {
        *counts.entry(key(g).as_str()).or_default() += g.count;
    }
    Json::Object(counts.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>())
}

fn print(io: &mut Io, doc: &Json) {
    say!(io.out, "{} suppressed route decisions", doc["suppressed_route_count"]);
    for (title, key) in [("category", "by_category"), ("owner", "by_owner"), ("provider", "by_provider"), ("schedule", "by_schedule")] {
        let parts: Vec<String> = doc[key].as_object().into_iter().flatten().map(|(k, v)| format!("{k} {v}")).collect();
        if !parts.is_empty() {
            say!(io.out, "  by {title}: {}", parts.join(", "));
        }
    }
    for r in doc["latest_suppressed"].as_array().into_iter().flatten() {
        say!(
            io.out,
            "  {}  {} on {}: {} ({})",
            r["created_at"].as_str().unwrap_or_default(),
            r["owner"].as_str().unwrap_or_default(),
            r["provider"].as_str().unwrap_or_default(),
            r["category"].as_str().unwrap_or_default(),
            r["reason"].as_str().unwrap_or_default()
        );
    }
}
