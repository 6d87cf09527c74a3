//! Real records for the trait-level tests, made once per test binary by the
//! CLI in a SQLite store of their own and read back from it: the sample's
//! plans, its policy, a delivery run at T2 that failed (the provider answered
//! 500), an approved retry that failed again at 19:50 and one that delivered
//! at 20:00 (recording the connector's recovery), and two acknowledgements.

use crate::common::{ack, dry_plan, dry_plan_with, example, fail_then_recover, micros, typed, FIRST_ACK, SCHEDULE, SECOND_ACK, SECOND_RETRY, T1, T2, T3};
use cavra_app::records::{Acknowledgement, DeliveryAttempt, Plan, PolicyRecord, Recovery, Retry};
use cavra_app::store::{SqliteStore, Store};
use cavra_tests::provider::Provider;
use std::path::PathBuf;
use std::sync::OnceLock;

pub struct Fixture {
    /// The sample's plans at T1 (healthy), T2 and T3.
    pub plans: [Plan; 3],
    /// At T3 too, for teams only: the same instant as `plans[2]`, another plan id.
    pub teams_at_t3: Plan,
    /// Another schedule's plan at T2 (`checkout_drill_weekly`, which sorts first).
    pub other_schedule: Plan,
    /// The merged policy the plans name.
    pub policy: PolicyRecord,
    /// Every attempt at the T2 plan's notifications, in the order they were made.
    pub attempts: Vec<DeliveryAttempt>,
    /// Newest first: the delivering retry, then the failed one.
    pub retries: Vec<Retry>,
    /// teams' recovery, recorded by the delivering retry.
    pub recoveries: Vec<Recovery>,
    /// Newest first: platform-operations resolved at SECOND_ACK, release-governance acknowledged at FIRST_ACK.
    pub acks: Vec<Acknowledgement>,
}

impl Fixture {
    pub fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(Fixture::make)
    }

    fn make() -> Fixture {
        // Of this process: the records are read into memory and the folder removed.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store-tests").join(format!("fixture-{}", std::process::id()));
        let dir = cavra_tests::fresh_dir(dir);
        let store = dir.join("cavra.db").display().to_string();
        for ((what, run), code) in fail_then_recover(&dir, &Provider::start(500), &store).into_iter().zip([1, 1, 0]) {
            assert_eq!(run.code, code, "{what}: {}", run.stderr);
        }
        ack(&store, "release-governance", FIRST_ACK, &[]);
        ack(&store, "platform-operations", SECOND_ACK, &["--acknowledgement-state", "resolved"]);

        let sample = example("rollback-drill-schedule.json");
        let plans = [T1, T2, T3].map(|at| typed(&dry_plan(at)));
        let source = SqliteStore::open(&store).expect("the fixture store");
        let stored = source.latest_plans(None).expect("latest plans");
        assert_eq!(stored.iter().map(|p| &p.plan_id).collect::<Vec<_>>(), [&plans[1].plan_id], "the delivery stored the T2 plan as the CLI plans it");
        let schedule = std::fs::read_to_string(&sample).expect("the sample schedule");
        let other = dir.join("other-schedule.json");
        std::fs::write(&other, schedule.replace("go_backend_python_fallback_monthly", "checkout_drill_weekly")).expect("write the other schedule");
        let fixture = Fixture {
            teams_at_t3: typed(&dry_plan_with(&sample, T3, &["--provider", "teams"])),
            other_schedule: typed(&dry_plan_with(&other.display().to_string(), T2, &[])),
            policy: source.policy(&plans[1].policy_id).expect("read the policy").expect("the policy is stored"),
            attempts: source.deliveries(&plans[1].plan_id).expect("deliveries"),
            retries: source.retries(None).expect("retries"),
            recoveries: source.recoveries(None).expect("recoveries"),
            acks: source.acknowledgements(SCHEDULE).expect("acknowledgements"),
            plans,
        };
        drop(source);
        let _ = std::fs::remove_dir_all(&dir);
        // What the tests rely on.
        assert_eq!(fixture.attempts.len(), 8, "2 × 2 failed, 2 failed on the first retry, 2 delivered: {:?}", fixture.attempts);
        assert_eq!((fixture.retries.len(), fixture.recoveries.len(), fixture.acks.len()), (2, 1, 2));
        assert_eq!(fixture.retries[0].at, SECOND_RETRY);
        assert_eq!(fixture.acks[0].created_at, SECOND_ACK);
        fixture
    }

    /// The T2 plan's notification of `owner` on `provider`.
    pub fn notification(&self, owner: &str, provider: &str) -> String {
        let route = self.plans[1].route_decisions.iter().find(|r| r.owner == owner && r.provider == provider);
        route.unwrap_or_else(|| panic!("no route of {owner} on {provider}")).notification_id.to_string()
    }

    /// The attempts at one notification made at or before `at`, in order.
    pub fn attempts_at(&self, notification_id: &str, at: &str) -> Vec<&DeliveryAttempt> {
        let until = micros(at);
        self.attempts.iter().filter(|a| a.notification_id == notification_id && micros(&a.at) <= until).collect()
    }

    /// Stores the plans (each with the policy) and every attempt through `store`.
    pub fn store_plans_and_attempts(&self, store: &dyn Store) {
        store.save_plans(&self.plans, std::slice::from_ref(&self.policy)).expect("save the plans");
        for attempt in &self.attempts {
            store.save_delivery(attempt).expect("save an attempt");
        }
    }
}
