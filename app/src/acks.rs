//! Acknowledgements of delivered rollback-drill notifications: validated,
//! screened for public safety, stored append-only, listed per schedule.

use crate::documents::{as_of, clock};
use crate::error::{AppError, Field};
use crate::lifecycle::{self, micros};

use crate::packs::PackSource;
use crate::records::{Acknowledgement, AcknowledgementList};
use crate::safety::Screen;
use crate::store::StoreProvider;

pub const ACK_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-notification-acknowledgement.v1";
/// The states an acknowledgement may record.
pub const ACK_STATES: &[&str] = &["acknowledged", "dismissed", "escalated", "resolved"];
/// The longest free text accepted, in characters.
pub const MAX_TEXT: usize = 500;

/// One acknowledgement to record.
#[derive(Clone, Debug, Default)]
pub struct AckRequest {
    pub schedule_id: String,
    pub provider: String,
    pub acknowledged_by: String,
    /// acknowledged (the default), dismissed, escalated or resolved.
    pub acknowledgement_state: Option<String>,
    pub plan_id: Option<String>,
    pub external_ref: Option<String>,
    pub notes: Option<String>,
    /// Exactly this notification (`ntf_...`).
    pub notification_id: Option<String>,
    /// The open notifications of this owner (on the schedule and provider).
    pub owner: Option<String>,
    /// The clock; `None` is now.
    pub at: Option<String>,
}

fn required(field: Field, value: &str) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::field(field, "a value is required"));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(AppError::field(field, format!("at most {MAX_TEXT} characters")));
    }
    Ok(value.to_string())
}

fn name(field: Field, value: &str) -> Result<String, AppError> {
    let value = required(field.clone(), value)?;
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(AppError::field(field, format!("expected letters, digits, `_`, `-` or `.`, got {value:?}")));
    }
    Ok(value)
}

fn optional(field: Field, value: &Option<String>) -> Result<Option<String>, AppError> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => required(field, v).map(Some),
        None => Ok(None),
    }
}

/// The acknowledgement state, checked (trimmed, any case).
pub fn ack_state(given: Option<&str>) -> Result<String, AppError> {
    let given = given.unwrap_or("acknowledged");
    let state = given.trim().to_lowercase();
    if ACK_STATES.contains(&state.as_str()) {
        Ok(state)
    } else {
        Err(AppError::field(Field::named("acknowledgement_state"), format!("expected one of {}, got {given:?}", ACK_STATES.join(", "))))
    }
}

/// Validates, screens and stores one acknowledgement; nothing unsafe is
/// stored. It answers the notifications it names, resolved now (README,
/// "Notification lifecycle"): with `notification_id` exactly that one; with
/// `owner`, the open notifications of the schedule, provider and owner; with
/// neither, every open notification of the schedule and provider delivered
/// at or before it.
pub fn acknowledge(packs: &PackSource, store: &dyn StoreProvider, request: &AckRequest) -> Result<Acknowledgement, AppError> {
    let schedule_id = name(Field::positional("schedule_id"), &request.schedule_id)?;
    let provider = name(Field::named("provider"), &request.provider)?.to_lowercase();
    let acknowledged_by = required(Field::named("acknowledged_by"), &request.acknowledged_by)?;
    let state = ack_state(request.acknowledgement_state.as_deref())?;
    let plan_id = match optional(Field::named("plan_id"), &request.plan_id)? {
        Some(p) => Some(name(Field::named("plan_id"), &p)?),
        None => None,
    };
    let external_ref = optional(Field::named("external_ref"), &request.external_ref)?;
    let notes = optional(Field::named("notes"), &request.notes)?;
    let notification_id = match optional(Field::named("notification_id"), &request.notification_id)? {
        Some(n) => Some(name(Field::named("notification_id"), &n)?),
        None => None,
    };
    let owner = match optional(Field::named("owner"), &request.owner)? {
        Some(o) => Some(name(Field::named("owner"), &o)?),
        None => None,
    };
    let now = clock(request.at.as_deref())?;
    let at = micros(&now).ok_or_else(|| AppError::field(Field::named("at"), format!("not a time: {now}")))?;
    let writable = store.writable()?;
    let states = lifecycle::derive(packs, &writable.history(Some(&schedule_id), at)?, at, &lifecycle::Options::default())?;
    let answered: Vec<String> = match &notification_id {
        Some(id) => {
            let entry = states
                .get(id)
                .filter(|e| e.route.schedule_id == schedule_id)
                .ok_or_else(|| AppError::field(Field::named("notification_id"), format!("schedule {schedule_id} has no notification {id} (as of {now})")))?;
            if entry.route.provider != provider {
                return Err(AppError::field(Field::named("provider"), format!("notification {id} went to {}, not {provider}", entry.route.provider)));
            }
            vec![id.clone()]
        }
        None => states
            .open()
            .filter(|e| e.route.schedule_id == schedule_id && e.route.provider == provider)
            .filter(|e| owner.as_ref().is_none_or(|o| e.route.owner == *o))
            .filter(|e| owner.is_some() || e.delivered_at.is_some_and(|d| d <= at))
            .map(|e| e.id().to_string())
            .collect(),
    };

    let mut ack = Acknowledgement {
        schema_version: ACK_SCHEMA.to_string(),
        schedule_id,
        provider,
        acknowledged_by,
        acknowledgement_state: state,
        plan_id,
        external_ref,
        notes,
        created_at: now,
        notification_id,
        owner,
        notification_ids: Some(answered),
        ack_id: String::new(),
        recorded_at: None,
    };
    let document = serde_json::to_value(&ack).map_err(|e| AppError::input(e.to_string()))?;
    Screen::load(packs)?.require_safe(&document, || "the acknowledgement is not public-safe; nothing was stored".into())?;
    ack.ack_id = format!("ack_{}", crate::records::content_hash(&ack));
    writable.save_acknowledgement(&ack)?;
    Ok(ack)
}

/// The stored acknowledgements of a schedule made at or before `at` (all when `None`), newest first.
pub fn list_acknowledgements(store: &dyn StoreProvider, schedule_id: &str, at: Option<&str>) -> Result<AcknowledgementList, AppError> {
    let schedule_id = name(Field::positional("schedule_id"), schedule_id)?;
    let as_of = as_of(at)?;
    // Reading does not create a store.
    let mut acks = match store.readable()? {
        Some(store) => store.acknowledgements(&schedule_id)?,
        None => Vec::new(),
    };
    if let Some(as_of) = as_of {
        acks.retain(|a| micros(&a.created_at).is_some_and(|t| t <= as_of));
    }
    Ok(AcknowledgementList { schedule_id, count: acks.len(), acknowledgements: acks })
}
