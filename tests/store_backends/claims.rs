//! Delivery claims through the `Store` trait: who may claim a notification,
//! leases taken over, renewed and released, and one winner among threads
//! claiming at once. Lease times are chosen instants, never the wall clock.

use crate::backend::Backend;
use crate::common::{micros, sorted, FIRST_RETRY, SCHEDULE, T2};
use crate::fixture::Fixture;
use cavra_app::store::{Claim, Store};
use std::sync::Barrier;

backend_tests!(
    a_delivered_notification_cannot_be_claimed,
    a_claim_must_have_seen_the_newest_attempt,
    a_live_claim_of_another_holder_stands_and_an_expired_one_is_taken_over,
    renew_and_release_touch_only_the_holders_claims,
    of_eight_threads_claiming_one_notification_at_once_one_wins,
);

const GOVERNANCE: &str = "release-governance";
const OPERATIONS: &str = "platform-operations";

fn claim(notification_id: &str, holder: &str, claimed_at: i64, expires_at: i64) -> Claim {
    Claim { notification_id: notification_id.into(), schedule_id: SCHEDULE.into(), holder: holder.into(), claimed_at, expires_at }
}

/// The claims whose lease ran out at or before `now`, as (notification, holder), sorted.
fn expired(store: &dyn Store, now: i64) -> Vec<(String, String)> {
    sorted(store.expired_claims(now).unwrap().into_iter().map(|c| (c.notification_id, c.holder)).collect())
}

fn held(notification_id: &str, holder: &str) -> (String, String) {
    (notification_id.to_string(), holder.to_string())
}

/// The id of the newest attempt at a notification made at or before `at`.
fn newest_attempt(fixture: &Fixture, notification_id: &str, at: &str) -> String {
    fixture.attempts_at(notification_id, at).last().expect("an attempt").delivery_id.clone()
}

/// The fixture's plans, and its attempts made at or before `at`.
fn store_until(fixture: &Fixture, store: &dyn Store, at: &str) {
    store.save_plans(&fixture.plans, &[]).unwrap();
    for attempt in fixture.attempts.iter().filter(|a| micros(&a.at) <= micros(at)) {
        store.save_delivery(attempt).unwrap();
    }
}

fn a_delivered_notification_cannot_be_claimed(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    fixture.store_plans_and_attempts(&*store);
    // The second retry delivered both teams notifications.
    let delivered = fixture.notification(GOVERNANCE, "teams");
    let newest = newest_attempt(fixture, &delivered, "2026-06-01T00:00:00Z");
    assert!(!store.claim(&claim(&delivered, "run", 1_000, 2_000), None).unwrap());
    assert!(!store.claim(&claim(&delivered, "run", 1_000, 2_000), Some(&newest)).unwrap(), "even having seen the delivery");
    assert_eq!(expired(&*store, i64::MAX), [], "a refused claim leaves nothing behind");
    // Never attempted (suppressed at T2): free to claim.
    let slack = fixture.notification(GOVERNANCE, "slack");
    assert!(store.claim(&claim(&slack, "run", 1_000, 2_000), None).unwrap());
    assert_eq!(expired(&*store, i64::MAX), [held(&slack, "run")]);
}

fn a_claim_must_have_seen_the_newest_attempt(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    store_until(fixture, &*store, T2);
    let id = fixture.notification(OPERATIONS, "teams");
    let attempts = fixture.attempts_at(&id, T2);
    assert_eq!(attempts.len(), 2, "two failed attempts at T2");
    let [first, newest] = [&attempts[0].delivery_id, &attempts[1].delivery_id];
    assert!(!store.claim(&claim(&id, "run", 1_000, 2_000), None).unwrap(), "it was attempted: not unseen");
    assert!(!store.claim(&claim(&id, "run", 1_000, 2_000), Some(first)).unwrap(), "not the newest attempt");
    assert_eq!(expired(&*store, i64::MAX), []);
    assert!(store.claim(&claim(&id, "run", 1_000, 2_000), Some(newest)).unwrap());
    store.release_claim("run", &id).unwrap();

    // The first retry attempts it again: what the caller saw is no longer the newest.
    for attempt in fixture.attempts_at(&id, FIRST_RETRY).into_iter().skip(2) {
        store.save_delivery(attempt).unwrap();
    }
    assert!(!store.claim(&claim(&id, "later", 3_000, 4_000), Some(newest)).unwrap(), "attempted since the caller looked");
    assert!(store.claim(&claim(&id, "later", 3_000, 4_000), Some(&newest_attempt(fixture, &id, FIRST_RETRY))).unwrap());
    assert_eq!(expired(&*store, i64::MAX), [held(&id, "later")]);
}

fn a_live_claim_of_another_holder_stands_and_an_expired_one_is_taken_over(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    store.save_plans(&fixture.plans, &[]).unwrap();
    let id = fixture.notification(GOVERNANCE, "slack");
    assert!(store.claim(&claim(&id, "a", 1_000, 2_000), None).unwrap());
    assert!(!store.claim(&claim(&id, "b", 1_500, 2_500), None).unwrap(), "a's claim is live");
    assert!(store.claim(&claim(&id, "a", 1_500, 2_500), None).unwrap(), "a holder may claim its own again");
    assert!(!store.claim(&claim(&id, "b", 2_499, 3_000), None).unwrap(), "a's lease now runs to 2500");
    assert!(store.claim(&claim(&id, "b", 2_500, 3_500), None).unwrap(), "an expired claim is taken over");
    assert_eq!(store.expired_claims(3_500).unwrap(), [claim(&id, "b", 2_500, 3_500)]);
    assert_eq!(expired(&*store, 3_499), [], "only expired claims are listed");
}

fn renew_and_release_touch_only_the_holders_claims(backend: &Backend) {
    let fixture = Fixture::get();
    let store = backend.open();
    store.save_plans(&fixture.plans, &[]).unwrap();
    let [one, two, three] = [(GOVERNANCE, "teams"), (OPERATIONS, "teams"), (GOVERNANCE, "slack")].map(|(o, p)| fixture.notification(o, p));
    for (id, holder) in [(&one, "a"), (&two, "b"), (&three, "a")] {
        assert!(store.claim(&claim(id, holder, 0, 1_000), None).unwrap());
    }
    assert_eq!(expired(&*store, 999), []);
    // a renews one and two: b's claim of two and a's claim of three keep their leases.
    store.renew_claims("a", &[one.clone(), two.clone()], 5_000).unwrap();
    assert_eq!(expired(&*store, 1_000), sorted(vec![held(&two, "b"), held(&three, "a")]));
    assert_eq!(expired(&*store, 5_000).len(), 3);
    store.release_claim("b", &one).unwrap();
    store.release_claim("a", &two).unwrap();
    assert_eq!(expired(&*store, i64::MAX).len(), 3, "nobody releases another's claim");
    store.release_claim("a", &one).unwrap();
    assert_eq!(expired(&*store, i64::MAX), sorted(vec![held(&two, "b"), held(&three, "a")]));
}

/// Eight threads, each with a store of its own (its own connection), claim one notification at
/// once, four times for each of three notifications (unattempted, and attempted with the newest
/// attempt seen); the winner gives it up before the next time.
fn of_eight_threads_claiming_one_notification_at_once_one_wins(backend: &Backend) {
    const THREADS: usize = 8;
    let fixture = Fixture::get();
    store_until(fixture, &*backend.open(), T2);
    let slack = fixture.notification(GOVERNANCE, "slack");
    let rounds: Vec<(String, Option<String>)> = [(GOVERNANCE, "slack"), (OPERATIONS, "teams"), (GOVERNANCE, "teams")]
        .map(|(owner, provider)| fixture.notification(owner, provider))
        .into_iter()
        .map(|id| {
            let seen = (id != slack).then(|| newest_attempt(fixture, &id, T2));
            (id, seen)
        })
        .flat_map(|round| std::iter::repeat_n(round, 4))
        .collect();
    let stores: Vec<_> = (0..THREADS).map(|_| backend.open()).collect();
    let barrier = Barrier::new(THREADS);
    // An error is kept, not raised, so that no thread leaves the others waiting at the barrier.
    let won: Vec<Vec<Result<bool, String>>> = std::thread::scope(|scope| {
        let threads: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(thread, store)| {
                let (rounds, barrier) = (&rounds, &barrier);
                scope.spawn(move || {
                    let holder = format!("run-{thread}");
                    let mut won = Vec::new();
                    for (id, seen) in rounds {
                        barrier.wait();
                        let mine = store.claim(&claim(id, &holder, 1_000, 1_000_000), seen.as_deref()).map_err(|e| e.to_string());
                        // Everyone has tried before the winner lets go.
                        barrier.wait();
                        let released = if mine == Ok(true) { store.release_claim(&holder, id).map_err(|e| e.to_string()) } else { Ok(()) };
                        barrier.wait();
                        won.push(released.and(mine));
                    }
                    won
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a claiming thread")).collect()
    });
    for (round, (id, _)) in rounds.iter().enumerate() {
        let answers: Vec<&Result<bool, String>> = won.iter().map(|thread| &thread[round]).collect();
        assert!(answers.iter().all(|a| a.is_ok()), "round {round} ({id}): {answers:?}");
        let winners: Vec<usize> = (0..THREADS).filter(|&t| won[t][round] == Ok(true)).collect();
        assert_eq!(winners.len(), 1, "round {round} ({id}): exactly one of {THREADS} threads wins, not {winners:?}");
    }
    assert_eq!(expired(&*backend.open(), i64::MAX), [], "each winner gave its claim up");
}
