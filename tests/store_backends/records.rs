//! The records beside plans, through the `Store` trait: acknowledgements,
//! latest plans, history, policies, trends, deliveries, retries and
//! recoveries, written from the fixture's real records and read back.

use crate::backend::Backend;
use crate::common::{micros, FIRST_ACK, FIRST_RETRY, SCHEDULE, SECOND_RETRY, T1, T2, T3};
use crate::fixture::Fixture;
use cavra_app::records::{ListedRoute, Plan, PolicyRecord, RouteRecord};
use cavra_app::store::{RouteFilter, SaveOutcome, SuppressedCount};
use cavra_app::trends::{trends, TrendRequest};

backend_tests!(
    acknowledgements_are_append_only_and_listed_newest_first,
    latest_plans_are_each_schedules_newest_as_of_an_instant,
    history_ignores_what_came_after_its_instant,
    the_history_of_several_schedules_is_each_ones_history,
    a_policy_is_stored_once_and_read_back,
    suppressed_counts_and_trends_follow_their_filters,
    deliveries_are_recorded_once_and_final_attempts_are_per_provider,
    retries_and_recoveries_are_recorded_once_and_read_as_of,
    a_store_in_use_closes_on_an_async_worker_thread,
    a_plan_reads_back_byte_for_byte_without_the_routes_added_later,
    routes_read_back_field_for_field_as_their_documents_were,
);

fn stored() -> SaveOutcome {
    SaveOutcome::Stored { routes: 0 }
}

fn plan_ids(plans: &[Plan]) -> Vec<&str> {
    plans.iter().map(|p| p.plan_id.as_str()).collect()
}

fn acknowledgements_are_append_only_and_listed_newest_first(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    for ack in fixture.acks.iter().rev() {
        assert_eq!(store.save_acknowledgement(ack).unwrap(), stored(), "{}", ack.ack_id);
    }
    // The same id again is left as it is, whatever the document says.
    let mut changed = fixture.acks[1].clone();
    changed.notes = Some("rewritten".into());
    for again in [&fixture.acks[1], &changed] {
        assert_eq!(store.save_acknowledgement(again).unwrap(), SaveOutcome::AlreadyStored);
    }
    let listed = store.acknowledgements(SCHEDULE).unwrap();
    assert_eq!(as_written!(&listed), as_written!(&fixture.acks), "newest first, as written");
    assert!(listed.iter().all(|a| a.recorded_at.is_some()), "a listed record says when it was written");
    assert!(store.acknowledgements("another_schedule").unwrap().is_empty());
}

fn latest_plans_are_each_schedules_newest_as_of_an_instant(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    let [t1, t2, t3] = &fixture.plans;
    let outcomes = store.save_plans(&[t1.clone(), t2.clone(), t3.clone(), fixture.teams_at_t3.clone(), fixture.other_schedule.clone()], &[]).unwrap();
    assert_eq!(outcomes.iter().map(|o| matches!(o, SaveOutcome::Stored { .. })).collect::<Vec<_>>(), [true; 5]);
    // Two plans at T3: the greater plan id is the latest.
    let at_t3 = if fixture.teams_at_t3.plan_id > t3.plan_id { &fixture.teams_at_t3 } else { t3 };
    let other = &fixture.other_schedule;
    let latest = |as_of: Option<&str>| -> Vec<Plan> { store.latest_plans(as_of.map(micros)).unwrap() };
    assert_eq!(plan_ids(&latest(None)), [other.plan_id.as_str(), at_t3.plan_id.as_str()], "ordered by schedule id");
    assert_eq!(plan_ids(&latest(Some(T3))), plan_ids(&latest(None)), "as_of is inclusive");
    assert_eq!(plan_ids(&latest(Some("2026-05-22T02:59:59Z"))), [other.plan_id.as_str(), t2.plan_id.as_str()]);
    assert_eq!(plan_ids(&latest(Some("2026-05-21T18:59:59.999999Z"))), [t1.plan_id.as_str()]);
    assert!(latest(Some("2026-05-01T00:00:00Z")).is_empty());
    // The document is the plan as it was given.
    assert_eq!(latest(Some(T1)), std::slice::from_ref(t1));
}

/// The newest route decision about each notification of `plans` decided at or before `as_of`, by route id.
fn newest_routes(plans: &[Plan], as_of: i64) -> Vec<&RouteRecord> {
    let mut newest: std::collections::BTreeMap<&str, &RouteRecord> = std::collections::BTreeMap::new();
    for route in plans.iter().flat_map(|p| &p.route_decisions).filter(|r| !r.notification_id.is_empty() && micros(&r.created_at) <= as_of) {
        let key = |r: &RouteRecord| (micros(&r.created_at), r.route_id.clone());
        if newest.get(route.notification_id.as_str()).is_none_or(|held| key(held) < key(route)) {
            newest.insert(&route.notification_id, route);
        }
    }
    let mut routes: Vec<&RouteRecord> = newest.into_values().collect();
    routes.sort_by(|a, b| a.route_id.cmp(&b.route_id));
    routes
}

fn history_ignores_what_came_after_its_instant(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    fixture.store_plans_and_attempts(&*store);
    for ack in &fixture.acks {
        store.save_acknowledgement(ack).unwrap();
    }
    for at in ["2026-05-21T19:30:00Z", FIRST_RETRY, "2026-05-21T20:15:00Z", "2026-06-01T00:00:00Z"] {
        let as_of = micros(at);
        let history = store.history(Some(SCHEDULE), as_of).unwrap();
        let mut routes = history.routes.clone();
        routes.sort_by(|a, b| a.route_id.cmp(&b.route_id));
        assert_eq!(as_written!(&routes), as_written!(&newest_routes(&fixture.plans, as_of)), "routes as of {at}");
        let attempts: Vec<_> = fixture.attempts.iter().filter(|a| micros(&a.at) <= as_of).collect();
        assert_eq!(as_written!(&history.attempts), as_written!(&attempts), "attempts as of {at}, in the order they were made");
        let acks: Vec<_> = fixture.acks.iter().filter(|a| micros(&a.created_at) <= as_of).collect();
        assert_eq!(as_written!(&history.acknowledgements), as_written!(&acks), "acknowledgements as of {at}, newest first");
        assert_eq!(history.healthy_plans, [(SCHEDULE.to_string(), micros(T1))], "the healthy plan at T1");
    }
    // Before T2 only the healthy plan; nothing of another schedule.
    let early = store.history(Some(SCHEDULE), micros(T2) - 1).unwrap();
    assert!(early.routes.is_empty() && early.attempts.is_empty() && early.acknowledgements.is_empty());
    assert_eq!(early.healthy_plans.len(), 1);
    let other = store.history(Some("another_schedule"), i64::MAX).unwrap();
    assert!(other.routes.is_empty() && other.attempts.is_empty() && other.acknowledgements.is_empty() && other.healthy_plans.is_empty());
    // Every schedule: the same as the sample's only schedule.
    let all = store.history(None, micros(FIRST_ACK)).unwrap();
    assert_eq!((all.routes.len(), all.attempts.len(), all.acknowledgements.len()), (3, 8, 1));
}

/// `Store::histories` (a batch's schedules read together) against
/// `Store::history` of each, with a schedule given twice and one unknown.
fn the_history_of_several_schedules_is_each_ones_history(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    fixture.store_plans_and_attempts(&*store);
    store.save_plans(std::slice::from_ref(&fixture.other_schedule), std::slice::from_ref(&fixture.policy)).unwrap();
    for ack in &fixture.acks {
        store.save_acknowledgement(ack).unwrap();
    }
    let other = fixture.other_schedule.schedule_id.as_str();
    for at in [T2, FIRST_RETRY, "2026-06-01T00:00:00Z"] {
        let as_of = micros(at);
        let together = store.histories(&[SCHEDULE, other, "another_schedule", SCHEDULE], as_of).unwrap();
        let apart: Vec<_> = [SCHEDULE, other].iter().map(|s| store.history(Some(s), as_of).unwrap()).collect();
        let sorted = |mut ids: Vec<String>| {
            ids.sort();
            ids
        };
        assert_eq!(
            sorted(together.routes.iter().map(|r| r.route_id.to_string()).collect()),
            sorted(apart.iter().flat_map(|h| &h.routes).map(|r| r.route_id.to_string()).collect()),
            "routes as of {at}"
        );
        assert!(!together.routes.is_empty() && together.routes.iter().any(|r| r.schedule_id == other), "both schedules' routes as of {at}");
        assert_eq!(
            sorted(together.attempts.iter().map(|a| a.delivery_id.clone()).collect()),
            sorted(apart.iter().flat_map(|h| &h.attempts).map(|a| a.delivery_id.clone()).collect()),
            "attempts as of {at}"
        );
        assert_eq!(
            sorted(together.acknowledgements.iter().map(|a| a.ack_id.clone()).collect()),
            sorted(apart.iter().flat_map(|h| &h.acknowledgements).map(|a| a.ack_id.clone()).collect()),
            "acknowledgements as of {at}"
        );
        let mut healthy = together.healthy_plans.clone();
        healthy.sort();
        let mut expected: Vec<_> = apart.iter().flat_map(|h| h.healthy_plans.clone()).collect();
        expected.sort();
        assert_eq!(healthy, expected, "healthy plans as of {at}");
    }
}

fn a_policy_is_stored_once_and_read_back(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    let [t1, t2, t3] = fixture.plans.clone();
    store.save_plans(&[t1, t2], std::slice::from_ref(&fixture.policy)).unwrap();
    assert_eq!(store.policy(&fixture.policy.policy_id).unwrap(), Some(fixture.policy.clone()));
    // Stored once: another document under the same id changes nothing.
    let mut changed = fixture.policy.clone();
    changed.document = r#"{"rewritten": true}"#.into();
    store.save_plans(&[t3], &[changed.clone(), changed]).unwrap();
    assert_eq!(store.policy(&fixture.policy.policy_id).unwrap(), Some(fixture.policy.clone()));
    assert_eq!(store.policy("pol_0000000000000000").unwrap(), None);
    // Twice in one batch: the first is the one stored.
    let first = PolicyRecord { policy_id: "pol_00000000000000ff".into(), document: fixture.policy.document.clone() };
    let second = PolicyRecord { document: r#"{"second": true}"#.into(), ..first.clone() };
    store.save_plans(&[], &[first.clone(), second]).unwrap();
    assert_eq!(store.policy(&first.policy_id).unwrap(), Some(first));
}

fn count(category: &str, owner: &str, provider: &str, count: u64) -> SuppressedCount {
    SuppressedCount { category: category.into(), owner: owner.into(), provider: provider.into(), schedule_id: SCHEDULE.into(), count }
}

fn suppressed_counts_and_trends_follow_their_filters(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    store.save_plans(&fixture.plans, &[]).unwrap();
    let counts = |filter: RouteFilter| store.suppressed_counts(&filter).unwrap();
    let rg = "release-governance";
    // Healthy (3 suppressed), change freeze (1), regional holiday (2); ordered by category, owner, provider.
    assert_eq!(
        counts(RouteFilter::default()),
        [
            count("healthy_schedule", "platform-operations", "teams", 1),
            count("healthy_schedule", rg, "slack", 1),
            count("healthy_schedule", rg, "teams", 1),
            count("maintenance_window", rg, "slack", 1),
            count("owner_calendar", rg, "slack", 1),
            count("owner_calendar", rg, "teams", 1),
        ]
    );
    // The escalation owner matches too; filters combine; since and until are half open.
    let lead_on_slack = RouteFilter { owner: Some("platform-lead".into()), provider: Some("slack".into()), ..RouteFilter::default() };
    let expected = [count("healthy_schedule", rg, "slack", 1), count("maintenance_window", rg, "slack", 1), count("owner_calendar", rg, "slack", 1)];
    assert_eq!(counts(lead_on_slack), expected);
    let window = RouteFilter { since: Some(micros(T2)), until: Some(micros(T3)), ..RouteFilter::default() };
    assert_eq!(counts(window), [count("maintenance_window", rg, "slack", 1)]);
    assert!(counts(RouteFilter { schedule_id: Some("another_schedule".into()), ..RouteFilter::default() }).is_empty());
    assert!(counts(RouteFilter { owner: Some("nobody".into()), ..RouteFilter::default() }).is_empty());

    // A trend counted from this store is kept once.
    let location = backend.location();
    let request = TrendRequest { owner: None, provider: None, schedule_id: None, at: Some("2026-06-01T00:00:00Z".into()), keep: false };
    let trend = trends(&location, &request).unwrap();
    assert_eq!((trend.suppressed_route_count, trend.stored), (6, Some(false)));
    assert_eq!(store.save_trend(&trend).unwrap(), stored());
    assert_eq!(store.save_trend(&trend).unwrap(), SaveOutcome::AlreadyStored);
    let filtered = trends(&location, &TrendRequest { owner: Some("platform-lead".into()), keep: true, ..request }).unwrap();
    assert_eq!((filtered.suppressed_route_count, filtered.stored), (5, Some(true)));
    assert_ne!(filtered.trend_id, trend.trend_id);
    assert_eq!(store.save_trend(&filtered).unwrap(), SaveOutcome::AlreadyStored, "kept by the trend request");
}

fn deliveries_are_recorded_once_and_final_attempts_are_per_provider(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    store.save_plans(&fixture.plans, &[]).unwrap();
    for attempt in &fixture.attempts {
        assert_eq!(store.save_delivery(attempt).unwrap(), stored(), "{}", attempt.delivery_id);
    }
    let mut changed = fixture.attempts[0].clone();
    changed.record.message = "rewritten".into();
    for again in [&fixture.attempts[0], &changed] {
        assert_eq!(store.save_delivery(again).unwrap(), SaveOutcome::AlreadyStored);
    }
    let plan_id = &fixture.plans[1].plan_id;
    let listed = store.deliveries(plan_id).unwrap();
    assert_eq!(as_written!(&listed), as_written!(&fixture.attempts), "oldest first, as written");
    assert!(listed.iter().all(|a| a.recorded_at.is_some()));
    assert!(store.deliveries(&fixture.plans[0].plan_id).unwrap().is_empty());
    // A provider's last attempts per notification and run, oldest first.
    let finals: Vec<_> = fixture.attempts.iter().filter(|a| a.record.is_final).collect();
    assert_eq!(finals.len(), 6, "two notifications, three runs");
    assert_eq!(as_written!(&store.final_attempts("teams").unwrap()), as_written!(&finals));
    assert!(store.final_attempts("slack").unwrap().is_empty(), "slack was suppressed, never attempted");
}

fn retries_and_recoveries_are_recorded_once_and_read_as_of(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    for retry in fixture.retries.iter().rev() {
        assert_eq!(store.save_retry(retry).unwrap(), stored());
        assert_eq!(store.save_retry(retry).unwrap(), SaveOutcome::AlreadyStored);
    }
    let retries = |as_of: Option<&str>| as_written!(&store.retries(as_of.map(micros)).unwrap());
    assert_eq!(retries(None), as_written!(&fixture.retries), "newest first");
    assert_eq!(retries(Some(SECOND_RETRY)), retries(None), "as_of is inclusive");
    assert_eq!(retries(Some("2026-05-21T19:59:59Z")), as_written!(&fixture.retries[1..]));
    assert_eq!(retries(Some("2026-05-21T19:49:59Z")), serde_json::json!([]));

    let recovery = &fixture.recoveries[0];
    assert_eq!(store.save_recovery(recovery).unwrap(), stored());
    assert_eq!(store.save_recovery(recovery).unwrap(), SaveOutcome::AlreadyStored, "recorded once");
    let recoveries = |as_of: Option<&str>| as_written!(&store.recoveries(as_of.map(micros)).unwrap());
    assert_eq!(recoveries(None), as_written!(&fixture.recoveries));
    assert_eq!(recoveries(Some(&recovery.recovered_at)), recoveries(None));
    assert_eq!(recoveries(Some("2026-05-21T19:59:59Z")), serde_json::json!([]));
    assert_eq!(recovery.recovered_at, SECOND_RETRY);
}

/// `cavra api` drops its last store handle on a tokio worker when its
/// runtime shuts down and cancels the sweeper; closing the store there
/// (PostgreSQL: the pooled connections) must not panic, which would abort
/// this test binary.
fn a_store_in_use_closes_on_an_async_worker_thread(backend: &Backend) {
    let store = backend.open();
    store.ping().expect("the store answers, so a connection is open");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().expect("a runtime");
    let (started, holding) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _store = store;
        let _ = started.send(());
        std::future::pending::<()>().await
    });
    holding.recv_timeout(std::time::Duration::from_secs(30)).expect("the task holds the store");
    runtime.shutdown_timeout(std::time::Duration::from_secs(30));
}

/// A plan's row keeps no copy of its routes' text; reading puts them back in
/// plan order, so the plan reads byte for byte as it was written, and an
/// escalation added to it later is listed with the routes, not in the plan.
fn a_plan_reads_back_byte_for_byte_without_the_routes_added_later(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    let [t1, t2, t3] = &fixture.plans;
    // Its routes in another order than their ids sort in.
    let mut reordered = t3.clone();
    reordered.route_decisions.reverse();
    store.save_plans(&[t1.clone(), t2.clone(), reordered.clone()], std::slice::from_ref(&fixture.policy)).unwrap();
    let mut escalation = t2.route_decisions[0].clone();
    escalation.escalates = Some(escalation.notification_id.clone());
    escalation.notification_id = "ntf_escalation".into();
    escalation.route_id = "route_escalation".into();
    assert_eq!(store.save_routes(&[escalation]).unwrap(), SaveOutcome::Stored { routes: 1 });
    let text = |plans: &[Plan]| plans.iter().map(|p| serde_json::to_string(p).unwrap()).collect::<Vec<_>>();
    assert_eq!(text(&store.latest_plans(Some(micros(T2))).unwrap()), text(std::slice::from_ref(t2)));
    assert_eq!(text(&store.latest_plans(None).unwrap()), text(&[reordered]));
    assert_eq!(store.routes(&RouteFilter::default()).unwrap().len(), 10, "nine routes of the plans and the escalation");
}

/// A route row keeps the route's fields in columns, not its JSON document
/// (SQLite schema 8, PostgreSQL 3): every read gives what the document
/// (`ListedRoute`) gave, field for field, for every optional field absent
/// and present, an escalation owner named or not, and times written with an
/// offset or a fraction: in route history, by owner, in a schedule's
/// history and in the plan read back.
fn routes_read_back_field_for_field_as_their_documents_were(backend: &Backend) {
    let store = backend.open();
    let mut plan = Fixture::get().plans[1].clone();
    plan.plan_id = "plan_00000000000000c8".into();
    plan.generated_at = "2026-06-01T02:00:00+02:00".into();
    let route = |fields: serde_json::Value| -> RouteRecord {
        let mut route = serde_json::json!({
            "schedule_id": plan.schedule_id, "owner": "owner-a", "escalation_owner": null, "provider": "slack",
            "action": "suppress", "category": "owner_calendar", "acknowledgement_minutes": null, "reason": null,
            "maintenance_window_id": null, "owner_availability": null, "created_at": plan.generated_at, "plan_id": plan.plan_id,
        });
        route.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        serde_json::from_value(route).unwrap()
    };
    plan.route_decisions = vec![
        route(serde_json::json!({"route_id": "route_00000000000000a1"})),
        route(serde_json::json!({
            "route_id": "route_00000000000000a2", "owner": "owner-b", "escalation_owner": "lead-b", "provider": "teams",
            "action": "deliver", "category": "deliver", "acknowledgement_minutes": 22.5, "reason": "a \"quoted\" reason\né",
            "maintenance_window_id": "mw-1", "owner_availability": "away", "episode": "2026-06-02T00:00:00Z",
            "suppressed_until": "2026-06-01T04:00:00.250Z", "notification_id": "ntf_00000000000000b2", "alert_level": "critical",
        })),
        route(serde_json::json!({
            "route_id": "route_00000000000000a3", "escalation_owner": "owner-a", "acknowledgement_minutes": 60,
            "notification_id": "ntf_00000000000000b3", "alert_level": "warning", "created_at": "2026-06-01T00:00:00.5Z",
        })),
    ];
    // Added later, with a `recorded_at` of its own that the store's replaces.
    let escalation = route(serde_json::json!({
        "route_id": "route_00000000000000a4", "escalation_owner": "lead-b", "notification_id": "ntf_00000000000000b4",
        "escalates": "ntf_00000000000000b2", "alert_level": "healthy", "recorded_at": "1999-01-01T00:00:00Z",
    }));
    assert_eq!(store.save_plans(std::slice::from_ref(&plan), &[]).unwrap(), [SaveOutcome::Stored { routes: 3 }]);
    assert_eq!(store.save_routes(std::slice::from_ref(&escalation)).unwrap(), SaveOutcome::Stored { routes: 1 });

    let written: Vec<&RouteRecord> = plan.route_decisions.iter().chain([&escalation]).collect();
    let assert_as_written = |read: &[RouteRecord]| {
        for read in read {
            let original = written.iter().find(|r| r.route_id == read.route_id).unwrap();
            let recorded = read.recorded_at.as_deref().expect("a stored route says when it was recorded");
            let document = serde_json::to_string(&ListedRoute { route: original, recorded_at: recorded }).unwrap();
            assert_eq!(serde_json::to_string(read).unwrap(), document);
        }
    };
    let ids = |routes: &[RouteRecord]| routes.iter().map(|r| r.route_id.clone()).collect::<Vec<_>>();
    let listed = store.routes(&RouteFilter::default()).unwrap();
    // Newest first (a3 is half a second later), then by route id.
    assert_eq!(ids(&listed), ["route_00000000000000a3", "route_00000000000000a1", "route_00000000000000a2", "route_00000000000000a4"]);
    assert_as_written(&listed);
    // By owner: their own routes and those that name them as escalation owner.
    let of_lead = store.routes(&RouteFilter { owner: Some("lead-b".into()), ..RouteFilter::default() }).unwrap();
    assert_eq!(ids(&of_lead), ["route_00000000000000a2", "route_00000000000000a4"]);
    let of_a = store.routes(&RouteFilter { owner: Some("owner-a".into()), ..RouteFilter::default() }).unwrap();
    assert_eq!(ids(&of_a), ["route_00000000000000a3", "route_00000000000000a1", "route_00000000000000a4"]);
    let of_teams = store.routes(&RouteFilter { provider: Some("teams".into()), ..RouteFilter::default() }).unwrap();
    assert_eq!(ids(&of_teams), ["route_00000000000000a2"]);
    let history = store.history(Some(&plan.schedule_id), i64::MAX).unwrap();
    let mut notified = ids(&history.routes);
    notified.sort_unstable();
    assert_eq!(notified, ["route_00000000000000a2", "route_00000000000000a3", "route_00000000000000a4"]);
    assert_as_written(&history.routes);
    assert_eq!(ids(&store.history(None, i64::MAX).unwrap().routes).len(), 3, "every schedule's history reads them alike");
    let text = |plans: &[Plan]| plans.iter().map(|p| serde_json::to_string(p).unwrap()).collect::<Vec<_>>();
    assert_eq!(text(&store.latest_plans(None).unwrap()), text(&[plan]));
}

/// PostgreSQL: a database of schema version 1 (plans with their routes in
/// their documents, routes in theirs) migrates to version 3 and reads its
/// plans and routes as written, beside the plans written after.
mod postgres_version_1 {
    use super::*;

    #[test]
    fn plans_and_routes_written_before_versions_2_and_3_are_read_as_they_were_written() {
        let Some(backend) = Backend::postgres("store::records::postgres_version_1::read_as_written") else { return };
        let [t1, t2, t3] = &Fixture::get().plans;
        backend.open().save_plans(&[t1.clone(), t2.clone()], &[]).unwrap();
        let routes = backend.open().routes(&RouteFilter::default()).unwrap();
        // Back to version 1, as that version wrote the plans and routes.
        let mut admin = backend.admin();
        for plan in [t1, t2] {
            let document = serde_json::to_string(plan).unwrap();
            admin.execute("UPDATE plans SET document = $1 WHERE plan_id = $2", &[&document, &plan.plan_id]).unwrap();
        }
        for route in &routes {
            let document = serde_json::to_string(route).unwrap();
            admin.execute("UPDATE route_decisions SET document = $1 WHERE route_id = $2", &[&document, &route.route_id.as_str()]).unwrap();
        }
        admin
            .batch_execute(
                "ALTER TABLE plans DROP COLUMN routes_apart;
                 ALTER TABLE route_decisions DROP COLUMN plan_position, DROP COLUMN escalation_owner_given,
                     DROP COLUMN acknowledgement_minutes, DROP COLUMN reason, DROP COLUMN maintenance_window_id,
                     DROP COLUMN owner_availability, DROP COLUMN created_at_text, DROP COLUMN episode,
                     DROP COLUMN suppressed_until, DROP COLUMN alert_level;
                 DROP INDEX route_decisions_escalation_owner;
                 CREATE INDEX route_decisions_escalation_owner ON route_decisions (escalation_owner, created_at DESC, route_id);
                 DROP INDEX route_decisions_notification;
                 CREATE INDEX route_decisions_notification ON route_decisions (notification_id, created_at DESC, route_id)
                     WHERE notification_id IS NOT NULL;
                 CREATE INDEX route_decisions_provider ON route_decisions (provider, created_at DESC, route_id);
                 UPDATE cavra_schema SET version = 1;",
            )
            .unwrap();
        let store = backend.open();
        let version: i32 = admin.query_one("SELECT version FROM cavra_schema", &[]).unwrap().get(0);
        assert_eq!(version, 3);
        assert_eq!(store.routes(&RouteFilter::default()).unwrap(), routes, "the old rows' routes are read from their documents");
        let apart: Vec<bool> = admin.query("SELECT routes_apart FROM plans", &[]).unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(apart, [false, false], "the old rows keep their documents");
        let text = |plans: &[Plan]| plans.iter().map(|p| serde_json::to_string(p).unwrap()).collect::<Vec<_>>();
        assert_eq!(text(&store.latest_plans(Some(micros(T2))).unwrap()), text(std::slice::from_ref(t2)));
        store.save_plans(std::slice::from_ref(t3), &[]).unwrap();
        assert_eq!(text(&store.latest_plans(None).unwrap()), text(std::slice::from_ref(t3)));
        assert_eq!(text(&store.latest_plans(Some(micros(T2))).unwrap()), text(std::slice::from_ref(t2)));
    }
}
