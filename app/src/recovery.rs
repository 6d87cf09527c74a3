//! Connector recovery evidence (README, "Notification lifecycle"): when a
//! provider with failed deliveries delivers successfully again (by an
//! approved retry or a later delivery run), a recovery record is stored once.
//! Its id (`rcv_...`) hashes the provider and the first failure, so two
//! processes cannot record it twice.

use crate::documents::as_of;
use crate::error::AppError;
use crate::lifecycle::micros;
use crate::records::{content_hash, DeliveryAttempt, RecoveringAttempt, Recovery, RecoveryList, Retry};
use crate::store::{Store, StoreProvider, RECOVERY_KIND};
use std::collections::{BTreeSet, HashMap};

/// Records, once each, the recoveries of these providers: every run of
/// failed deliveries (final failed attempts) followed by a successful one.
/// Returns the recoveries stored by this call.
pub(crate) fn record_recoveries(store: &dyn Store, providers: &BTreeSet<String>, retry: Option<&Retry>) -> Result<Vec<Recovery>, AppError> {
    let mut stored = Vec::new();
    let mut approvals: Option<HashMap<String, String>> = None;
    for provider in providers {
        let mut failures: Vec<DeliveryAttempt> = Vec::new();
        for attempt in store.final_attempts(provider)? {
            if attempt.failed_for_good() {
                failures.push(attempt);
                continue;
            }
            if !attempt.record.is_delivered() || failures.is_empty() {
                continue;
            }
            let approval_id = match (&attempt.retry_id, retry) {
                (None, _) => None,
                (Some(id), Some(current)) if *id == current.retry_id => Some(current.approval_id.clone()),
                (Some(id), _) => {
                    if approvals.is_none() {
                        approvals = Some(store.retries(None)?.into_iter().map(|r| (r.retry_id, r.approval_id)).collect());
                    }
                    approvals.as_ref().and_then(|a| a.get(id).cloned())
                }
            };
            let recovery = recovery(provider, &failures, &attempt, approval_id);
            failures.clear();
            if store.save_recovery(&recovery)? != crate::store::SaveOutcome::AlreadyStored {
                stored.push(recovery);
            }
        }
    }
    Ok(stored)
}

/// The recovery a successful attempt makes after a run of failures.
fn recovery(provider: &str, failures: &[DeliveryAttempt], recovering: &DeliveryAttempt, approval_id: Option<String>) -> Recovery {
    let first = &failures[0];
    let last = &failures[failures.len() - 1];
    let mut notifications: Vec<String> = Vec::new();
    for failure in failures {
        if !notifications.contains(&failure.notification_id) {
            notifications.push(failure.notification_id.clone());
        }
    }
    let seconds = match (micros(&first.at), micros(&recovering.at)) {
        (Some(from), Some(to)) => (to - from) / 1_000_000,
        _ => 0,
    };
    Recovery {
        recovery_id: format!("rcv_{}", content_hash(&serde_json::json!({ "provider": provider, "first_failure": first.delivery_id }))),
        kind: RECOVERY_KIND.to_string(),
        provider: provider.to_string(),
        first_failure_at: first.at.clone(),
        last_failure_at: last.at.clone(),
        recovered_at: recovering.at.clone(),
        recovering_attempt: RecoveringAttempt { notification_id: recovering.notification_id.clone(), status_code: recovering.record.status_code },
        retry_id: recovering.retry_id.clone(),
        approval_id,
        notifications,
        time_to_recovery_seconds: seconds,
        recorded_at: None,
    }
}

/// The connector recoveries recorded at or before `at`, of one provider or all, newest first.
pub fn list_recoveries(store: &dyn StoreProvider, provider: Option<&str>, at: Option<&str>) -> Result<RecoveryList, AppError> {
    let as_of = as_of(at)?;
    let provider = provider.map(str::trim).filter(|p| !p.is_empty()).map(str::to_lowercase);
    let recoveries: Vec<Recovery> = match store.readable()? {
        Some(store) => store.recoveries(as_of)?.into_iter().filter(|r| provider.as_ref().is_none_or(|p| r.provider == *p)).collect(),
        None => Vec::new(),
    };
    Ok(RecoveryList { count: recoveries.len(), recoveries })
}
