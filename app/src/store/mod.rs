//! Where plans, route decisions, acknowledgements, delivery attempts and
//! trends are kept: the [`Store`] trait, which takes and returns typed
//! records; its two backends, the embedded SQLite file ([`SqliteStore`]) and
//! PostgreSQL shared by several instances ([`PostgresStore`]), chosen by
//! [`StoreLocation`]; and how an operation gets a store ([`StoreProvider`]):
//! opened per command ([`StoreLocation`] itself, the CLI), or opened once,
//! lazily, and shared ([`SharedStore`], the API). The trait is synchronous;
//! the API calls it on blocking threads.

mod plan_routes;
mod postgres;
mod postgres_tls;
mod postgres_url;
mod route_columns;
mod sqlite;

pub use postgres::{routes_query as postgres_routes_query, PostgresOptions, PostgresStore, POSTGRES_SCHEMA_VERSION};
pub use postgres_url::{is_postgres_url, PostgresUrl};
pub use sqlite::{SqliteStore, DEFAULT_LIMIT, DEFAULT_STORE, MAX_LIMIT, SCHEMA_VERSION};

use crate::records::{Acknowledgement, DeliveryAttempt, Plan, PolicyRecord, Recovery, Retry, RouteRecord, Trend};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What went wrong with the store. Every message names the store: a SQLite
/// file by its path, a PostgreSQL database as `postgres://…/DBNAME`, never
/// with the connection's user, password or host.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the folder of the store {path}: {source}")]
    CreateFolder { path: String, source: std::io::Error },
    #[error("cannot open the store {path}: {source}")]
    Open { path: String, source: Cause },
    #[error("cannot reach the store {path}: {source}")]
    Unavailable { path: String, source: Cause },
    #[error("cannot migrate the store {path} to schema version {version}: {source}")]
    Migrate { path: String, version: usize, source: Cause },
    #[error("the store {path} has schema version {found}, newer than this build of cavra knows ({known}); it is left untouched")]
    TooNew { path: String, found: i64, known: usize },
    #[error("cannot switch the store {path} to WAL mode (its journal mode stays {mode})")]
    NoWal { path: String, mode: String },
    #[error("cannot write the store {path}: {source}")]
    Write { path: String, source: Cause },
    #[error("cannot read the store {path}: {source}")]
    Read { path: String, source: Cause },
    #[error("cannot store the record in {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("the store {path} holds a document that cavra cannot read: {source}")]
    Corrupt { path: String, source: serde_json::Error },
}

/// What a store's database said went wrong, as text. A PostgreSQL cause is
/// made only through its backend, which strips the connection's user,
/// password and host from it first.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Cause(String);

impl From<rusqlite::Error> for Cause {
    fn from(e: rusqlite::Error) -> Cause {
        Cause(e.to_string())
    }
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
    /// [`Store::history`] of several schedules together (a batch of plans).
    fn histories(&self, schedule_ids: &[&str], as_of: i64) -> Result<History, StoreError> {
        let mut all = History::default();
        for schedule_id in schedule_ids {
            let one = self.history(Some(schedule_id), as_of)?;
            all.routes.extend(one.routes);
            all.attempts.extend(one.attempts);
            all.acknowledgements.extend(one.acknowledgements);
            all.healthy_plans.extend(one.healthy_plans);
        }
        Ok(all)
    }
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
    /// Extends the holder's claims (the heartbeat while attempts run, and
    /// before each attempt); returns how many of them the holder still had.
    fn renew_claims(&self, holder: &str, notification_ids: &[String], expires_at: i64) -> Result<usize, StoreError>;
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
    /// Whether the store answers now (`/readyz`): a server database may
    /// have gone away since it was opened.
    fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Plans read back row by row (a plan's id and document, then one of its
/// routes per row), each given its routes back when its row kept
/// them apart (see `SqliteStore::save_plans`): both backends read plans so.
pub(crate) struct PlanAssembly<'p> {
    /// How errors name the store.
    path: &'p str,
    plans: Vec<Plan>,
    /// The id of the plan being read, and its routes read so far.
    current: Option<(String, Vec<RouteRecord>)>,
}

impl<'p> PlanAssembly<'p> {
    pub(crate) fn new(path: &'p str) -> PlanAssembly<'p> {
        PlanAssembly { path, plans: Vec::new(), current: None }
    }

    /// One row: a plan's id and document, and one of its routes (none for
    /// a plan whose document holds its routes, or that has none).
    pub(crate) fn row(&mut self, plan_id: String, plan: &str, route: Option<RouteRecord>) -> Result<(), StoreError> {
        if self.current.as_ref().is_none_or(|(id, _)| *id != plan_id) {
            self.close();
            let path = self.path;
            self.plans.push(serde_json::from_str(plan).map_err(|source| StoreError::Corrupt { path: path.to_string(), source })?);
            self.current = Some((plan_id, Vec::new()));
        }
        if let (Some(route), Some((_, routes))) = (route, &mut self.current) {
            routes.push(route);
        }
        Ok(())
    }

    /// Gives the plan being read the routes read for it.
    fn close(&mut self) {
        if let (Some((_, routes)), Some(plan)) = (self.current.take(), self.plans.last_mut()) {
            if !routes.is_empty() {
                plan.restore_routes(routes);
            }
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Plan> {
        self.close();
        self.plans
    }
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

/// Where the store is: `--store` / `CAVRA_STORE`, a file path (SQLite) or a
/// `postgres://` / `postgresql://` URL. Its `Debug` shows no credentials.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(PostgresUrl, PostgresOptions),
}

impl StoreLocation {
    /// `--store` / `CAVRA_STORE`, else [`DEFAULT_STORE`]; an empty value is "not given".
    pub fn or_default(given: Option<&Path>) -> StoreLocation {
        StoreLocation::with_options(given, PostgresOptions::default())
    }

    /// As [`StoreLocation::or_default`], with the pool settings a server was given.
    pub fn with_options(given: Option<&Path>, options: PostgresOptions) -> StoreLocation {
        let given = given.filter(|p| !p.as_os_str().is_empty());
        match given.and_then(Path::to_str) {
            Some(text) if is_postgres_url(text) => StoreLocation::Postgres(PostgresUrl::new(text), options),
            _ => StoreLocation::Sqlite(given.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(DEFAULT_STORE))),
        }
    }

    /// How messages and logs name the store: the file's path, or `postgres://…/DBNAME`.
    pub fn shown(&self) -> String {
        match self {
            StoreLocation::Sqlite(path) => path.display().to_string(),
            StoreLocation::Postgres(url, _) => url.shown(),
        }
    }

    /// Opens (creating and migrating it when needed) the store.
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreLocation::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
            StoreLocation::Postgres(url, options) => Arc::new(PostgresStore::open(url, options)?),
        })
    }
}

/// A store opened for each operation (one command, one operation).
impl StoreProvider for StoreLocation {
    fn writable(&self) -> Result<Arc<dyn Store>, StoreError> {
        self.open()
    }

    fn readable(&self) -> Result<Option<Arc<dyn Store>>, StoreError> {
        let StoreLocation::Sqlite(path) = self else { return self.open().map(Some) };
        if !path.exists() {
            return Ok(None);
        }
        // A store this process may not write (a read-only file or mount)
        // still answers reads: open it read-only then.
        match SqliteStore::open(path) {
            Ok(store) => Ok(Some(Arc::new(store))),
            Err(writable) => match SqliteStore::open_read_only(path) {
                Ok(store) => Ok(Some(Arc::new(store))),
                Err(_) => Err(writable),
            },
        }
    }

    /// Beside a SQLite file; for a database server, the default store's folder.
    fn folder(&self) -> PathBuf {
        match self {
            StoreLocation::Sqlite(path) => folder_of(path),
            StoreLocation::Postgres(..) => folder_of(Path::new(DEFAULT_STORE)),
        }
    }
}

/// One store for a long-running process, opened on first use. When it
/// cannot be opened, each use says why and the next one tries again, so a
/// server starts, and recovers, whatever state its store is in.
pub struct SharedStore {
    location: StoreLocation,
    opened: Mutex<Option<Arc<dyn Store>>>,
}

impl SharedStore {
    pub fn new(location: StoreLocation) -> SharedStore {
        SharedStore { location, opened: Mutex::new(None) }
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The store, opening it if it is not open yet.
    pub fn get(&self) -> Result<Arc<dyn Store>, StoreError> {
        let opened = || self.opened.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(store) = opened().as_ref() {
            return Ok(store.clone());
        }
        // Opened without the lock held: while a database server is down,
        // each request waits its own connect timeout, not also those of the
        // requests queued before it. Of two opened at once, the first kept wins.
        let store = self.location.open()?;
        Ok(opened().get_or_insert(store).clone())
    }
}

impl StoreProvider for SharedStore {
    fn writable(&self) -> Result<Arc<dyn Store>, StoreError> {
        self.get()
    }

    fn readable(&self) -> Result<Option<Arc<dyn Store>>, StoreError> {
        self.writable().map(Some)
    }

    fn folder(&self) -> PathBuf {
        self.location.folder()
    }
}
