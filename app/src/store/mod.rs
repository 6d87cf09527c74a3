//! Where plans, route decisions, acknowledgements, delivery attempts and
//! trends are kept: the [`Store`] trait, which takes and returns typed
//! records, and how an operation gets a store ([`StoreProvider`]): opened per
//! command from a path ([`StorePath`], the CLI), or opened once, lazily, and
//! shared ([`SharedStore`], the API). The trait is synchronous so that a
//! pooled server database can implement it; the API calls it on blocking
//! threads.

mod sqlite;

pub use sqlite::{SqliteStore, DEFAULT_LIMIT, DEFAULT_STORE, MAX_LIMIT, SCHEMA_VERSION};

use crate::records::{Acknowledgement, DeliveryAttempt, Plan, PolicyRecord, Recovery, Retry, RouteRecord, Trend};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What went wrong with the store; every message names the store file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the folder of the store {path}: {source}")]
    CreateFolder { path: String, source: std::io::Error },
    #[error("cannot open the store {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("cannot migrate the store {path} to schema version {version}: {source}")]
    Migrate { path: String, version: usize, source: rusqlite::Error },
    #[error("the store {path} has schema version {found}, newer than this build of cavra knows ({known})")]
    TooNew { path: String, found: i64, known: usize },
    #[error("cannot switch the store {path} to WAL mode (its journal mode stays {mode})")]
    NoWal { path: String, mode: String },
    #[error("cannot write the store {path}: {source}")]
    Write { path: String, source: rusqlite::Error },
    #[error("cannot read the store {path}: {source}")]
    Read { path: String, source: rusqlite::Error },
    #[error("cannot store the record in {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("the store {path} holds a document that cavra cannot read: {source}")]
    Corrupt { path: String, source: serde_json::Error },
}

/// The result of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The record was written (a plan with this many route decisions).
    Stored { routes: usize },
    /// A record with this id was already stored; nothing was written.
    AlreadyStored,
}

/// Which stored route decisions to list, validated: times in microseconds,
/// the limit within range. Empty text fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFilter {
    /// Matches the route's owner or its escalation owner.
    pub owner: Option<String>,
    pub action: Option<String>,
    pub category: Option<String>,
    pub provider: Option<String>,
    pub schedule_id: Option<String>,
    /// Routes created at or after this instant (microseconds since the epoch).
    pub since: Option<i64>,
    /// Routes created before this instant.
    pub until: Option<i64>,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
    pub offset: u64,
}

impl Default for RouteFilter {
    fn default() -> Self {
        RouteFilter { owner: None, action: None, category: None, provider: None, schedule_id: None, since: None, until: None, limit: DEFAULT_LIMIT, offset: 0 }
    }
}

/// One group of [`Store::suppressed_counts`].
#[derive(Debug, Clone, PartialEq)]
pub struct SuppressedCount {
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub schedule_id: String,
    pub count: u64,
}

/// The metadata kind under which trends are kept.
pub const TREND_KIND: &str = "go-backend-rollback-drill-routing-suppression-trend";
/// The metadata kind under which connector recoveries are kept.
pub const RECOVERY_KIND: &str = "go-backend-rollback-drill-connector-recovery";

/// A notification claimed for sending by one run (README, "Delivering
/// notifications"). Times are wall-clock microseconds: a lease is real time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub notification_id: String,
    pub schedule_id: String,
    /// Who holds it: one delivery run.
    pub holder: String,
    pub claimed_at: i64,
    pub expires_at: i64,
}

/// Everything recorded about notifications up to an instant: what the
/// notification lifecycle is derived from.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The newest route decision about each notification (and escalation).
    pub routes: Vec<RouteRecord>,
    /// Every delivery attempt, in the order they were made.
    pub attempts: Vec<DeliveryAttempt>,
    /// Every acknowledgement, newest first.
    pub acknowledgements: Vec<Acknowledgement>,
    /// Per schedule, the time of its newest healthy plan (microseconds).
    pub healthy_plans: Vec<(String, i64)>,
}

pub trait Store: Send + Sync {
    /// Stores the plan and all its route decisions in one transaction.
    fn save_plan(&self, plan: &Plan) -> Result<SaveOutcome, StoreError> {
        let mut outcomes = self.save_plans(std::slice::from_ref(plan), &[])?;
        Ok(outcomes.pop().unwrap_or(SaveOutcome::AlreadyStored))
    }
    /// Stores many plans, and the policies they refer to (each once), in
    /// one transaction: all of them or, on an error, none.
    fn save_plans(&self, plans: &[Plan], policies: &[PolicyRecord]) -> Result<Vec<SaveOutcome>, StoreError>;
    /// A stored policy by its id.
    fn policy(&self, policy_id: &str) -> Result<Option<PolicyRecord>, StoreError>;
    /// Adds route decisions to a stored plan (the escalations a delivery run decides).
    fn save_routes(&self, routes: &[RouteRecord]) -> Result<SaveOutcome, StoreError>;
    /// What happened to the notifications of a schedule (or of all) up to `as_of` (microseconds).
    fn history(&self, schedule_id: Option<&str>, as_of: i64) -> Result<History, StoreError>;
    /// Stored route decisions, newest first.
    fn routes(&self, filter: &RouteFilter) -> Result<Vec<RouteRecord>, StoreError>;
    /// Stores one acknowledgement (append-only, one transaction); an `ack_id`
    /// already stored is left as it is.
    fn save_acknowledgement(&self, ack: &Acknowledgement) -> Result<SaveOutcome, StoreError>;
    /// The acknowledgements of a schedule, newest first.
    fn acknowledgements(&self, schedule_id: &str) -> Result<Vec<Acknowledgement>, StoreError>;
    /// The latest stored plan of each schedule (greatest `generated_at`, then
    /// `plan_id`) made at or before `as_of`, ordered by `schedule_id`.
    fn latest_plans(&self, as_of: Option<i64>) -> Result<Vec<Plan>, StoreError>;
    /// Keeps a trend as metadata of kind [`TREND_KIND`] (append-only).
    fn save_trend(&self, trend: &Trend) -> Result<SaveOutcome, StoreError>;
    /// Suppressed route decisions counted per (category, owner, provider,
    /// schedule), for the filter's owner (or escalation owner), provider and schedule.
    fn suppressed_counts(&self, filter: &RouteFilter) -> Result<Vec<SuppressedCount>, StoreError>;
    /// Stores one delivery attempt (its own transaction); a `delivery_id`
    /// already stored is left as it is.
    fn save_delivery(&self, attempt: &DeliveryAttempt) -> Result<SaveOutcome, StoreError>;
    /// The delivery attempts of a plan, oldest first.
    fn deliveries(&self, plan_id: &str) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// Claims a notification for `claim.holder` until `claim.expires_at`
    /// (wall clock), in one write transaction: only when no successful
    /// delivery is recorded for it, its newest recorded attempt is
    /// `seen_attempt` (nobody attempted it since the caller looked), and no
    /// other holder's claim is still live (an expired one is taken over).
    fn claim(&self, claim: &Claim, seen_attempt: Option<&str>) -> Result<bool, StoreError>;
    /// Extends the holder's claims (the heartbeat while attempts run).
    fn renew_claims(&self, holder: &str, notification_ids: &[String], expires_at: i64) -> Result<(), StoreError>;
    /// Gives a claim up (its last attempt is recorded).
    fn release_claim(&self, holder: &str, notification_id: &str) -> Result<(), StoreError>;
    /// Claims whose lease ran out at or before `now` (wall clock): their holder died.
    fn expired_claims(&self, now: i64) -> Result<Vec<Claim>, StoreError>;
    /// A provider's last attempts per notification and run (`final`), oldest first.
    fn final_attempts(&self, provider: &str) -> Result<Vec<DeliveryAttempt>, StoreError>;
    /// Stores an approved retry's execution record (append-only).
    fn save_retry(&self, retry: &Retry) -> Result<SaveOutcome, StoreError>;
    /// Retry records made at or before `as_of`, newest first.
    fn retries(&self, as_of: Option<i64>) -> Result<Vec<Retry>, StoreError>;
    /// Keeps a connector recovery as metadata of kind [`RECOVERY_KIND`]; a
    /// `recovery_id` already stored is left as it is (recorded once).
    fn save_recovery(&self, recovery: &Recovery) -> Result<SaveOutcome, StoreError>;
    /// Recoveries recorded at or before `as_of`, newest first.
    fn recoveries(&self, as_of: Option<i64>) -> Result<Vec<Recovery>, StoreError>;
}

/// The wall clock as RFC 3339 UTC, for `recorded_at`.
pub fn wall_clock() -> String {
    cavra_engine::time::format_time(wall_micros())
}

/// The wall clock in microseconds since the epoch (`recorded_at`, claim leases).
pub fn wall_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// How an operation gets its store.
pub trait StoreProvider: Send + Sync {
    /// The store to write, opened (and created) when needed.
    fn writable(&self) -> Result<Arc<dyn Store>, StoreError>;
    /// The store to read; `None` when there is none yet (reading creates nothing).
    fn readable(&self) -> Result<Option<Arc<dyn Store>>, StoreError>;
    /// The folder beside the store, for files that go with it (the outbox).
    fn folder(&self) -> PathBuf;
}

/// The folder of a store file.
fn folder_of(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// A store file opened for each operation (one command, one operation).
#[derive(Clone, Debug)]
pub struct StorePath(pub PathBuf);

impl StorePath {
    /// `--store` / `CAVRA_STORE`, else [`DEFAULT_STORE`]; an empty path is "not given".
    pub fn or_default(path: Option<&Path>) -> StorePath {
        StorePath(path.filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_STORE)))
    }
}

impl StoreProvider for StorePath {
    fn writable(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(SqliteStore::open(&self.0)?))
    }

    fn readable(&self) -> Result<Option<Arc<dyn Store>>, StoreError> {
        if !self.0.exists() {
            return Ok(None);
        }
        // A store this process may not write (a read-only file or mount)
        // still answers reads: open it read-only then.
        match SqliteStore::open(&self.0) {
            Ok(store) => Ok(Some(Arc::new(store))),
            Err(writable) => match SqliteStore::open_read_only(&self.0) {
                Ok(store) => Ok(Some(Arc::new(store))),
                Err(_) => Err(writable),
            },
        }
    }

    fn folder(&self) -> PathBuf {
        folder_of(&self.0)
    }
}

/// One store for a long-running process, opened on first use. When it
/// cannot be opened, each use says why and the next one tries again, so a
/// server starts, and recovers, whatever state its store is in.
pub struct SharedStore {
    path: PathBuf,
    opened: Mutex<Option<Arc<SqliteStore>>>,
}

impl SharedStore {
    pub fn new(path: PathBuf) -> SharedStore {
        SharedStore { path, opened: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store, opening it if it is not open yet.
    pub fn get(&self) -> Result<Arc<SqliteStore>, StoreError> {
        let mut opened = self.opened.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(store) = opened.as_ref() {
            return Ok(store.clone());
        }
        let store = Arc::new(SqliteStore::open(&self.path)?);
        *opened = Some(store.clone());
        Ok(store)
    }
}

impl StoreProvider for SharedStore {
    fn writable(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(self.get()?)
    }

    fn readable(&self) -> Result<Option<Arc<dyn Store>>, StoreError> {
        self.writable().map(Some)
    }

    fn folder(&self) -> PathBuf {
        folder_of(&self.path)
    }
}
