//! Route history (README, "Notification plan"): the stored route decisions, newest first,
//! filtered; and the latest stored plan of each schedule.

use crate::error::{AppError, Field};
use crate::records::{PlanList, RouteList};
use crate::store::{RouteFilter, StoreProvider, DEFAULT_LIMIT, MAX_LIMIT};

/// Which stored route decisions to list, as the caller gave them. Empty
/// text is "not given".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteQuery {
    /// Matches the route's owner or its escalation owner.
    pub owner: Option<String>,
    pub action: Option<String>,
    pub category: Option<String>,
    pub provider: Option<String>,
    pub schedule_id: Option<String>,
    /// RFC 3339; routes created at or after this time.
    pub since: Option<String>,
    /// RFC 3339; routes created before this time.
    pub until: Option<String>,
    /// RFC 3339; the view as of this instant: routes created after it are left out.
    pub at: Option<String>,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u64,
    pub offset: u64,
}

impl Default for RouteQuery {
    fn default() -> Self {
        RouteQuery {
            owner: None,
            action: None,
            category: None,
            provider: None,
            schedule_id: None,
            since: None,
            until: None,
            at: None,
            limit: u64::from(DEFAULT_LIMIT),
            offset: 0,
        }
    }
}

impl RouteQuery {
    /// Checks the limit, the offset and the times.
    pub fn filter(&self) -> Result<RouteFilter, AppError> {
        let limit = u32::try_from(self.limit).ok().filter(|l| (1..=MAX_LIMIT).contains(l));
        let Some(limit) = limit else {
            return Err(AppError::field(Field::named("limit"), format!("expected 1 to {MAX_LIMIT}, got {}", self.limit)));
        };
        if i64::try_from(self.offset).is_err() {
            return Err(AppError::field(Field::named("offset"), format!("too large: {}", self.offset)));
        }
        let time = |name: &'static str, value: &Option<String>| -> Result<Option<i64>, AppError> {
            match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                Some(text) => cavra_engine::time::parse_time(text).map(Some).map_err(|e| AppError::field(Field::named(name), e)),
                None => Ok(None),
            }
        };
        let (since, mut until) = (time("since", &self.since)?, time("until", &self.until)?);
        // As of `at`: created at or before it.
        if let Some(at) = time("at", &self.at)? {
            let bound = at.saturating_add(1);
            until = Some(until.map_or(bound, |u| u.min(bound)));
        }
        if let (Some(s), Some(u)) = (since, until) {
            if s > u {
                return Err(AppError::input("{@since} is later than {@until}"));
            }
        }
        Ok(RouteFilter {
            owner: self.owner.clone(),
            action: self.action.clone(),
            category: self.category.clone(),
            provider: self.provider.clone(),
            schedule_id: self.schedule_id.clone(),
            since,
            until,
            limit,
            offset: self.offset,
        })
    }
}

/// Stored route decisions, newest first. A store that does not exist yet has
/// no routes (reading creates nothing).
pub fn stored_routes(store: &dyn StoreProvider, query: &RouteQuery) -> Result<RouteList, AppError> {
    let filter = query.filter()?;
    let routes = match store.readable()? {
        Some(store) => store.routes(&filter)?,
        None => Vec::new(),
    };
    Ok(RouteList { count: routes.len(), routes })
}

/// The latest stored plan of each schedule made at or before `at` (RFC 3339; any time when `None`), by schedule id.
pub fn latest_plans(store: &dyn StoreProvider, at: Option<&str>) -> Result<PlanList, AppError> {
    let as_of = crate::documents::as_of(at)?;
    let plans = match store.readable()? {
        Some(store) => store.latest_plans(as_of)?,
        None => Vec::new(),
    };
    Ok(PlanList { count: plans.len(), plans })
}

/// A merged routing policy a plan used, by its id (`pol_...`), as JSON.
pub fn stored_policy(store: &dyn StoreProvider, policy_id: &str) -> Result<Option<serde_json::Value>, AppError> {
    let Some(store) = store.readable()? else { return Ok(None) };
    match store.policy(policy_id.trim())? {
        Some(record) => serde_json::from_str(&record.document).map(Some).map_err(|e| AppError::input(format!("stored policy {policy_id}: {e}"))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_validated_and_errors_name_the_field() {
        let ok = RouteQuery { since: Some("2026-05-21T21:00:00+02:00".into()), ..RouteQuery::default() };
        assert_eq!(ok.filter().ok().and_then(|f| f.since), cavra_engine::time::parse_time("2026-05-21T19:00:00Z").ok());
        let limit = RouteQuery { limit: u64::from(MAX_LIMIT) + 1, ..RouteQuery::default() }.filter().err().map(|e| e.to_string());
        assert_eq!(limit.as_deref(), Some("limit: expected 1 to 1000, got 1001"));
        assert!(RouteQuery { limit: 0, ..RouteQuery::default() }.filter().is_err());
        let huge = RouteQuery { limit: 1_000_000_000_000, ..RouteQuery::default() }.filter().err().map(|e| e.to_string());
        assert_eq!(huge.as_deref(), Some("limit: expected 1 to 1000, got 1000000000000"), "finding 18: a whole number out of range says the range");
        assert!(RouteQuery { until: Some("soon".into()), ..RouteQuery::default() }.filter().is_err());
        let order = RouteQuery { since: Some("2026-05-22T00:00:00Z".into()), until: Some("2026-05-21T00:00:00Z".into()), ..RouteQuery::default() };
        assert_eq!(order.filter().err().map(|e| e.to_string()).as_deref(), Some("since is later than until"));
    }
}
