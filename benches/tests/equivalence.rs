//! cavra and the plain-loop baseline decide every request of both workloads
//! the same way, and the workloads suppress 20–40% of requests.

use cavra_benches::{cavra_decide, plain_decide, reason_text, Decision, Prepared, REQUESTS};

fn check(windows: usize) {
    let p = Prepared::new(windows);
    assert_eq!(p.workload.requests.len(), REQUESTS);
    assert_eq!(p.inputs.len(), REQUESTS);
    let (mut maintenance, mut calendar) = (0usize, 0usize);
    for (i, (r, inputs)) in p.workload.requests.iter().zip(&p.inputs).enumerate() {
        let expected = plain_decide(&p.plain, p.workload.owner(r), p.workload.provider(r), r.now);
        let got = cavra_decide(&p.program, inputs);
        assert_eq!(
            (got.action, got.category),
            (expected.action(), expected.category()),
            "request {i} ({} via {} at {}): cavra {:?}, plain {expected:?}",
            p.workload.owner(r),
            p.workload.provider(r),
            cavra_benches::rfc3339(r.now),
            got.to_json(),
        );
        // Beyond action and category: the same window / absence was chosen.
        match expected {
            Decision::MaintenanceWindow { window_id, reason } => {
                maintenance += 1;
                assert_eq!(reason_text(&got), reason, "request {i}");
                let id = got.fields().find(|(k, _)| *k == "maintenance_window_id").and_then(|(_, v)| v.as_text().map(str::to_string));
                assert_eq!(id.as_deref(), Some(window_id), "request {i}");
            }
            Decision::OwnerCalendar { reason } => {
                calendar += 1;
                assert_eq!(reason_text(&got), reason, "request {i}");
            }
            Decision::Deliver => {}
        }
    }
    let suppressed = maintenance + calendar;
    let share = suppressed as f64 / REQUESTS as f64;
    eprintln!(
        "{windows} windows: {:.1}% suppressed ({:.1}% maintenance window, {:.1}% owner calendar)",
        share * 100.0,
        maintenance as f64 * 100.0 / REQUESTS as f64,
        calendar as f64 * 100.0 / REQUESTS as f64
    );
    assert!((0.20..=0.40).contains(&share), "{windows} windows: {:.1}% suppressed", share * 100.0);
    assert!(maintenance > 0 && calendar > 0);
    assert_eq!(p.run_plain(), suppressed);
    assert_eq!(p.run_cavra(), suppressed);
}

#[test]
fn same_decisions_with_500_windows() {
    check(500);
}

#[test]
fn same_decisions_with_5000_windows() {
    check(5_000);
}
