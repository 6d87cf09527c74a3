//! Two delivery processes at once against one store (hardening finding 1, on
//! both backends): each notification's idempotency key reaches the provider
//! once, and one success is recorded for it.

use crate::backend::Backend;
use crate::common::{deliver, T2};
use cavra_tests::provider::Provider;
use serde_json::Value as Json;
use std::collections::BTreeMap;

backend_tests!(two_concurrent_cli_deliveries_send_each_notification_once);

/// Each round a fresh store and provider.
const ROUNDS: usize = 4;

/// How often each item occurs.
fn tally(items: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
}

fn two_concurrent_cli_deliveries_send_each_notification_once(backend: &Backend) {
    for round in 0..ROUNDS {
        let scene = backend.sibling(&format!("round_{round}"));
        let provider = Provider::start(200);
        let config = provider.connector_config(scene.dir());
        let store = scene.store();
        let runs = std::thread::scope(|s| {
            let children: Vec<_> = (0..2).map(|_| s.spawn(|| deliver(scene.dir(), &config, &store, T2))).collect();
            children.into_iter().map(|c| c.join().expect("a delivery thread")).collect::<Vec<_>>()
        });
        let mut plans = Vec::new();
        for run in runs {
            assert_eq!(run.code, 0, "round {round}: {}", run.stderr);
            let result: Json = serde_json::from_str(&run.stdout).expect("delivery JSON");
            plans.push(result["plan_id"].as_str().unwrap_or_default().to_string());
        }
        let arrived = tally(provider.keys());
        assert_eq!(arrived.len(), 2, "round {round}: both teams notifications arrived: {arrived:?}");
        assert!(arrived.values().all(|&n| n == 1), "round {round}: a key arrived twice: {arrived:?}");
        plans.dedup();
        let opened = scene.open();
        let attempts = plans.iter().flat_map(|plan| opened.deliveries(plan).expect("deliveries"));
        let delivered = tally(attempts.filter(|a| a.record.is_delivered()).map(|a| a.notification_id));
        assert_eq!(delivered, arrived, "round {round}: one success recorded per notification, under the key it was sent with");
    }
}
