//! The routing simulation must agree with the plan: at any instant of the
//! span, each route's simulated interval has the outcome a forced plan at that
//! instant decides. Checked on the recurring policy across Berlin's
//! spring-forward weekend and on the sample policy.

use cavra_tests::cavra;
use serde_json::Value as Json;

fn json(args: &[&str]) -> Json {
    let run = cavra(args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("JSON output")
}

fn minutes_after(start: &str, minutes: i64) -> String {
    use cavra_engine::time::{format_time, parse_time, MICROS_PER_SECOND};
    format_time(parse_time(start).unwrap() + minutes * 60 * MICROS_PER_SECOND)
}

fn agree(policy: &str, from: &str, to: &str, probes: &[i64]) {
    let schedule = "../examples/rollback-drill-schedule.json";
    let sim = json(&[
        "runtime",
        "go-rollback-drill-routing-simulate",
        "--routing-policy",
        policy,
        "--rollback-drill-schedule-path",
        schedule,
        "--from",
        from,
        "--to",
        to,
        "--json",
    ]);
    let routes = sim["routes"].as_array().unwrap();
    assert!(!routes.is_empty());
    for &m in probes {
        let at = minutes_after(from, m);
        let plan = json(&[
            "runtime",
            "go-rollback-drill-notification-plan",
            "--mode",
            "promoted",
            "--rollback-drill-schedule-path",
            schedule,
            "--rollback-drill-history-path",
            "../examples/rollback-drills.json",
            "--routing-policy",
            policy,
            "--force",
            "--at",
            &at,
            "--json",
            "--no-store",
        ]);
        for decision in plan["route_decisions"].as_array().unwrap() {
            if decision["category"] == "healthy_schedule" {
                continue; // the simulation assumes a notification is due
            }
            let route = routes.iter().find(|r| r["owner"] == decision["owner"] && r["provider"] == decision["provider"]).expect("the route is simulated");
            let interval = route["intervals"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["start_at"].as_str().unwrap() <= at.as_str() && at.as_str() < i["end_at"].as_str().unwrap())
                .unwrap_or_else(|| panic!("no interval holds {at}"));
            for key in ["action", "category", "reason", "maintenance_window_id", "owner_availability"] {
                assert_eq!(interval[key], decision[key], "{key} of {} on {} at {at}", decision["owner"], decision["provider"]);
            }
        }
    }
}

#[test]
fn simulation_matches_plans_across_a_dst_weekend() {
    // Every 97 minutes over three days, so the probes fall at many offsets.
    let probes: Vec<i64> = (0..44).map(|i| i * 97).collect();
    agree("../rules/fixtures/routing-policy-recurring.json", "2026-03-27T00:00:00Z", "2026-03-30T00:00:00Z", &probes);
}

#[test]
fn simulation_matches_plans_on_the_sample_policy() {
    // On the bounds of the freeze and the holiday, and between them.
    let probes = [0, 1079, 1080, 1199, 1200, 1439, 1440, 1919, 1920, 2879];
    agree("../examples/routing-policy.json", "2026-05-21T00:00:00Z", "2026-05-23T00:00:00Z", &probes);
}

#[test]
fn intervals_tile_the_span() {
    let sim = json(&[
        "runtime",
        "go-rollback-drill-routing-simulate",
        "--routing-policy",
        "../rules/fixtures/routing-policy-recurring.json",
        "--rollback-drill-schedule-path",
        "../examples/rollback-drill-schedule.json",
        "--from",
        "2026-10-23T00:00:00Z",
        "--to",
        "2026-10-27T00:00:00Z",
        "--json",
    ]);
    for route in sim["routes"].as_array().unwrap() {
        let intervals = route["intervals"].as_array().unwrap();
        assert_eq!(intervals.first().unwrap()["start_at"], "2026-10-23T00:00:00Z");
        assert_eq!(intervals.last().unwrap()["end_at"], "2026-10-27T00:00:00Z");
        for pair in intervals.windows(2) {
            assert_eq!(pair[0]["end_at"], pair[1]["start_at"], "no gaps or overlaps");
            assert_ne!((&pair[0]["action"], &pair[0]["reason"]), (&pair[1]["action"], &pair[1]["reason"]), "neighbours are merged");
        }
        let total = route["delivered_minutes"].as_i64().unwrap() + route["suppressed_minutes"].as_i64().unwrap();
        assert_eq!(total, 4 * 24 * 60);
    }
    // Fall-back Sunday: the 01:00-04:00 Berlin window lasts four hours (23:00Z-03:00Z).
    let slack = sim["routes"].as_array().unwrap().iter().find(|r| r["owner"] == "release-governance" && r["provider"] == "slack").unwrap();
    let patch = slack["intervals"].as_array().unwrap().iter().find(|i| i["maintenance_window_id"] == "sunday-patching").unwrap();
    assert_eq!((patch["start_at"].as_str().unwrap(), patch["end_at"].as_str().unwrap()), ("2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z"));
}
