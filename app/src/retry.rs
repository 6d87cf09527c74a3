//! Approval-bound retries (README, "Notification lifecycle"). A notification
//! whose delivery failed is sent again only by a retry that names an approval
//! and its approver; each retry leaves an append-only execution record
//! (`rtr_...`), and the recoveries it shows are recorded (`recovery.rs`).

use crate::claims::{checked_lease, Holder};
use crate::deliver::{outgoing, Connectors, SendSettings};
use crate::documents::{as_of, clock};
use crate::error::{AppError, Field};
use crate::lifecycle::{self, micros};
use crate::packs::PackSource;
use crate::records::{content_hash, DeliveryAttempt, Recovery, RetriedNotification, Retry, RetryList};
use crate::recovery::record_recoveries;
use crate::safety::Screen;
use crate::store::StoreProvider;
use std::collections::BTreeSet;

/// The shortest and longest approval id and approver accepted, in characters.
pub const APPROVAL_TEXT: std::ops::RangeInclusive<usize> = 3..=128;

/// One approved retry.
#[derive(Clone, Debug)]
pub struct RetryRequest {
    pub approval_id: Option<String>,
    pub approved_by: Option<String>,
    /// Only this schedule's failed notifications.
    pub schedule_id: Option<String>,
    /// Only this provider's.
    pub provider: Option<String>,
    /// The clock; `None` is now.
    pub at: Option<String>,
    pub send: SendSettings,
}

/// What a retry did: its record (and the recoveries it showed), or why
/// there was nothing to do (`{"retried": false, "message"}`).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(untagged)]
pub enum RetryOutcome {
    Retried {
        #[serde(flatten)]
        retry: Retry,
        recoveries: Vec<Recovery>,
    },
    /// No notification matching the request is in `delivery_failed`; nothing was sent or stored.
    NothingToRetry { retried: bool, message: String },
}

/// Public-safe text of 3 to 128 characters, or an error naming the field.
fn approval_text(field: &'static str, value: Option<&str>) -> Result<String, AppError> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(AppError::field(Field::named(field), "a retry needs an approval: give the approval id and who approved it; nothing was sent"));
    }
    let length = value.chars().count();
    if !APPROVAL_TEXT.contains(&length) {
        return Err(AppError::field(Field::named(field), format!("expected {} to {} characters, got {length}", APPROVAL_TEXT.start(), APPROVAL_TEXT.end())));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::field(Field::named(field), "control characters are not allowed"));
    }
    Ok(value.to_string())
}

/// Sends the matching `delivery_failed` notifications again, under an approval.
pub fn retry(packs: &PackSource, store: &dyn StoreProvider, request: &RetryRequest, warn: &mut dyn FnMut(&str)) -> Result<RetryOutcome, AppError> {
    let approval_id = approval_text("approval_id", request.approval_id.as_deref())?;
    let approved_by = approval_text("approved_by", request.approved_by.as_deref())?;
    let approval = serde_json::json!({ "approval_id": approval_id, "approved_by": approved_by });
    Screen::load(packs)?.require_safe(&approval, || "the approval is not public-safe; nothing was sent".into())?;
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let (schedule_id, provider) = (given(&request.schedule_id), given(&request.provider).map(|p| p.to_lowercase()));
    let at_text = clock(request.at.as_deref())?;
    let at = micros(&at_text).ok_or_else(|| AppError::field(Field::named("at"), format!("not a time: {at_text}")))?;

    let writable = store.writable()?;
    let states = lifecycle::derive(packs, &writable.history(schedule_id.as_deref(), at)?, at, &lifecycle::Options::default())?;
    let failed: Vec<_> = states.entries.iter().filter(|e| e.state == "delivery_failed" && provider.as_ref().is_none_or(|p| e.route.provider == *p)).collect();
    if failed.is_empty() {
        let scope = match (&schedule_id, &provider) {
            (Some(s), Some(p)) => format!(" of schedule {s} on {p}"),
            (Some(s), None) => format!(" of schedule {s}"),
            (None, Some(p)) => format!(" on {p}"),
            (None, None) => String::new(),
        };
        return Ok(RetryOutcome::NothingToRetry {
            retried: false,
            message: format!("no notification{scope} is in delivery_failed as of {at_text}; nothing was sent or stored"),
        });
    }

    // The id names the approval, the instant and the notifications retried,
    // so it is known before the attempts that carry it.
    let ids: Vec<&str> = failed.iter().map(|e| e.id()).collect();
    let retry_id =
        format!("rtr_{}", content_hash(&serde_json::json!({ "approval_id": approval_id, "approved_by": approved_by, "at": at_text, "notifications": ids })));
    let providers: BTreeSet<String> = failed.iter().map(|e| e.route.provider.to_string()).collect();
    let connectors = Connectors::load(store, &request.send, &providers, warn)?;
    let holder = Holder::new(&*writable, checked_lease(request.send.claim_lease)?);
    let sent = connectors.send(&holder, &*writable, failed.iter().map(|e| outgoing(e, None)).collect(), &at_text, Some(&retry_id))?;
    let attempts = sent.attempts;
    // Another run took some of them since this one looked: they are not this retry's.
    let failed: Vec<_> = failed.into_iter().filter(|e| !sent.unclaimed.iter().any(|id| id == e.id())).collect();
    if failed.is_empty() {
        return Ok(RetryOutcome::NothingToRetry {
            retried: false,
            message: "another run is sending these notifications, or sent them since this retry looked; nothing was sent or stored".into(),
        });
    }

    let notifications: Vec<RetriedNotification> = failed
        .iter()
        .map(|e| {
            let mine: Vec<&DeliveryAttempt> = attempts.iter().filter(|a| a.notification_id == e.id()).collect();
            let last = mine.last();
            RetriedNotification {
                notification_id: e.id().to_string(),
                schedule_id: e.route.schedule_id.to_string(),
                owner: e.route.owner.to_string(),
                provider: e.route.provider.to_string(),
                outcome: last.map_or("failed", |a| a.record.outcome.as_str()).to_string(),
                attempts: u32::try_from(mine.len()).unwrap_or(u32::MAX),
                status_code: last.and_then(|a| a.record.status_code),
            }
        })
        .collect();
    let delivered_count = notifications.iter().filter(|n| n.outcome == "delivered").count();
    let retry = Retry {
        retry_id: retry_id.clone(),
        approval_id,
        approved_by,
        at: at_text,
        recorded_at: None,
        failed_count: notifications.len() - delivered_count,
        delivered_count,
        notifications,
    };
    writable.save_retry(&retry)?;
    let recovered: BTreeSet<String> = attempts.iter().filter(|a| a.record.is_delivered()).map(|a| a.record.provider.clone()).collect();
    let recoveries = record_recoveries(&*writable, &recovered, Some(&retry))?;
    Ok(RetryOutcome::Retried { retry, recoveries })
}

/// The retry records made at or before `at` (all when `None`), newest first.
pub fn list_retries(store: &dyn StoreProvider, at: Option<&str>) -> Result<RetryList, AppError> {
    let as_of = as_of(at)?;
    let retries = match store.readable()? {
        Some(store) => store.retries(as_of)?,
        None => Vec::new(),
    };
    Ok(RetryList { count: retries.len(), retries })
}
