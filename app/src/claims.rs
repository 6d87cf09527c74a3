//! Delivery claims (README, "Delivering notifications"): before a run sends
//! a notification it claims it in the store, for a lease, so that of two runs
//! (processes, or threads of one server) exactly one sends it. A heartbeat
//! renews the run's claims while its attempts run, so an attempt longer than
//! the lease is never taken over, and each claim is renewed again before each
//! of its attempts, so a run that stalled past its lease never sends what
//! another run took over; each claim is given up when the notification's last
//! attempt is recorded. A claim whose run died expires
//! after its lease and is taken over by the next run (or the API's sweeper).

use crate::error::{AppError, Field};
use crate::store::{wall_micros, Claim, Store, StoreError};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// The lease when none is given (`--claim-lease-secs`, `CAVRA_CLAIM_LEASE_SECS`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The heartbeat renews claims this often; a lease must be at least twice it.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// The longest lease accepted: a day.
pub const MAX_LEASE: Duration = Duration::from_secs(86_400);

/// A lease, checked: at least twice the heartbeat (else a claim could lapse
/// between two renewals while its attempt runs), at most a day.
pub fn checked_lease(lease: Duration) -> Result<Duration, AppError> {
    if lease < HEARTBEAT * 2 || lease > MAX_LEASE {
        return Err(AppError::field(
            Field::named("claim_lease_secs"),
            format!(
                "expected {} to {} seconds (at least twice the {} ms heartbeat), got {}",
                1,
                MAX_LEASE.as_secs(),
                HEARTBEAT.as_millis(),
                lease.as_secs_f64()
            ),
        ));
    }
    Ok(lease)
}

/// How often a run renews its claims: a third of the lease, at least the heartbeat.
fn renewal_interval(lease: Duration) -> Duration {
    (lease / 3).max(HEARTBEAT)
}

/// One run's claims.
pub(crate) struct Holder<'s> {
    id: String,
    lease: Duration,
    store: &'s dyn Store,
    held: Mutex<BTreeSet<String>>,
}

impl<'s> Holder<'s> {
    pub(crate) fn new(store: &'s dyn Store, lease: Duration) -> Holder<'s> {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        // Unique across processes (pid, start time) and threads (a counter).
        let id = format!("run-{}-{}-{}", std::process::id(), wall_micros(), RUNS.fetch_add(1, Ordering::Relaxed));
        Holder { id, lease, store, held: Mutex::new(BTreeSet::new()) }
    }

    fn expiry(&self) -> i64 {
        wall_micros().saturating_add(i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX))
    }

    fn held(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Claims a notification whose newest attempt the caller saw was `seen_attempt`.
    pub(crate) fn claim(&self, notification_id: &str, schedule_id: &str, seen_attempt: Option<&str>) -> Result<bool, StoreError> {
        let claim = Claim {
            notification_id: notification_id.to_string(),
            schedule_id: schedule_id.to_string(),
            holder: self.id.clone(),
            claimed_at: wall_micros(),
            expires_at: self.expiry(),
        };
        let taken = self.store.claim(&claim, seen_attempt)?;
        if taken {
            self.held().insert(notification_id.to_string());
        }
        Ok(taken)
    }

    /// Renews one claim before an attempt: whether it is still this run's.
    /// A store that cannot say counts as "no": the attempt waits for a run
    /// that can make sure (the claim expires and is taken over).
    pub(crate) fn renew(&self, notification_id: &str) -> bool {
        if !self.held().contains(notification_id) {
            return false;
        }
        let renewed = self.store.renew_claims(&self.id, &[notification_id.to_string()], self.expiry());
        let ours = matches!(renewed, Ok(1));
        if !ours {
            self.held().remove(notification_id);
        }
        ours
    }

    /// Gives up one claim: its last attempt is recorded.
    pub(crate) fn release(&self, notification_id: &str) -> Result<(), StoreError> {
        if self.held().remove(notification_id) {
            self.store.release_claim(&self.id, notification_id)?;
        }
        Ok(())
    }

    /// Runs `work` while a heartbeat renews the claims still held, then gives
    /// up whatever is left (a run that stopped early leaves nothing claimed).
    pub(crate) fn while_renewed<R>(&self, work: impl FnOnce() -> R) -> Result<R, StoreError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = renewal_interval(self.lease);
        let result = std::thread::scope(|scope| {
            let heartbeat = scope.spawn(move || -> Result<(), StoreError> {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let ids: Vec<String> = self.held().iter().cloned().collect();
                    if !ids.is_empty() {
                        self.store.renew_claims(&self.id, &ids, self.expiry())?;
                    }
                }
                Ok(())
            });
            let result = work();
            let _ = stop.send(());
            let renewed = heartbeat.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            renewed.map(|()| result)
        });
        let left: Vec<String> = self.held().iter().cloned().collect();
        for id in left {
            self.release(&id)?;
        }
        result
    }
}
