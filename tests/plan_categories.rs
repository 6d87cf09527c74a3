//! Plan summaries count suppressed routes by every category the pack
//! produces (`suppressed_by_category`), custom ones included, beside the
//! bundled pack's named counts; the text summary names custom categories
//! too. The fixture is a custom rules folder: the bundled packs with a
//! routing pack that adds weekend quiet hours (`suppress weekend_quiet`).

use cavra_tests::{cavra, crate_dir, fresh_dir};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};

/// The bundled rules with `quiet_hours` in the routing policy type (its
/// module, `common/routing_policy.cavra`, which the folder's routing pack
/// reads from the folder) and a `weekend_quiet` arm after the maintenance
/// window's.
fn rules_with_weekend_quiet(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    cavra_tests::copy_dir(&crate_dir().join("../rules"), &rules);
    let module = rules.join("common/routing_policy.cavra");
    let policy_type = std::fs::read_to_string(&module).unwrap();
    let field = "  owner_calendars: map<OwnerCalendar> = {}\n";
    assert!(policy_type.contains(field), "rules/common/routing_policy.cavra changed: no {field:?}");
    std::fs::write(&module, policy_type.replacen(field, "  owner_calendars: map<OwnerCalendar> = {}\n  quiet_hours: list<MaintenanceWindow> = []\n", 1))
        .unwrap();
    let routing = rules.join("routing.cavra");
    let pack = std::fs::read_to_string(&routing).unwrap();
    let edits = [
        (
            "let away = first u",
            "let quiet = first q in policy.quiet_hours where active(q, now) and (q.providers is empty or provider in q.providers)\n\nlet away = first u",
        ),
        (
            "  when away exists =>",
            "  when quiet exists =>\n    suppress weekend_quiet reason quiet.reason with { acknowledgement_minutes: acknowledgement_minutes, \
             escalation_owner: escalation_owner, suppressed_until: active_until(quiet, now) }\n  when away exists =>",
        ),
    ];
    let mut edited = pack.clone();
    for (from, to) in edits {
        assert!(edited.contains(from), "rules/routing.cavra changed: no {from:?}");
        edited = edited.replacen(from, to, 1);
    }
    std::fs::write(&routing, edited).unwrap();
    rules
}

/// The sample policy with its change freeze moved to Saturday morning and
/// weekend quiet hours on Teams.
fn weekend_policy(dir: &Path) -> PathBuf {
    let mut policy: Json = serde_json::from_str(&std::fs::read_to_string(crate_dir().join("../examples/routing-policy.json")).unwrap()).unwrap();
    policy["maintenance_windows"][0]["start_at"] = json!("2026-05-23T08:00:00Z");
    policy["maintenance_windows"][0]["end_at"] = json!("2026-05-23T12:00:00Z");
    policy["quiet_hours"] = json!([{
        "window_id": "weekend-quiet",
        "recurrence": {"weekdays": ["saturday", "sunday"], "start_time": "00:00", "end_time": "00:00", "time_zone": "UTC"},
        "providers": ["teams"],
        "reason": "weekend quiet hours",
    }]);
    let path = dir.join("routing-policy.json");
    std::fs::write(&path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    path
}

fn plan(extra: &[&str]) -> cavra_tests::Run {
    let mut args = vec![
        "runtime",
        "go-rollback-drill-notification-plan",
        "--mode",
        "promoted",
        "--rollback-drill-schedule-path",
        "../examples/rollback-drill-schedule.json",
        "--rollback-drill-history-path",
        "../examples/rollback-drills.json",
    ];
    args.extend_from_slice(extra);
    let run = cavra(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run
}

#[test]
fn a_custom_suppression_category_is_counted_beside_the_named_ones() {
    let dir = fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plan-categories-custom"));
    let rules = rules_with_weekend_quiet(&dir).display().to_string();
    let policy = weekend_policy(&dir).display().to_string();
    let store = dir.join("cavra.db").display().to_string();
    let saturday = ["--routing-policy", &policy, "--rules", &rules, "--at", "2026-05-23T10:00:00Z", "--store", &store];

    let doc: Json = serde_json::from_str(&plan(&[&saturday[..], &["--json"]].concat()).stdout).unwrap();
    assert_eq!(doc["suppressed_by_category"], json!({"maintenance_window": 1, "weekend_quiet": 2}), "{doc:#}");
    let counts = ["suppressed_route_count", "maintenance_suppressed_count", "calendar_suppressed_count", "healthy_suppressed_count"].map(|k| doc[k].clone());
    assert_eq!(counts, [json!(3), json!(1), json!(0), json!(0)], "the named counts are kept");
    // In the summary, right after the named counts.
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    let at = |key: &str| keys.iter().position(|k| *k == key).unwrap();
    assert_eq!(at("suppressed_by_category"), at("healthy_suppressed_count") + 1);

    // The table's summary line hides no category.
    let text = plan(&saturday[..]).stdout;
    // (The same plan, made a second time: the text also says it was stored before.)
    assert!(text.lines().any(|l| l == "0 to deliver, 3 suppressed (1 maintenance window, 0 owner calendar, 0 healthy schedule, 2 weekend quiet)"), "{text}");
    assert!(text.ends_with("already stored: the same plan was made before, nothing new was written\n"), "{text}");
}

#[test]
fn the_bundled_pack_lists_only_the_categories_it_produced_and_the_plan_id_is_unchanged() {
    let dir = fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plan-categories-bundled"));
    let store = dir.join("cavra.db").display().to_string();
    let freeze = ["--routing-policy", "../examples/routing-policy.json", "--at", "2026-05-21T19:00:00Z", "--store", &store, "--json"];
    let doc: Json = serde_json::from_str(&plan(&freeze).stdout).unwrap();
    assert_eq!(doc["suppressed_by_category"], json!({"maintenance_window": 1}));
    // Derived from the routes, so the plan's id is the one stores and documents already know.
    assert_eq!(doc["plan_id"], "plan_a0c5c500ee6ae8ed");

    // Nothing suppressed: an empty object, not missing.
    let delivered = ["--routing-policy", "../examples/routing-policy.json", "--at", "2026-05-21T21:00:00Z", "--no-store", "--json"];
    let doc: Json = serde_json::from_str(&plan(&delivered).stdout).unwrap();
    assert_eq!((doc["suppressed_route_count"].clone(), doc["suppressed_by_category"].clone()), (json!(0), json!({})), "{doc:#}");
}

#[test]
fn a_stored_plan_keeps_its_counts_by_category() {
    let dir = fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plan-categories-stored"));
    let rules = rules_with_weekend_quiet(&dir).display().to_string();
    let policy = weekend_policy(&dir).display().to_string();
    let store = dir.join("cavra.db");
    plan(&["--routing-policy", &policy, "--rules", &rules, "--at", "2026-05-23T10:00:00Z", "--store", &store.display().to_string()]);
    let location = cavra_app::store::StoreLocation::or_default(Some(&store));
    let latest = cavra_app::history::latest_plans(&location, None).expect("the stored plans");
    let stored = serde_json::to_value(&latest).unwrap();
    assert_eq!(stored["plans"][0]["suppressed_by_category"], json!({"maintenance_window": 1, "weekend_quiet": 2}), "{stored:#}");
}
