//! The claim sweeper (README, "Delivering notifications"): every half lease,
//! it takes over the delivery claims whose run died (their lease ran out)
//! and sends those notifications that still wait, so a notification a
//! crashed instance claimed is delivered without waiting for the next
//! delivery request for its schedule.

use crate::state::State;
use std::sync::Arc;

/// Starts the sweeper on the server's runtime; it stops with the runtime.
pub(crate) fn spawn(state: Arc<State>) {
    let every = state.settings.claim_lease / 2;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate: a restarted server takes over at once.
        loop {
            ticks.tick().await;
            let state = state.clone();
            let swept = tokio::task::spawn_blocking(move || sweep(&state)).await;
            if swept.is_err() {
                // A panic in one sweep must not end the sweeper.
                continue;
            }
        }
    });
}

/// One sweep: a store that cannot be opened now is tried again next time.
/// The sweep is also how the log learns that the store went away (or has a
/// newer schema) and that it came back: each change is one line.
fn sweep(state: &State) {
    let mut warn = |message: &str| state.log(&[("event", "sweeper_warning".into()), ("warning", message.into())]);
    match cavra_app::deliver::take_over_expired(&state.pack_source(), &state.store, &state.send_settings(), &mut warn) {
        Ok(attempts) if !attempts.is_empty() => {
            state.metrics.deliveries(attempts.iter().filter(|a| a.record.is_final).map(|a| (a.record.provider.as_str(), a.record.outcome.as_str())));
            state.log(&[("event", "claims_taken_over".into()), ("attempts", attempts.len().into())]);
        }
        Ok(_) => {}
        Err(cavra_app::AppError::Store(e)) => {
            state.store_trouble(Some(&e));
            return;
        }
        Err(e) => state.log(&[("event", "sweeper_failed".into()), ("error", e.to_string().into())]),
    }
    state.store_trouble(None);
}
