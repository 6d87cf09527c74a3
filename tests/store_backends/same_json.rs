//! The same CLI commands, in the same order, against a SQLite store and a
//! PostgreSQL store answer with the same exit statuses and the same JSON,
//! once what is wall-clock by design is taken out (see [`WALL_CLOCK`]).

use crate::backend::Backend;
use crate::common::{deliver, fail_then_recover, plan_args, strip, FIRST_ACK, SCHEDULE, T1, T2, T3};
use cavra_tests::provider::Provider;
use cavra_tests::{cavra, Run};
use serde_json::Value as Json;

/// Fields that differ between any two runs, whatever the backend:
/// - `recorded_at`: when the store wrote the record (wall clock);
/// - `started_at`, `completed_at`: when a delivery attempt ran (wall clock);
/// - `delivery_id`: a hash over the attempt, its wall-clock times included;
/// - `recovery_id`: a hash naming the first failed attempt by its `delivery_id`.
const WALL_CLOCK: &[&str] = &["recorded_at", "started_at", "completed_at", "delivery_id", "recovery_id"];

/// One command's answer: what it was, its exit status and its JSON without [`WALL_CLOCK`].
type Answer = (String, i32, Json);

fn answer(label: &str, run: Run) -> Answer {
    let mut json: Json = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{label}: not JSON ({e}), exit {}: {}", run.code, run.stderr));
    strip(&mut json, WALL_CLOCK);
    (label.to_string(), run.code, json)
}

/// `cavra runtime COMMAND --store STORE --json ARGS` in-process.
fn runtime(store: &str, command: &str, args: &[&str]) -> Answer {
    let mut argv = vec!["runtime", command, "--store", store, "--json"];
    argv.extend_from_slice(args);
    answer(&format!("{command} {}", args.join(" ")), cavra(&argv))
}

fn plan(store: &str, at: &str) -> Answer {
    let mut args = plan_args(at);
    args.extend(["--store".to_string(), store.to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    answer(&format!("plan at {at}"), cavra(&argv))
}

/// The lifecycle of the sample through the CLI: plans, a delivery that fails,
/// an approved retry that fails and one that delivers, an acknowledgement, and
/// every view of what was stored.
fn script(backend: &Backend, provider: &Provider) -> Vec<Answer> {
    let (dir, store) = (backend.dir(), backend.store());
    let mut answers = vec![plan(&store, T1)];
    answers.extend(fail_then_recover(dir, provider, &store).map(|(what, run)| answer(what, run)));
    let owner = ["--provider", "teams", "--owner", "release-governance", "--acknowledged-by", "release-governance"];
    answers.push(runtime(&store, "go-rollback-drill-notification-ack", &[&[SCHEDULE][..], &owner, &["--at", FIRST_ACK, "--notes", "drill booked"]].concat()));
    // platform-operations, delivered at 20:00 with 60 minutes to answer, is breached: the run escalates it,
    // and sends release-governance's slack notification, whose freeze ended at 20:00.
    let config = provider.connector_config(dir);
    answers.push(answer("delivery at 21:05", deliver(dir, &config, &store, "2026-05-21T21:05:00Z")));
    answers.push(plan(&store, T3));
    answers.extend([
        runtime(&store, "go-rollback-drill-routes", &["--owner", "platform-lead"]),
        runtime(&store, "go-rollback-drill-routes", &["--provider", "teams", "--since", T2, "--limit", "2", "--offset", "1"]),
        runtime(&store, "go-rollback-drill-routes", &["--at", "2026-05-21T20:00:00Z"]),
        runtime(&store, "go-rollback-drill-escalation-plan", &["--at", "2026-05-21T19:45:00Z"]),
        runtime(&store, "go-rollback-drill-escalation-plan", &["--at", "2026-05-21T20:30:00Z"]),
        runtime(&store, "go-rollback-drill-escalation-plan", &["--at", "2026-05-21T21:04:00Z"]),
        runtime(&store, "go-rollback-drill-escalation-plan", &["--at", "2026-05-21T21:10:00Z"]),
        runtime(&store, "go-rollback-drill-suppression-trends", &["--at", "2026-06-01T00:00:00Z"]),
        runtime(&store, "go-rollback-drill-suppression-trends", &["--at", "2026-06-01T00:00:00Z", "--owner", "platform-lead", "--provider", "slack"]),
        runtime(&store, "go-rollback-drill-delivery-retries", &["--at", "2026-06-01T00:00:00Z"]),
        runtime(&store, "go-rollback-drill-delivery-retries", &["--at", "2026-05-21T19:55:00Z"]),
        runtime(&store, "go-rollback-drill-connector-recovery", &["--provider", "teams", "--at", "2026-06-01T00:00:00Z"]),
        runtime(&store, "go-rollback-drill-connector-recovery", &["--at", "2026-05-21T19:59:00Z"]),
    ]);
    answers
}

#[test]
fn the_cli_answers_alike_on_both_backends() {
    let Some(postgres) = Backend::postgres("store::same_json::postgres") else { return };
    let sqlite = Backend::sqlite("store::same_json::sqlite");
    let provider = Provider::start(500);
    let expected = script(&sqlite, &provider);
    let actual = script(&postgres, &provider);
    assert_eq!(expected.len(), actual.len());
    for ((label, code, json), (_, pg_code, pg_json)) in expected.iter().zip(&actual) {
        assert_eq!(code, pg_code, "{label}: exit status on SQLite, then on PostgreSQL");
        // Not assert_eq: its Debug dump of both documents would bury the pretty ones.
        let (on_sqlite, on_postgres) = (serde_json::to_string_pretty(json).unwrap(), serde_json::to_string_pretty(pg_json).unwrap());
        assert!(json == pg_json, "{label}: SQLite answered\n{on_sqlite}\nPostgreSQL answered\n{on_postgres}");
    }
    // The script did what it is about: deliveries failed, then a retry delivered and a recovery was recorded.
    let code_of = |label: &str| expected.iter().find(|(l, ..)| l == label).map(|(_, code, _)| *code);
    assert_eq!((code_of("delivery at T2"), code_of("first retry"), code_of("second retry")), (Some(1), Some(1), Some(0)));
    let escalated = &expected.iter().find(|(l, ..)| l == "delivery at 21:05").unwrap().2;
    assert_eq!((escalated["escalation_count"].as_u64(), escalated["delivered_count"].as_u64()), (Some(1), Some(2)), "{escalated}");
    let recoveries = &expected.iter().find(|(l, ..)| l.starts_with("go-rollback-drill-connector-recovery --provider")).unwrap().2;
    assert_eq!(recoveries["count"], 1, "{recoveries}");
}
