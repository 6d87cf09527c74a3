//! Route-history queries on a store holding 1,000,000 route decisions.
//!
//! `cargo run --release -j2 -p cavra-benches --example store_queries [ROUTES]`
//! fills a fresh store under target/ (10,000 plans of 100 routes each by
//! default, one transaction per plan), then times each kind of filtered
//! query (median of 25 runs) and one plan write.

use cavra_app::store::{RouteFilter, SqliteStore, Store};
use serde_json::{json, Value as Json};
use std::time::Instant;

const ROUTES_PER_PLAN: usize = 100;

fn plan(i: usize) -> Json {
    let at = chrono::DateTime::from_timestamp(1_780_000_000 + i as i64 * 600, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let plan_id = format!("plan_{i:016x}");
    let routes: Vec<Json> = (0..ROUTES_PER_PLAN)
        .map(|r| {
            let suppressed = r % 4 == 0;
            let provider = ["slack", "teams", "email", "webhook", "outbox"][r % 5];
            let category = if suppressed { ["maintenance_window", "owner_calendar", "healthy_schedule"][r % 3] } else { "deliver" };
            json!({
                "route_id": format!("route_{i:010x}{r:06x}"), "plan_id": plan_id, "schedule_id": format!("schedule-{}", i % 500),
                "owner": format!("owner-{}", (i * 7 + r) % 200), "escalation_owner": format!("lead-{}", r % 20),
                "provider": provider,
                "action": if suppressed { "suppress" } else { "deliver" },
                "category": category,
                "reason": "benchmark route", "created_at": at,
            })
        })
        .collect();
    json!({"schema_version": "bench", "plan_id": plan_id, "schedule_id": format!("schedule-{}", i % 500), "generated_at": at,
           "generated_by": "bench", "mode": "promoted", "status": "due_soon", "alert_level": "warning", "owner_routes": {},
           "deliverable_route_count": 0, "suppressed_route_count": 0, "maintenance_suppressed_count": 0, "calendar_suppressed_count": 0,
           "healthy_suppressed_count": 0, "selected_providers": [], "acknowledgement_required_providers": [], "suppressed_providers": [],
           "reason": "benchmark plan", "route_decisions": routes})
}

fn median_ms(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut rows = 0;
    let mut times: Vec<f64> = (0..25)
        .map(|_| {
            let t = Instant::now();
            rows = f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[12], rows)
}

fn main() {
    let total: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let plans = total / ROUTES_PER_PLAN;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/store-queries");
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(dir.join("cavra.db")).expect("store");
    let t = Instant::now();
    for i in 0..plans {
        store.save_plan(&serde_json::from_value(plan(i)).expect("a plan")).expect("save");
    }
    println!("stored {} routes in {plans} plans: {:.1} s", plans * ROUTES_PER_PLAN, t.elapsed().as_secs_f64());
    let (write_ms, _) = median_ms({
        let mut next = plans;
        move || {
            next += 1;
            store_clone_save(&dir, next)
        }
    });
    println!("one more plan of {ROUTES_PER_PLAN} routes (one transaction): {write_ms:.2} ms median");
    let last = chrono::DateTime::from_timestamp(1_780_000_000 + plans as i64 * 600, 0).unwrap();
    let day_before = (last - chrono::Duration::days(1)).timestamp_micros();
    let cases: Vec<(&str, RouteFilter)> = vec![
        ("newest 100, no filter", RouteFilter::default()),
        ("owner (or escalation owner)", RouteFilter { owner: Some("owner-42".into()), ..Default::default() }),
        ("escalation owner", RouteFilter { owner: Some("lead-7".into()), ..Default::default() }),
        ("action + category", RouteFilter { action: Some("suppress".into()), category: Some("owner_calendar".into()), ..Default::default() }),
        ("provider", RouteFilter { provider: Some("teams".into()), ..Default::default() }),
        ("schedule", RouteFilter { schedule_id: Some("schedule-123".into()), ..Default::default() }),
        ("since the last day", RouteFilter { since: Some(day_before), ..Default::default() }),
        ("owner, page 50", RouteFilter { owner: Some("owner-42".into()), offset: 5_000, ..Default::default() }),
    ];
    for (name, filter) in cases {
        let (ms, rows) = median_ms(|| store.routes(&filter).expect("query").len());
        println!("{name:32} {rows:4} rows  {ms:7.3} ms median");
    }
}

fn store_clone_save(dir: &std::path::Path, i: usize) -> usize {
    let store = SqliteStore::open(dir.join("cavra.db")).expect("store");
    store.save_plan(&serde_json::from_value(plan(i)).expect("a plan")).expect("save");
    ROUTES_PER_PLAN
}
