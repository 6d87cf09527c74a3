//! The embedded store: every notification plan and its route decisions,
//! acknowledgements, delivery attempts and metadata, append-only, in one
//! SQLite file (bundled SQLite, WAL mode).
//!
//! - `save_plans` writes plans and all their routes in one transaction; a plan
//!   whose `plan_id` is already stored is left as it is ([`SaveOutcome::AlreadyStored`]).
//!   Nothing is ever updated or deleted.
//! - `routes` lists stored route decisions, newest first (`created_at` DESC,
//!   then `route_id`), filtered by a [`RouteFilter`].
//! - Times (`plans.generated_at`, `route_decisions.created_at`) are stored as
//!   integer microseconds since the Unix epoch (UTC), so comparisons are exact
//!   whatever offset the text was written with; the full JSON document of each
//!   record is kept in `document`, except a plan's routes, which only their
//!   own rows hold (schema 7; reading a plan puts them back), and a route's,
//!   whose fields are its row's columns (schema 8; rows written before keep
//!   their documents). From schema 9 a plan keeps its routes in its own row
//!   (`plan_routes.rs`), with a row per person and per category they name;
//!   every read of routes reads both layouts.
//! - The schema is versioned in code (`PRAGMA user_version`); [`MIGRATIONS`]
//!   are applied in order on open, each in its own transaction.
//! - One connection, behind a mutex, serves every thread of a process: SQLite
//!   writes one transaction at a time anyway, and a long-running server keeps
//!   one handle instead of opening the file per request.

use super::{wall_micros, Claim, History, RouteFilter, SaveOutcome, Store, StoreError, SuppressedCount, RECOVERY_KIND, TREND_KIND};

use super::plan_routes;
use super::route_columns::{created_at_text, select_list, RouteColumns};
use crate::records::{notification_id, Acknowledgement, AlertLevel, DeliveryAttempt, Minutes, Plan, PolicyRecord, Recovery, Retry, RouteRecord, Text, Trend};
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The default store, relative to the working directory (env `CAVRA_STORE`).
pub const DEFAULT_STORE: &str = ".cavra/cavra.db";
/// Rows returned by a route query when no limit is given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest limit a route query accepts.
pub const MAX_LIMIT: u32 = 1000;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The page size of a store this build creates (bytes).
const PAGE_SIZE: i64 = 16384;

/// Schema migrations; migration `i` brings the store to `user_version = i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: plans and their route decisions.
    "CREATE TABLE plans (
         plan_id TEXT PRIMARY KEY,
         schedule_id TEXT NOT NULL,
         generated_at INTEGER NOT NULL,
         status TEXT NOT NULL,
         alert_level TEXT NOT NULL,
         document TEXT NOT NULL
     );
     CREATE TABLE route_decisions (
         route_id TEXT PRIMARY KEY,
         plan_id TEXT NOT NULL REFERENCES plans(plan_id),
         schedule_id TEXT NOT NULL,
         owner TEXT NOT NULL,
         escalation_owner TEXT NOT NULL,
         provider TEXT NOT NULL,
         action TEXT NOT NULL,
         category TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         document TEXT NOT NULL
     );
     CREATE INDEX route_decisions_owner ON route_decisions (owner, created_at);
     CREATE INDEX route_decisions_escalation_owner ON route_decisions (escalation_owner, created_at);
     CREATE INDEX route_decisions_schedule ON route_decisions (schedule_id, created_at);
     CREATE INDEX route_decisions_provider ON route_decisions (provider, created_at);
     CREATE INDEX route_decisions_action_category ON route_decisions (action, category, created_at);
     CREATE INDEX route_decisions_plan ON route_decisions (plan_id);",
    // 2: acknowledgements of delivered routes, and stored metadata documents.
    "CREATE TABLE acknowledgements (
         ack_id TEXT PRIMARY KEY,
         schedule_id TEXT NOT NULL,
         provider TEXT NOT NULL,
         acknowledged_by TEXT NOT NULL,
         acknowledgement_state TEXT NOT NULL,
         plan_id TEXT,
         external_ref TEXT,
         notes TEXT,
         created_at INTEGER NOT NULL,
         document TEXT NOT NULL
     );
     CREATE INDEX acknowledgements_schedule_provider ON acknowledgements (schedule_id, provider, created_at);
     CREATE TABLE metadata (
         metadata_id TEXT PRIMARY KEY,
         kind TEXT NOT NULL,
         created_at INTEGER NOT NULL,
         document TEXT NOT NULL
     );
     CREATE INDEX metadata_kind ON metadata (kind, created_at);",
    // 3: indexes in the order route history is read (newest first, then
    // route_id), so a filtered page is one index range scan, not a sort of
    // every match (measured: 2.4 s -> under 1 ms at 1,000,000 routes).
    "DROP INDEX route_decisions_owner;
     DROP INDEX route_decisions_escalation_owner;
     DROP INDEX route_decisions_schedule;
     DROP INDEX route_decisions_provider;
     DROP INDEX route_decisions_action_category;
     CREATE INDEX route_decisions_recent ON route_decisions (created_at DESC, route_id);
     CREATE INDEX route_decisions_owner ON route_decisions (owner, created_at DESC, route_id);
     CREATE INDEX route_decisions_escalation_owner ON route_decisions (escalation_owner, created_at DESC, route_id);
     CREATE INDEX route_decisions_schedule ON route_decisions (schedule_id, created_at DESC, route_id);
     CREATE INDEX route_decisions_provider ON route_decisions (provider, created_at DESC, route_id);
     CREATE INDEX route_decisions_action_category ON route_decisions (action, category, created_at DESC, route_id);",
    // 4: every delivery attempt, one row each, written as it completes, so a
    // crash between attempts leaves the earlier ones. `notification_key`
    // names the notification across re-runs (schedule, owner, provider, alert
    // level, due time): a re-run skips keys already delivered.
    "CREATE TABLE deliveries (
         delivery_id TEXT PRIMARY KEY,
         route_id TEXT NOT NULL,
         plan_id TEXT NOT NULL,
         schedule_id TEXT NOT NULL,
         provider TEXT NOT NULL,
         notification_key TEXT NOT NULL,
         attempt INTEGER NOT NULL,
         status_code INTEGER,
         outcome TEXT NOT NULL,
         started_at INTEGER NOT NULL,
         completed_at INTEGER NOT NULL,
         document TEXT NOT NULL
     );
     CREATE INDEX deliveries_notification ON deliveries (notification_key, outcome);
     CREATE INDEX deliveries_plan ON deliveries (plan_id, completed_at);",
    // 5: the notification lifecycle. Route decisions name their notification
    // (`ntf_...`, escalations too); attempts carry the logical instant of
    // their run (`at`) beside the wall clock they were written at
    // (`recorded_at`); merged policies are kept once each; approved retries
    // are recorded. Rows written before get their ids and times from
    // [`backfill_lifecycle`], in the same transaction.
    "ALTER TABLE plans ADD COLUMN policy_id TEXT;
     ALTER TABLE plans ADD COLUMN healthy INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE plans ADD COLUMN recorded_at INTEGER;
     CREATE INDEX plans_healthy ON plans (schedule_id, generated_at) WHERE healthy = 1;
     ALTER TABLE route_decisions ADD COLUMN notification_id TEXT;
     ALTER TABLE route_decisions ADD COLUMN escalates TEXT;
     ALTER TABLE route_decisions ADD COLUMN recorded_at INTEGER;
     CREATE INDEX route_decisions_notification ON route_decisions (notification_id, created_at DESC, route_id) WHERE notification_id IS NOT NULL;
     ALTER TABLE deliveries ADD COLUMN notification_id TEXT;
     ALTER TABLE deliveries ADD COLUMN at INTEGER;
     ALTER TABLE deliveries ADD COLUMN is_final INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE deliveries ADD COLUMN recorded_at INTEGER;
     CREATE INDEX deliveries_schedule_at ON deliveries (schedule_id, at);
     CREATE INDEX deliveries_provider_final ON deliveries (provider, is_final, at);
     ALTER TABLE acknowledgements ADD COLUMN recorded_at INTEGER;
     CREATE TABLE policies (
         policy_id TEXT PRIMARY KEY,
         document TEXT NOT NULL
     );
     CREATE TABLE retries (
         retry_id TEXT PRIMARY KEY,
         approval_id TEXT NOT NULL,
         at INTEGER NOT NULL,
         recorded_at INTEGER NOT NULL,
         document TEXT NOT NULL
     );
     CREATE INDEX retries_at ON retries (at);",
    // 6: delivery claims. A notification is claimed here before it is sent,
    // so that of two runs (processes or threads) one sends it; the claim
    // lasts until `expires_at` (wall clock, microseconds), renewed while
    // its attempts run, and is deleted when the last attempt is recorded.
    "CREATE TABLE claims (
         notification_id TEXT PRIMARY KEY,
         schedule_id TEXT NOT NULL,
         holder TEXT NOT NULL,
         claimed_at INTEGER NOT NULL,
         expires_at INTEGER NOT NULL
     );
     CREATE INDEX claims_expiry ON claims (expires_at);",
    // 7: a plan's row no longer repeats its routes' text. A plan written
    // from now on keeps its document with `route_decisions` empty
    // (`routes_apart = 1`), and each of its routes says where it stands in
    // the plan (`plan_position`); reading the plan puts them back, so it
    // reads as it was written. Rows written before keep their whole
    // document (`routes_apart = 0`) and are read as they are; their routes,
    // and escalations added to a plan later, have no position.
    "ALTER TABLE plans ADD COLUMN routes_apart INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE route_decisions ADD COLUMN plan_position INTEGER;",
    // 8: a route row keeps the route's fields in columns instead of its JSON
    // document, which repeated the columns' text (with the index changes
    // below, the 1,000,000 routes of the `store_queries` example take 0.75 GB
    // instead of 1.39 GB); rows written before keep their documents and are
    // read from them (`route_columns.rs`). And fewer index entries per route:
    // - the provider's index goes: a provider is one route in a few, and the
    //   newest-first index with the filter reads a page as fast;
    // - the escalation owner's index holds only routes whose escalation
    //   owner is someone else (the owner's index finds the others);
    // - the notifications' index holds the id alone: the history reads it
    //   for every schedule at once and sorts each notification's few routes.
    "ALTER TABLE route_decisions ADD COLUMN escalation_owner_given INTEGER;
     ALTER TABLE route_decisions ADD COLUMN acknowledgement_minutes REAL;
     ALTER TABLE route_decisions ADD COLUMN reason TEXT;
     ALTER TABLE route_decisions ADD COLUMN maintenance_window_id TEXT;
     ALTER TABLE route_decisions ADD COLUMN owner_availability TEXT;
     ALTER TABLE route_decisions ADD COLUMN created_at_text TEXT;
     ALTER TABLE route_decisions ADD COLUMN episode TEXT;
     ALTER TABLE route_decisions ADD COLUMN suppressed_until TEXT;
     ALTER TABLE route_decisions ADD COLUMN alert_level TEXT;
     DROP INDEX route_decisions_provider;
     DROP INDEX route_decisions_escalation_owner;
     CREATE INDEX route_decisions_escalation_owner ON route_decisions (escalation_owner, created_at DESC, route_id) WHERE escalation_owner <> owner;
     DROP INDEX route_decisions_notification;
     CREATE INDEX route_decisions_notification ON route_decisions (notification_id) WHERE notification_id IS NOT NULL;",
    // 9: a plan's routes in the plan's own row (`plan_routes.rs`): one
    // array in `routes` (`routes_apart = 2`), their shared time in
    // `routes_at`, and a row per person and per (action, category) the
    // plan's routes name, with the positions of those routes in the array,
    // for the route history's filters. Instead of a route row and seven
    // index entries per route (storing the 10,000-plan batch of the
    // benchmarks took 1.4 s, most of it there). Rows written before stay as
    // they are; history reads both layouts.
    "ALTER TABLE plans ADD COLUMN routes TEXT;
     ALTER TABLE plans ADD COLUMN routes_at INTEGER;
     ALTER TABLE plans ADD COLUMN routes_at_text TEXT;
     CREATE INDEX plans_routes_recent ON plans (routes_at DESC) WHERE routes_at IS NOT NULL;
     CREATE INDEX plans_routes_schedule ON plans (schedule_id, routes_at DESC) WHERE routes_at IS NOT NULL;
     CREATE TABLE plan_people (
         person TEXT NOT NULL,
         routes_at INTEGER NOT NULL,
         plan_id TEXT NOT NULL,
         positions TEXT NOT NULL,
         PRIMARY KEY (person, routes_at DESC, plan_id)
     ) WITHOUT ROWID;
     CREATE TABLE plan_categories (
         action TEXT NOT NULL,
         category TEXT NOT NULL,
         routes_at INTEGER NOT NULL,
         plan_id TEXT NOT NULL,
         positions TEXT NOT NULL,
         PRIMARY KEY (action, category, routes_at DESC, plan_id)
     ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();
/// The migration after which [`backfill_lifecycle`] runs.
const LIFECYCLE_MIGRATION: usize = 5;

/// The embedded SQLite store: one file, WAL mode.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: String,
}

impl SqliteStore {
    /// Opens (creating it and its folders when missing) and migrates the store.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateFolder { path: shown.clone(), source })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open { path: shown.clone(), source: source.into() })?;
        let store = SqliteStore { conn: Mutex::new(conn), path: shown };
        store.configure(true)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store read-only (`SQLITE_OPEN_READ_ONLY`): queries
    /// work, every write fails with an error naming the store. For inspection
    /// tools, and for tests that need a failing write (file permissions do not
    /// stop root).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open { path: shown.clone(), source: source.into() })?;
        let store = SqliteStore { conn: Mutex::new(conn), path: shown };
        store.configure(false)?;
        store.check_version()?;
        Ok(store)
    }

    /// The store file, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The connection, for one operation at a time.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no transaction open (rusqlite
        // rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn configure(&self, writable: bool) -> Result<(), StoreError> {
        let open = |source: rusqlite::Error| StoreError::Open { path: self.path.clone(), source: source.into() };
        let conn = self.conn();
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open)?;
        if writable {
            // A new store's pages (an existing one keeps its own): a plan's
            // row with its routes takes about 2.4 KB, one to a 4 KB page
            // (SQLite's default); six fit in 16 KB, and the 10,000-plan
            // batch is written in 0.7 times the time.
            conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(open)?;
            // journal_mode answers with the mode now in effect. Switching a
            // new file to WAL needs it alone: two processes creating one store
            // together get SQLITE_BUSY at once (the busy handler is not asked),
            // so wait for the other as the busy timeout would.
            let started = std::time::Instant::now();
            let mode: String = loop {
                match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) && started.elapsed() < BUSY_TIMEOUT =>
                    {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    other => break other.map_err(open)?,
                }
            };
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::NoWal { path: self.path.clone(), mode });
            }
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(open)?;
        }
        conn.pragma_update(None, "foreign_keys", true).map_err(open)?;
        // A statement of many rows keeps a journal to undo itself alone on
        // an error; in memory, not in a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(open)?;
        Ok(())
    }

    fn version(&self) -> Result<i64, StoreError> {
        self.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|source| StoreError::Open { path: self.path.clone(), source: source.into() })
    }

    fn check_version(&self) -> Result<i64, StoreError> {
        let found = self.version()?;
        if found > MIGRATIONS.len() as i64 {
            return Err(StoreError::TooNew { path: self.path.clone(), found, known: MIGRATIONS.len() });
        }
        Ok(found)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.check_version()?;
        let conn = self.conn();
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let version = index + 1;
            let failed = |source: rusqlite::Error| StoreError::Migrate { path: self.path.clone(), version, source: source.into() };
            let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).map_err(failed)?;
            // Another process may have migrated while we waited for the lock.
            let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(failed)?;
            if now >= version as i64 {
                continue;
            }
            tx.execute_batch(sql).map_err(failed)?;
            if version == LIFECYCLE_MIGRATION {
                backfill_lifecycle(&tx).map_err(failed)?;
            }
            tx.pragma_update(None, "user_version", version as i64).map_err(failed)?;
            tx.commit().map_err(failed)?;
        }
        Ok(())
    }

    fn invalid(&self, message: impl Into<String>) -> StoreError {
        StoreError::Invalid { path: self.path.clone(), message: message.into() }
    }

    fn write_error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Write { path: self.path.clone(), source: source.into() }
    }

    fn read_error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Read { path: self.path.clone(), source: source.into() }
    }

    /// Microseconds of an RFC 3339 time, or an error naming the field.
    fn micros(&self, what: &str, field: &str, text: &str) -> Result<i64, StoreError> {
        cavra_engine::time::parse_time(text).map_err(|e| self.invalid(format!("{what}: `{field}`: {e}")))
    }

    fn document(&self, record: &impl Serialize) -> Result<String, StoreError> {
        serde_json::to_string(record).map_err(|source| StoreError::Corrupt { path: self.path.clone(), source })
    }

    /// Route decisions as the store writes them: checked, with their
    /// times in microseconds. `positions`: the routes are a plan's, in its
    /// order. Each failure stays with its route: the routes of a plan
    /// already stored are not checked (as before).
    fn encode_routes<'r>(&self, what: &str, routes: &'r [RouteRecord], positions: bool) -> Vec<Result<EncodedRoute<'r>, StoreError>> {
        routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let created_at = self.micros(&format!("{what}[{i}]"), "created_at", &route.created_at)?;
                Ok(EncodedRoute { route, position: positions.then_some(i as i64), created_at, created_at_text: created_at_text(route, created_at) })
            })
            .collect()
    }

    /// A plan checked and encoded for its row.
    fn encode_plan<'p>(&self, plan: &'p Plan) -> Result<EncodedPlan<'p>, StoreError> {
        if plan.plan_id.is_empty() {
            return Err(self.invalid("plan: `plan_id` is missing"));
        }
        let generated_at = self.micros("plan", "generated_at", &plan.generated_at)?;
        let document = self.document(&plan.without_routes())?;
        Ok(EncodedPlan { generated_at, document, routes: self.plan_routes(plan) })
    }

    /// How a plan's routes are written: in its row when they share its
    /// schedule and one time (`plan_routes.rs`), else a row each.
    fn plan_routes<'r>(&self, plan: &'r Plan) -> PlanRoutes<'r> {
        let in_row = plan_routes::encode(&plan.schedule_id, &plan.route_decisions).and_then(|routes| {
            let first = &plan.route_decisions[0];
            // A time that does not parse is reported by the route it is in, as a route row would be.
            let at = cavra_engine::time::parse_time(&first.created_at).ok()?;
            Some(PlanRoutes::InRow {
                routes,
                at,
                at_text: created_at_text(first, at),
                people: plan_routes::people(plan),
                categories: plan_routes::categories(plan),
            })
        });
        in_row.unwrap_or_else(|| PlanRoutes::Apart(self.encode_routes("plan: route_decisions", &plan.route_decisions, true)))
    }

    /// Inserts route decisions inside the caller's transaction, many rows
    /// per statement. A route id already stored is an error (a plan's
    /// routes are new with it) unless `existing_ok` (the same escalation
    /// decided by two runs at one instant is one decision).
    fn insert_routes(&self, tx: &rusqlite::Transaction, routes: &[EncodedRoute], recorded: i64, existing_ok: bool) -> Result<usize, StoreError> {
        let tail = if existing_ok { " ON CONFLICT (route_id) DO NOTHING" } else { "" };
        self.insert_many(tx, ROUTE_INSERT, ROUTE_COLUMNS, ROUTES_PER_INSERT, tail, routes, |row, next| {
            let (route, created_at) = (row.route, row.created_at);
            next(&route.route_id.as_str())?;
            next(&route.plan_id.as_str())?;
            next(&route.schedule_id.as_str())?;
            next(&route.owner.as_str())?;
            next(&route.escalation_owner_or_owner())?;
            next(&route.provider.as_str())?;
            next(&route.action.as_str())?;
            next(&route.category.as_str())?;
            next(&created_at)?;
            // Empty: the route is read from its columns.
            next(&"")?;
            next(&Some(route.notification_id.as_str()).filter(|n| !n.is_empty()))?;
            next(&route.escalates.as_deref())?;
            next(&recorded)?;
            next(&row.position)?;
            next(&route.escalation_owner.is_some())?;
            next(&route.acknowledgement_minutes.map(|m| m.0))?;
            next(&route.reason.as_deref())?;
            next(&route.maintenance_window_id.as_deref())?;
            next(&route.owner_availability.as_deref())?;
            next(&row.created_at_text)?;
            next(&route.episode.as_deref())?;
            next(&route.suppressed_until.as_deref())?;
            next(&route.alert_level.map(AlertLevel::as_str))
        })
    }

    /// Inserts `rows` inside the caller's transaction, `per_statement` rows
    /// of `columns` values to a statement (`insert` the statement's head,
    /// `tail` what follows its values); `bind` gives a row's values in
    /// order. Returns how many rows were inserted.
    #[allow(clippy::too_many_arguments)]
    fn insert_many<R>(
        &self,
        tx: &rusqlite::Transaction,
        insert: &str,
        columns: usize,
        per_statement: usize,
        tail: &str,
        rows: &[R],
        bind: impl Fn(&R, &mut dyn FnMut(&dyn rusqlite::ToSql) -> rusqlite::Result<()>) -> rusqlite::Result<()>,
    ) -> Result<usize, StoreError> {
        let mut inserted = 0;
        let mut statements = Statements::new(tx, insert, columns, per_statement, tail);
        for chunk in rows.chunks(per_statement) {
            let statement = statements.for_rows(chunk.len()).map_err(|e| self.write_error(e))?;
            let mut at = 0;
            for row in chunk {
                let mut next = |value: &dyn rusqlite::ToSql| {
                    at += 1;
                    statement.raw_bind_parameter(at, value)
                };
                bind(row, &mut next).map_err(|e| self.write_error(e))?;
            }
            inserted += statement.raw_execute().map_err(|e| self.write_error(e))?;
        }
        Ok(inserted)
    }

    /// Which of `plans` are stored already, by id: one query for the batch,
    /// each id looked up in the plans' key.
    fn stored_plan_ids(&self, tx: &rusqlite::Transaction, plans: &[Plan]) -> Result<FxHashSet<String>, StoreError> {
        let ids: Vec<&str> = plans.iter().map(|p| p.plan_id.as_str()).collect();
        let list = serde_json::to_string(&ids).map_err(|source| StoreError::Corrupt { path: self.path.clone(), source })?;
        let mut query =
            tx.prepare_cached("SELECT p.plan_id FROM json_each(?1) j CROSS JOIN plans p ON p.plan_id = j.value").map_err(|e| self.write_error(e))?;
        let stored = query.query_map([list], |row| row.get(0)).and_then(|rows| rows.collect()).map_err(|e| self.write_error(e))?;
        Ok(stored)
    }

    /// Runs `insert` in its own write transaction: 1 row means stored.
    fn insert_one(&self, insert: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<usize>) -> Result<SaveOutcome, StoreError> {
        let conn = self.conn();
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).map_err(|e| self.write_error(e))?;
        let inserted = insert(&tx).map_err(|e| self.write_error(e))?;
        tx.commit().map_err(|e| self.write_error(e))?;
        Ok(if inserted == 0 { SaveOutcome::AlreadyStored } else { SaveOutcome::Stored { routes: 0 } })
    }

    /// [`Store::history`] of the schedules `scope` selects.
    fn history_where(&self, scope: Scope, as_of: i64) -> Result<History, StoreError> {
        let Scope { join, schedules, value } = scope;
        let bounds = || vec![as_of.into(), value.clone()];
        let columns = select_list("");
        // `schedule_id` in `schedules` names the plan's in the second layout (`jsonb_each` has none).
        let routes = self.stored_routes(
            &format!(
                "SELECT {columns} FROM (
                     SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY notification_id ORDER BY created_at DESC, route_id DESC) AS newest
                     FROM (
                         SELECT {columns} FROM {join}route_decisions
                         WHERE notification_id IS NOT NULL AND created_at <= ?1 AND {schedules}
                         UNION ALL
                         SELECT {in_row} FROM {join}plans p, jsonb_each(p.routes) r
                         WHERE p.routes_at IS NOT NULL AND p.routes_at <= ?1 AND {schedules} AND {notification} IS NOT NULL
                     )
                 ) WHERE newest = 1",
                in_row = plan_routes::select_list(),
                notification = plan_routes::expression("notification_id"),
            ),
            bounds(),
        )?;
        let attempts = self.documents(
            &format!(
                "SELECT document FROM {join}deliveries WHERE at <= ?1 AND {schedules} AND notification_id IS NOT NULL
                 ORDER BY at, recorded_at, completed_at, attempt"
            ),
            bounds(),
        )?;
        let acknowledgements = self.documents(
            &format!("SELECT document FROM {join}acknowledgements WHERE created_at <= ?1 AND {schedules} ORDER BY created_at DESC, ack_id"),
            bounds(),
        )?;
        let conn = self.conn();
        let mut query = conn
            .prepare_cached(&format!(
                "SELECT schedule_id, MAX(generated_at) FROM {join}plans WHERE healthy = 1 AND generated_at <= ?1 AND {schedules}
                 GROUP BY schedule_id"
            ))
            .map_err(|e| self.read_error(e))?;
        let healthy_plans = query
            .query_map(params_from_iter(bounds()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.read_error(e))?;
        Ok(History { routes, attempts, acknowledgements, healthy_plans })
    }

    /// Route decisions selected with [`select_list`] first.
    fn stored_routes(&self, sql: &str, values: Vec<rusqlite::types::Value>) -> Result<Vec<RouteRecord>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(sql).map_err(|e| self.read_error(e))?;
        let mut rows = statement.query(params_from_iter(values)).map_err(|e| self.read_error(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.read_error(e))? {
            out.extend(self.read_route(row, 0)?);
        }
        Ok(out)
    }

    /// The route whose [`select_list`] starts at column `first`: from its
    /// document (a row written before schema 8) or its columns; none when
    /// they are null (a join that matched no route).
    fn read_route(&self, row: &rusqlite::Row, first: usize) -> Result<Option<RouteRecord>, StoreError> {
        match row.get::<_, Option<String>>(first).map_err(|e| self.read_error(e))? {
            None => Ok(None),
            Some(document) if !document.is_empty() => {
                serde_json::from_str(&document).map(Some).map_err(|source| StoreError::Corrupt { path: self.path.clone(), source })
            }
            Some(_) => {
                let columns = route_columns_at(row, first + 1).map_err(|e| self.read_error(e))?;
                columns.record().map(Some).map_err(|message| StoreError::Corrupt { path: self.path.clone(), source: serde::de::Error::custom(message) })
            }
        }
    }

    fn documents<T: DeserializeOwned>(&self, sql: &str, values: Vec<rusqlite::types::Value>) -> Result<Vec<T>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(sql).map_err(|e| self.read_error(e))?;
        let rows = statement.query_map(params_from_iter(values), |r| r.get::<_, String>(0)).map_err(|e| self.read_error(e))?;
        let mut out = Vec::new();
        for row in rows {
            let document = row.map_err(|e| self.read_error(e))?;
            out.push(serde_json::from_str(&document).map_err(|source| StoreError::Corrupt { path: self.path.clone(), source })?);
        }
        Ok(out)
    }
}

impl Store for SqliteStore {
    fn save_plans(&self, plans: &[Plan], policies: &[PolicyRecord]) -> Result<Vec<SaveOutcome>, StoreError> {
        let recorded = wall_micros();
        // Everything is checked and encoded before the store is locked, on
        // every core: a plan's document without its routes, its routes'
        // array or rows.
        let mut encoded = Vec::with_capacity(plans.len());
        // Whether each plan is the first of its id in the batch (the one stored, unless stored before).
        let mut first = Vec::with_capacity(plans.len());
        // Routes in their plan's row have no row of their own whose key
        // would refuse a route id given twice: the batch is checked here.
        // (A route id is a hash over its plan's id, which the store keeps once.)
        let mut plan_ids = FxHashSet::with_capacity_and_hasher(plans.len(), Default::default());
        let mut route_ids = FxHashSet::with_capacity_and_hasher(plans.iter().map(|p| p.route_decisions.len()).sum(), Default::default());
        for (plan, encoding) in plans.iter().zip(crate::parallel::parallel_map(plans, |plan| self.encode_plan(plan))) {
            let encoding = encoding?;
            let is_first = plan_ids.insert(plan.plan_id.as_str());
            first.push(is_first);
            if is_first && matches!(encoding.routes, PlanRoutes::InRow { .. }) {
                for (i, route) in plan.route_decisions.iter().enumerate() {
                    if !route_ids.insert(route.route_id.as_str()) {
                        return Err(self.invalid(format!("plan: route_decisions[{i}]: `route_id` {} is given twice in the batch", route.route_id)));
                    }
                }
            }
            encoded.push(encoding);
        }
        let mut index_rows = IndexRows::take(plans, &mut encoded);
        let conn = self.conn();
        // A large batch gets a page cache that holds everything it changes:
        // with the default 2 MB, SQLite writes changed pages out to the WAL
        // before the commit and reads them back for the next rows.
        let bytes: usize = encoded.iter().map(EncodedPlan::size).sum();
        let _settings = BatchSettings::apply(&conn, bytes).map_err(|e| self.write_error(e))?;
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).map_err(|e| self.write_error(e))?;
        // An error returns before the commit: dropping `tx` rolls everything back.
        {
            let mut insert = tx
                .prepare_cached("INSERT INTO policies (policy_id, document) VALUES (?1, ?2) ON CONFLICT (policy_id) DO NOTHING")
                .map_err(|e| self.write_error(e))?;
            for policy in policies {
                insert.execute(params![policy.policy_id, policy.document]).map_err(|e| self.write_error(e))?;
            }
        }
        // The new plans: those not stored before, each the first of its id
        // in the batch (append-only: a stored plan stays as it is). Asked
        // before the INSERT, in the same transaction, rather than with
        // RETURNING: SQLite runs a statement with RETURNING (a kind of
        // trigger) through a temporary table of the rows it inserts, where
        // it rebalanced pages at nearly every 2.6 KB plan row (about 10,000
        // times for a 10,000-plan batch: 170 million of SQLite's instructions).
        let stored_before = self.stored_plan_ids(&tx, plans)?;
        let new: Vec<bool> = plans.iter().zip(&first).map(|(p, &first)| first && !stored_before.contains(p.plan_id.as_str())).collect();
        let rows: Vec<(&Plan, &EncodedPlan)> = plans.iter().zip(&encoded).zip(&new).filter(|(_, new)| **new).map(|(pair, _)| pair).collect();
        self.insert_many(&tx, PLAN_INSERT, PLAN_COLUMNS, PLANS_PER_INSERT, "", &rows, |&(plan, row), next| {
            let in_row = match &row.routes {
                PlanRoutes::InRow { routes, at, at_text, .. } => Some((routes, at, at_text)),
                PlanRoutes::Apart(_) => None,
            };
            next(&plan.plan_id)?;
            next(&plan.schedule_id)?;
            next(&row.generated_at)?;
            next(&plan.status.as_str())?;
            next(&plan.alert_level.as_str())?;
            next(&row.document)?;
            next(&Some(plan.policy_id.as_str()).filter(|p| !p.is_empty()))?;
            next(&plan.is_healthy())?;
            next(&recorded)?;
            next(&if in_row.is_some() { ROUTES_IN_ROW } else { ROUTES_APART })?;
            next(&in_row.map(|(routes, ..)| routes))?;
            next(&in_row.map(|(_, at, _)| at))?;
            next(&in_row.and_then(|(.., text)| *text))
        })?;
        drop(rows);
        let mut outcomes = Vec::with_capacity(plans.len());
        let mut routes: Vec<EncodedRoute> = Vec::new();
        for ((plan, row), &new) in plans.iter().zip(encoded).zip(&new) {
            if !new {
                // Append-only: the stored plan stays as it is.
                outcomes.push(SaveOutcome::AlreadyStored);
                continue;
            }
            for (i, route) in plan.route_decisions.iter().enumerate() {
                if route.plan_id != plan.plan_id {
                    return Err(self.invalid(format!("plan: route_decisions[{i}]: `plan_id` is {}, not the plan's {}", route.plan_id, plan.plan_id)));
                }
            }
            outcomes.push(SaveOutcome::Stored { routes: plan.route_decisions.len() });
            if let PlanRoutes::Apart(apart) = row.routes {
                for route in apart {
                    routes.push(route?);
                }
            }
        }
        index_rows.people.retain(|row| new[row.plan]);
        index_rows.categories.retain(|row| new[row.plan]);
        self.insert_many(&tx, PEOPLE_INSERT, 4, INDEX_ROWS_PER_INSERT, "", &index_rows.people, |row, next| {
            next(&row.key)?;
            next(&row.at)?;
            next(&plans[row.plan].plan_id)?;
            next(&row.positions)
        })?;
        self.insert_many(&tx, CATEGORIES_INSERT, 5, INDEX_ROWS_PER_INSERT, "", &index_rows.categories, |row, next| {
            next(&row.key.0)?;
            next(&row.key.1)?;
            next(&row.at)?;
            next(&plans[row.plan].plan_id)?;
            next(&row.positions)
        })?;
        routes.sort_unstable_by(|a, b| a.route.route_id.cmp(&b.route.route_id));
        self.insert_routes(&tx, &routes, recorded, false)?;
        tx.commit().map_err(|e| self.write_error(e))?;
        Ok(outcomes)
    }

    fn policy(&self, policy_id: &str) -> Result<Option<PolicyRecord>, StoreError> {
        let conn = self.conn();
        let mut query = conn.prepare_cached("SELECT document FROM policies WHERE policy_id = ?").map_err(|e| self.read_error(e))?;
        let document: Option<String> = query.query_row([policy_id], |r| r.get(0)).optional().map_err(|e| self.read_error(e))?;
        Ok(document.map(|document| PolicyRecord { policy_id: policy_id.to_string(), document }))
    }

    fn save_routes(&self, routes: &[RouteRecord]) -> Result<SaveOutcome, StoreError> {
        let recorded = wall_micros();
        let encoded = self.encode_routes("routes", routes, false).into_iter().collect::<Result<Vec<_>, _>>()?;
        let conn = self.conn();
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).map_err(|e| self.write_error(e))?;
        let inserted = self.insert_routes(&tx, &encoded, recorded, true)?;
        tx.commit().map_err(|e| self.write_error(e))?;
        Ok(if inserted == 0 { SaveOutcome::AlreadyStored } else { SaveOutcome::Stored { routes: inserted } })
    }

    fn history(&self, schedule_id: Option<&str>, as_of: i64) -> Result<History, StoreError> {
        // Two statements, not `(?2 IS NULL OR schedule_id = ?2)`: with that
        // condition the planner cannot use the schedule's index, and one
        // schedule's history read every stored notification (256 ms at
        // 90,000 routes, against 0.2 ms).
        let scope = match schedule_id {
            Some(schedule) => Scope { join: "", schedules: "schedule_id = ?2", value: schedule.to_string().into() },
            None => Scope { join: "", schedules: "?2 IS NULL", value: rusqlite::types::Value::Null },
        };
        self.history_where(scope, as_of)
    }

    fn histories(&self, schedule_ids: &[&str], as_of: i64) -> Result<History, StoreError> {
        match schedule_ids {
            [] => Ok(History::default()),
            [one] => self.history(Some(one), as_of),
            // One query per kind of record for them all, not four per
            // schedule: each looks the listed schedules up in its index, one
            // by one (with `IN (SELECT value FROM json_each(?2))` SQLite
            // built a temporary index of the list for each query: 123
            // million instructions for a batch of 10,000 new schedules).
            many => {
                let mut ids = many.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let list = serde_json::to_string(&ids).map_err(|source| StoreError::Corrupt { path: self.path.clone(), source })?;
                self.history_where(Scope { join: "json_each(?2) s CROSS JOIN ", schedules: "schedule_id = s.value", value: list.into() }, as_of)
            }
        }
    }

    fn routes(&self, filter: &RouteFilter) -> Result<Vec<RouteRecord>, StoreError> {
        use rusqlite::types::Value;
        // Every condition but the owner's: a route column, its comparison, the value.
        let mut conditions: Vec<(&str, &str, Value)> = Vec::new();
        for (column, value) in
            [("action", &filter.action), ("category", &filter.category), ("provider", &filter.provider), ("schedule_id", &filter.schedule_id)]
        {
            if let Some(v) = given(value) {
                conditions.push((column, "=", v.to_string().into()));
            }
        }
        if let Some(since) = filter.since {
            conditions.push(("created_at", ">=", since.into()));
        }
        if let Some(until) = filter.until {
            conditions.push(("created_at", "<", until.into()));
        }
        const ORDER: &str = " ORDER BY created_at DESC, route_id";
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let enough = i64::from(filter.limit).saturating_add(offset);
        let owner = given(&filter.owner);
        // Each branch lists its newest `enough` routes (in index order, so
        // it stops there); the page is cut from all of them, merged.
        let mut branches: Vec<String> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut branch = |head: String, head_values: Vec<Value>, column: &dyn Fn(&str) -> String, order: &str| {
            let mut sql = head;
            values.extend(head_values);
            for (name, comparison, value) in &conditions {
                sql.push_str(&format!(" AND {} {comparison} ?", column(name)));
                values.push(value.clone());
            }
            sql.push_str(order);
            sql.push_str(" LIMIT ?");
            values.push(enough.into());
            branches.push(format!("SELECT * FROM ({sql})"));
        };
        // Routes with rows of their own (schema 8 and before, escalations).
        let columns = select_list("");
        let as_named = |name: &str| name.to_string();
        match owner {
            None => branch(format!("SELECT {columns} FROM route_decisions WHERE true"), vec![], &as_named, ORDER),
            Some(owner) => {
                // `owner = ? OR escalation_owner = ?` as two index-ordered
                // branches. The second says `escalation_owner <> owner` as its index does.
                branch(format!("SELECT {columns} FROM route_decisions WHERE owner = ?"), vec![owner.to_string().into()], &as_named, ORDER);
                branch(
                    format!("SELECT {columns} FROM route_decisions WHERE escalation_owner = ? AND escalation_owner <> owner"),
                    vec![owner.to_string().into()],
                    &as_named,
                    ORDER,
                );
            }
        }
        // Routes in their plan's row, the plans found newest first through
        // the person's or the category's rows when the filter names one.
        let in_row = plan_routes::select_list();
        let (source, time, key_values): (String, &str, Vec<Value>) = match (owner, given(&filter.action).zip(given(&filter.category))) {
            // Only the routes at the index row's positions are read.
            (Some(owner), _) => (
                format!("plan_people k JOIN plans p ON p.plan_id = k.plan_id, jsonb_each(p.routes) r WHERE k.person = ? AND {AT_POSITIONS}"),
                "k.routes_at",
                vec![owner.to_string().into()],
            ),
            (None, Some((action, category))) => (
                format!(
                    "plan_categories k JOIN plans p ON p.plan_id = k.plan_id, jsonb_each(p.routes) r WHERE k.action = ? AND k.category = ? AND {AT_POSITIONS}"
                ),
                "k.routes_at",
                vec![action.to_string().into(), category.to_string().into()],
            ),
            (None, None) => ("plans p, jsonb_each(p.routes) r WHERE p.routes_at IS NOT NULL".to_string(), "p.routes_at", vec![]),
        };
        let column = |name: &str| if name == "created_at" { time.to_string() } else { plan_routes::expression(name) };
        branch(format!("SELECT {in_row} FROM {source}"), key_values, &column, &format!(" ORDER BY {time} DESC, route_id"));
        let sql = format!("SELECT {columns} FROM ({}){ORDER} LIMIT ? OFFSET ?", branches.join(" UNION ALL "));
        values.push(i64::from(filter.limit).into());
        values.push(offset.into());
        self.stored_routes(&sql, values)
    }

    fn save_acknowledgement(&self, ack: &Acknowledgement) -> Result<SaveOutcome, StoreError> {
        let created_at = self.micros("acknowledgement", "created_at", &ack.created_at)?;
        let recorded = wall_micros();
        let document = self.document(&Acknowledgement { recorded_at: Some(cavra_engine::time::format_time(recorded)), ..ack.clone() })?;
        self.insert_one(|tx| {
            tx.execute(
                "INSERT INTO acknowledgements (ack_id, schedule_id, provider, acknowledged_by, acknowledgement_state,
                     plan_id, external_ref, notes, created_at, document, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (ack_id) DO NOTHING",
                params![
                    ack.ack_id,
                    ack.schedule_id,
                    ack.provider,
                    ack.acknowledged_by,
                    ack.acknowledgement_state,
                    ack.plan_id,
                    ack.external_ref,
                    ack.notes,
                    created_at,
                    document,
                    recorded
                ],
            )
        })
    }

    fn save_delivery(&self, attempt: &DeliveryAttempt) -> Result<SaveOutcome, StoreError> {
        let record = &attempt.record;
        let started_at = self.micros("delivery", "started_at", &record.started_at)?;
        let completed_at = self.micros("delivery", "completed_at", &record.completed_at)?;
        let at = self.micros("delivery", "at", &attempt.at)?;
        let recorded = wall_micros();
        let document = self.document(&DeliveryAttempt { recorded_at: Some(cavra_engine::time::format_time(recorded)), ..attempt.clone() })?;
        self.insert_one(|tx| {
            tx.execute(
                "INSERT INTO deliveries (delivery_id, route_id, plan_id, schedule_id, provider, notification_key, attempt,
                     status_code, outcome, started_at, completed_at, document, notification_id, at, is_final, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT (delivery_id) DO NOTHING",
                params![
                    attempt.delivery_id,
                    record.route_id,
                    record.plan_id,
                    attempt.schedule_id,
                    record.provider,
                    attempt.notification_key,
                    i64::from(record.attempt),
                    record.status_code.map(i64::from),
                    record.outcome.as_str(),
                    started_at,
                    completed_at,
                    document,
                    attempt.notification_id,
                    at,
                    record.is_final,
                    recorded
                ],
            )
        })
    }

    fn claim(&self, claim: &Claim, seen_attempt: Option<&str>) -> Result<bool, StoreError> {
        let conn = self.conn();
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).map_err(|e| self.write_error(e))?;
        let write = |e| self.write_error(e);
        // Delivered by anyone, or attempted since the caller looked: not ours to send.
        let delivered: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM deliveries WHERE notification_id = ?1 AND outcome = 'delivered')", [&claim.notification_id], |r| r.get(0))
            .map_err(write)?;
        let latest: Option<String> = tx
            .query_row(
                "SELECT delivery_id FROM deliveries WHERE notification_id = ?1 ORDER BY at DESC, recorded_at DESC, completed_at DESC, attempt DESC LIMIT 1",
                [&claim.notification_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(write)?;
        if delivered || latest.as_deref() != seen_attempt {
            return Ok(false);
        }
        // A live claim of another holder stands; an expired one is taken over.
        let taken = tx
            .execute(
                "INSERT INTO claims (notification_id, schedule_id, holder, claimed_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (notification_id) DO UPDATE SET schedule_id = ?2, holder = ?3, claimed_at = ?4, expires_at = ?5
                 WHERE claims.expires_at <= ?4 OR claims.holder = ?3",
                params![claim.notification_id, claim.schedule_id, claim.holder, claim.claimed_at, claim.expires_at],
            )
            .map_err(write)?;
        tx.commit().map_err(write)?;
        Ok(taken == 1)
    }

    fn renew_claims(&self, holder: &str, notification_ids: &[String], expires_at: i64) -> Result<usize, StoreError> {
        let conn = self.conn();
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate).map_err(|e| self.write_error(e))?;
        let mut renewed = 0;
        {
            let mut renew =
                tx.prepare_cached("UPDATE claims SET expires_at = ?3 WHERE notification_id = ?1 AND holder = ?2").map_err(|e| self.write_error(e))?;
            for id in notification_ids {
                renewed += renew.execute(params![id, holder, expires_at]).map_err(|e| self.write_error(e))?;
            }
        }
        tx.commit().map_err(|e| self.write_error(e))?;
        Ok(renewed)
    }

    fn release_claim(&self, holder: &str, notification_id: &str) -> Result<(), StoreError> {
        self.insert_one(|tx| tx.execute("DELETE FROM claims WHERE notification_id = ?1 AND holder = ?2", params![notification_id, holder])).map(|_| ())
    }

    fn expired_claims(&self, now: i64) -> Result<Vec<Claim>, StoreError> {
        let conn = self.conn();
        let mut query = conn
            .prepare_cached("SELECT notification_id, schedule_id, holder, claimed_at, expires_at FROM claims WHERE expires_at <= ?1 ORDER BY expires_at")
            .map_err(|e| self.read_error(e))?;
        let rows = query
            .query_map([now], |r| {
                Ok(Claim { notification_id: r.get(0)?, schedule_id: r.get(1)?, holder: r.get(2)?, claimed_at: r.get(3)?, expires_at: r.get(4)? })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.read_error(e))?;
        Ok(rows)
    }

    fn final_attempts(&self, provider: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.documents(
            "SELECT document FROM deliveries WHERE provider = ? AND is_final = 1 AND notification_id IS NOT NULL ORDER BY at, recorded_at, completed_at",
            vec![provider.to_string().into()],
        )
    }

    fn save_retry(&self, retry: &Retry) -> Result<SaveOutcome, StoreError> {
        let at = self.micros("retry", "at", &retry.at)?;
        let recorded = wall_micros();
        let document = self.document(&Retry { recorded_at: Some(cavra_engine::time::format_time(recorded)), ..retry.clone() })?;
        self.insert_one(|tx| {
            tx.execute(
                "INSERT INTO retries (retry_id, approval_id, at, recorded_at, document) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (retry_id) DO NOTHING",
                params![retry.retry_id, retry.approval_id, at, recorded, document],
            )
        })
    }

    fn retries(&self, as_of: Option<i64>) -> Result<Vec<Retry>, StoreError> {
        self.documents("SELECT document FROM retries WHERE at <= ? ORDER BY at DESC, recorded_at DESC, retry_id", vec![as_of.unwrap_or(i64::MAX).into()])
    }

    fn save_recovery(&self, recovery: &Recovery) -> Result<SaveOutcome, StoreError> {
        let created = self.micros("recovery", "recovered_at", &recovery.recovered_at)?;
        let document = self.document(&Recovery { recorded_at: Some(super::wall_clock()), ..recovery.clone() })?;
        self.insert_one(|tx| {
            tx.execute(
                "INSERT INTO metadata (metadata_id, kind, created_at, document) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (metadata_id) DO NOTHING",
                params![recovery.recovery_id, RECOVERY_KIND, created, document],
            )
        })
    }

    fn recoveries(&self, as_of: Option<i64>) -> Result<Vec<Recovery>, StoreError> {
        self.documents(
            "SELECT document FROM metadata WHERE kind = ? AND created_at <= ? ORDER BY created_at DESC, metadata_id",
            vec![RECOVERY_KIND.to_string().into(), as_of.unwrap_or(i64::MAX).into()],
        )
    }

    fn deliveries(&self, plan_id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.documents("SELECT document FROM deliveries WHERE plan_id = ? ORDER BY completed_at, route_id, attempt", vec![plan_id.to_string().into()])
    }

    fn acknowledgements(&self, schedule_id: &str) -> Result<Vec<Acknowledgement>, StoreError> {
        self.documents("SELECT document FROM acknowledgements WHERE schedule_id = ? ORDER BY created_at DESC, ack_id", vec![schedule_id.to_string().into()])
    }

    fn latest_plans(&self, as_of: Option<i64>) -> Result<Vec<Plan>, StoreError> {
        // A plan written without its routes is given them back, in plan order,
        // from their rows or its own (`plan_routes.rs`).
        let conn = self.conn();
        let mut query = conn
            .prepare_cached(&format!(
                "SELECT p.plan_id, p.document, {apart}, p.schedule_id AS in_schedule, r.plan_position AS at_position FROM plans p
                 LEFT JOIN route_decisions r ON p.routes_apart = 1 AND r.plan_id = p.plan_id AND r.plan_position IS NOT NULL
                 WHERE p.routes_apart <> {ROUTES_IN_ROW} AND p.plan_id = ({latest})
                 UNION ALL
                 SELECT p.plan_id, p.document, {in_row}, p.schedule_id, r.key FROM plans p, jsonb_each(p.routes) r
                 WHERE p.routes_apart = {ROUTES_IN_ROW} AND p.plan_id = ({latest})
                 ORDER BY in_schedule, at_position",
                apart = select_list("r."),
                in_row = plan_routes::select_list(),
                latest = "SELECT q.plan_id FROM plans q WHERE q.schedule_id = p.schedule_id AND q.generated_at <= ?1
                          ORDER BY q.generated_at DESC, q.plan_id DESC LIMIT 1",
            ))
            .map_err(|e| self.read_error(e))?;
        let mut rows = query.query([as_of.unwrap_or(i64::MAX)]).map_err(|e| self.read_error(e))?;
        let mut plans = super::PlanAssembly::new(&self.path);
        while let Some(row) = rows.next().map_err(|e| self.read_error(e))? {
            let (plan_id, plan) = (row.get::<_, Option<String>>(0), row.get::<_, Option<String>>(1));
            let (Some(plan_id), Some(plan)) = (plan_id.map_err(|e| self.read_error(e))?, plan.map_err(|e| self.read_error(e))?) else { continue };
            let route = self.read_route(row, 2)?;
            plans.row(plan_id, &plan, route)?;
        }
        Ok(plans.finish())
    }

    fn save_trend(&self, trend: &Trend) -> Result<SaveOutcome, StoreError> {
        let created = self.micros("trend", "generated_at", &trend.generated_at)?;
        let document = self.document(trend)?;
        self.insert_one(|tx| {
            tx.execute(
                "INSERT INTO metadata (metadata_id, kind, created_at, document) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (metadata_id) DO NOTHING",
                params![trend.trend_id, TREND_KIND, created, document],
            )
        })
    }

    fn suppressed_counts(&self, filter: &RouteFilter) -> Result<Vec<SuppressedCount>, StoreError> {
        // The suppressed routes of both layouts, then counted together. In a
        // plan's row they are found through the plans that have such routes
        // (and the person's plans, for an owner).
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        // The filter's conditions, on a layout's route columns.
        let conditions = |column: &dyn Fn(&str) -> String, sql: &mut String, values: &mut Vec<rusqlite::types::Value>| {
            if let Some(owner) = given(&filter.owner) {
                sql.push_str(&format!(" AND ({} = ? OR {} = ?)", column("owner"), column("escalation_owner")));
                values.push(owner.to_string().into());
                values.push(owner.to_string().into());
            }
            for (name, value) in [("provider", &filter.provider), ("schedule_id", &filter.schedule_id)] {
                if let Some(v) = given(value) {
                    sql.push_str(&format!(" AND {} = ?", column(name)));
                    values.push(v.to_string().into());
                }
            }
            for (comparison, bound) in [(">=", filter.since), ("<", filter.until)] {
                if let Some(t) = bound {
                    sql.push_str(&format!(" AND {} {comparison} ?", column("created_at")));
                    values.push(t.into());
                }
            }
        };
        let mut sql = String::from(
            "SELECT category, owner, provider, schedule_id, COUNT(*) FROM (SELECT category, owner, provider, schedule_id FROM route_decisions WHERE action = 'suppress'",
        );
        conditions(&|name: &str| name.to_string(), &mut sql, &mut values);
        let column = plan_routes::expression;
        sql.push_str(&format!(
            " UNION ALL SELECT {}, {}, {}, p.schedule_id FROM plans p, jsonb_each(p.routes) r
             WHERE p.plan_id IN (SELECT plan_id FROM plan_categories WHERE action = 'suppress') AND {} = 'suppress'",
            column("category"),
            column("owner"),
            column("provider"),
            column("action")
        ));
        if let Some(owner) = given(&filter.owner) {
            sql.push_str(" AND p.plan_id IN (SELECT plan_id FROM plan_people WHERE person = ?)");
            values.push(owner.to_string().into());
        }
        conditions(&column, &mut sql, &mut values);
        sql.push(')');
        sql.push_str(" GROUP BY category, owner, provider, schedule_id ORDER BY category, owner, provider, schedule_id");
        let conn = self.conn();
        let mut statement = conn.prepare(&sql).map_err(|e| self.read_error(e))?;
        let rows = statement
            .query_map(params_from_iter(values), |r| {
                Ok(SuppressedCount {
                    category: r.get(0)?,
                    owner: r.get(1)?,
                    provider: r.get(2)?,
                    schedule_id: r.get(3)?,
                    count: r.get::<_, i64>(4)?.max(0) as u64,
                })
            })
            .map_err(|e| self.read_error(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.read_error(e))
    }
}

/// Gives the rows written before the lifecycle (migration 5) what it needs:
/// each route of a plan its notification id and episode (the `next_due_at`
/// of the plan's schedule report where the plan has one, else the plan's
/// `generated_at`), each plan its healthy flag, and each delivery attempt its
/// notification (through its route) and the logical instant of its run (the
/// plan's `generated_at`: a delivery run planned and delivered at one `--at`).
fn backfill_lifecycle(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    let corrupt = |e: serde_json::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    let plans: Vec<(String, String)> =
        tx.prepare("SELECT plan_id, document FROM plans")?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    // route_id -> (notification id, the plan's time, minutes, escalation owner)
    let mut routes: HashMap<String, (String, i64, Option<Minutes>, Option<String>)> = HashMap::new();
    for (plan_id, document) in plans {
        let mut plan: serde_json::Value = serde_json::from_str(&document).map_err(corrupt)?;
        let episode = plan["episode"].as_str().map(String::from).or_else(|| stored_next_due(&plan)).or_else(|| plan["generated_at"].as_str().map(String::from));
        plan["episode"] = episode.clone().into();
        let typed: Plan = serde_json::from_value(plan.clone()).map_err(corrupt)?;
        let at = cavra_engine::time::parse_time(&typed.generated_at).unwrap_or_default();
        let healthy = typed.is_healthy();
        if let Some(list) = plan["route_decisions"].as_array_mut() {
            for route in list.iter_mut() {
                let mut record: RouteRecord = serde_json::from_value(route.clone()).map_err(corrupt)?;
                record.episode = episode.as_deref().map(Text::from);
                if !healthy {
                    record.notification_id = notification_id(&record.schedule_id, episode.as_deref(), typed.alert_level, &record.owner, &record.provider);
                    record.alert_level = Some(typed.alert_level);
                }
                let text = serde_json::to_string(&record).map_err(corrupt)?;
                tx.execute(
                    "UPDATE route_decisions SET notification_id = ?2, document = ?3 WHERE route_id = ?1",
                    params![record.route_id.as_str(), Some(record.notification_id.as_str()).filter(|n| !n.is_empty()), text],
                )?;
                routes.insert(
                    record.route_id.to_string(),
                    (record.notification_id.to_string(), at, record.acknowledgement_minutes, record.escalation_owner.as_deref().map(String::from)),
                );
                *route = serde_json::to_value(&record).map_err(corrupt)?;
            }
        }
        let text = serde_json::to_string(&plan).map_err(corrupt)?;
        tx.execute("UPDATE plans SET document = ?2, healthy = ?3 WHERE plan_id = ?1", params![plan_id, text, healthy])?;
    }
    let deliveries: Vec<(String, String)> =
        tx.prepare("SELECT delivery_id, document FROM deliveries")?.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    for (delivery_id, document) in deliveries {
        let mut attempt: DeliveryAttempt = serde_json::from_str(&document).map_err(corrupt)?;
        let Some((notification, at, minutes, escalation_owner)) = routes.get(&attempt.record.route_id).filter(|r| !r.0.is_empty()) else { continue };
        attempt.notification_id = notification.clone();
        attempt.notification_key = notification.clone();
        attempt.at = cavra_engine::time::format_time(*at);
        attempt.acknowledgement_minutes = *minutes;
        attempt.escalation_owner = escalation_owner.clone();
        let text = serde_json::to_string(&attempt).map_err(corrupt)?;
        tx.execute(
            "UPDATE deliveries SET notification_id = ?2, at = ?3, is_final = ?4, document = ?5 WHERE delivery_id = ?1",
            params![delivery_id, notification, at, attempt.record.is_final, text],
        )?;
    }
    Ok(())
}

/// The schedule report's `next_due_at` as an older plan kept it: in a stored
/// report where there is one, else in the plan's reason, which quotes it
/// ("... is due soon: the next drill is due at T", "... the rollback drill
/// was due at T and is overdue ..."). So notifications stored before ids
/// existed get the ids the same drill gets now, and a delivery after the
/// upgrade does not send them again.
fn stored_next_due(plan: &serde_json::Value) -> Option<String> {
    let in_report = plan["schedule_report"]["checks"].as_array().and_then(|checks| checks.iter().find_map(|c| c["next_due_at"].as_str()).map(String::from));
    let quoted = || {
        let reason = plan["reason"].as_str()?;
        let start = reason.find("due at ")? + "due at ".len();
        Some(reason[start..].split(|c: char| c.is_whitespace() || c == ';' || c == ',').next()?.to_string())
    };
    let text = in_report.or_else(quoted)?;
    cavra_engine::time::parse_time(&text).ok().map(cavra_engine::time::format_time)
}

/// Which schedules a history reads, as SQL: what to join before each table
/// read (`CROSS JOIN`: SQLite then reads the list first), and the condition
/// on the table's `schedule_id`, whose parameter `?2` is `value`.
struct Scope {
    join: &'static str,
    schedules: &'static str,
    value: rusqlite::types::Value,
}

/// The columns of a plan row, in the order [`SqliteStore::save_plans`] binds them.
const PLAN_INSERT: &str = "INSERT OR FAIL INTO plans (plan_id, schedule_id, generated_at, status, alert_level, document, policy_id, healthy, recorded_at,
     routes_apart, routes, routes_at, routes_at_text)";
const PLAN_COLUMNS: usize = 13;
/// `plans.routes_apart`: the plan's routes have a row each (schema 7 and 8).
const ROUTES_APART: i64 = 1;
/// `plans.routes_apart`: the plan's routes are in its `routes` column (schema 9, `plan_routes.rs`).
const ROUTES_IN_ROW: i64 = 2;
const PEOPLE_INSERT: &str = "INSERT OR FAIL INTO plan_people (person, routes_at, plan_id, positions)";
const CATEGORIES_INSERT: &str = "INSERT OR FAIL INTO plan_categories (action, category, routes_at, plan_id, positions)";
/// The routes of a plan's row at the positions its index row `k` lists (`r` its routes).
const AT_POSITIONS: &str = "instr(k.positions, ',' || r.key || ',') > 0";
/// Rows of `plan_people` and `plan_categories` per INSERT.
const INDEX_ROWS_PER_INSERT: usize = 200;
/// The columns of a route row, in the order [`SqliteStore::insert_routes`] binds them.
const ROUTE_INSERT: &str = "INSERT OR FAIL INTO route_decisions (route_id, plan_id, schedule_id, owner, escalation_owner, provider, action, category,
     created_at, document, notification_id, escalates, recorded_at, plan_position, escalation_owner_given, acknowledgement_minutes, reason,
     maintenance_window_id, owner_availability, created_at_text, episode, suppressed_until, alert_level)";
const ROUTE_COLUMNS: usize = 23;
/// Rows per INSERT: one statement per many rows opens the table and its
/// indexes once for all of them; both stay far below SQLite's limit of
/// 32,766 parameters. `OR FAIL` because a failed statement fails its whole
/// transaction here: SQLite then keeps no statement journal to undo a
/// statement alone (see [`BatchSettings`]).
const PLANS_PER_INSERT: usize = 100;
const ROUTES_PER_INSERT: usize = 100;

/// A route's columns from column `at` on (after its document), as
/// [`SqliteStore::insert_routes`] wrote them.
fn route_columns_at(row: &rusqlite::Row, at: usize) -> rusqlite::Result<RouteColumns> {
    Ok(RouteColumns {
        route_id: text(row, at)?,
        plan_id: text(row, at + 1)?,
        schedule_id: text(row, at + 2)?,
        owner: text(row, at + 3)?,
        escalation_owner: text(row, at + 4)?,
        escalation_owner_given: row.get(at + 5)?,
        provider: text(row, at + 6)?,
        action: text(row, at + 7)?,
        category: text(row, at + 8)?,
        acknowledgement_minutes: row.get(at + 9)?,
        reason: optional_text(row, at + 10)?,
        maintenance_window_id: optional_text(row, at + 11)?,
        owner_availability: optional_text(row, at + 12)?,
        created_at: row.get(at + 13)?,
        created_at_text: optional_text(row, at + 14)?,
        episode: optional_text(row, at + 15)?,
        suppressed_until: optional_text(row, at + 16)?,
        notification_id: optional_text(row, at + 17)?,
        escalates: optional_text(row, at + 18)?,
        alert_level: optional_text(row, at + 19)?,
        recorded_at: row.get(at + 20)?,
    })
}

/// A text column read into a route's [`Text`] from the row's own bytes.
fn text(row: &rusqlite::Row, column: usize) -> rusqlite::Result<Text> {
    match row.get_ref(column)?.as_str() {
        Ok(text) => Ok(text.into()),
        // Not text: the error `get` gives, which names the column.
        Err(_) => row.get::<_, String>(column).map(Text::from),
    }
}

/// A text column that may be null, read as [`text`] is.
fn optional_text(row: &rusqlite::Row, column: usize) -> rusqlite::Result<Option<Text>> {
    match row.get_ref(column)?.as_str_or_null() {
        Ok(text) => Ok(text.map(Text::from)),
        Err(_) => row.get::<_, Option<String>>(column).map(|text| text.map(Text::from)),
    }
}

/// `INSERT ... VALUES (?, ...), ... tail` for `rows` rows of `columns` parameters.
fn rows_sql(insert: &str, columns: usize, rows: usize, tail: &str) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    format!("{insert} VALUES {}{tail}", vec![row.as_str(); rows].join(", "))
}

/// An INSERT of many rows per statement, for one batch: the statement for
/// a full chunk of rows is made and looked up once and kept, its values
/// bound anew for each chunk. Made per chunk, its SQL (a hundred rows of
/// placeholders) was formatted and hashed again each time, and handing it
/// back to the cache cleared its values one by one. A last, shorter chunk
/// gets its own.
struct Statements<'c> {
    tx: &'c rusqlite::Transaction<'c>,
    insert: &'c str,
    columns: usize,
    per_statement: usize,
    tail: &'c str,
    full: Option<rusqlite::CachedStatement<'c>>,
    short: Option<rusqlite::CachedStatement<'c>>,
}

impl<'c> Statements<'c> {
    fn new(tx: &'c rusqlite::Transaction<'c>, insert: &'c str, columns: usize, per_statement: usize, tail: &'c str) -> Statements<'c> {
        Statements { tx, insert, columns, per_statement, tail, full: None, short: None }
    }

    /// The statement for a chunk of `rows` rows (at most `per_statement`).
    fn for_rows(&mut self, rows: usize) -> rusqlite::Result<&mut rusqlite::CachedStatement<'c>> {
        let sql = || rows_sql(self.insert, self.columns, rows, self.tail);
        if rows == self.per_statement {
            let statement = match self.full.take() {
                Some(statement) => statement,
                None => self.tx.prepare_cached(&sql())?,
            };
            return Ok(self.full.insert(statement));
        }
        let statement = self.tx.prepare_cached(&sql())?;
        Ok(self.short.insert(statement))
    }
}

/// The rows of `plan_people` and `plan_categories` for a batch's plans
/// (those kept in their plan's row), taken from their encodings and put in
/// their tables' key order before the store is locked: a B-tree then grows
/// at one place, each insert finding its page where the last one left it
/// (about 15% of a batch's time when routes had rows of their own).
struct IndexRows<'p> {
    /// Key (person, routes_at DESC, plan_id).
    people: Vec<IndexRow<&'p str>>,
    /// Key (action, category, routes_at DESC, plan_id).
    categories: Vec<IndexRow<(&'p str, &'p str)>>,
}

struct IndexRow<K> {
    key: K,
    at: i64,
    /// The place of its plan in the batch.
    plan: usize,
    positions: String,
}

impl<'p> IndexRows<'p> {
    fn take(plans: &'p [Plan], encoded: &mut [EncodedPlan<'p>]) -> IndexRows<'p> {
        let mut rows = IndexRows { people: Vec::new(), categories: Vec::new() };
        for (plan, encoding) in encoded.iter_mut().enumerate() {
            if let PlanRoutes::InRow { at, people, categories, .. } = &mut encoding.routes {
                let at = *at;
                rows.people.extend(std::mem::take(people).into_iter().map(|(key, positions)| IndexRow { key, at, plan, positions }));
                rows.categories.extend(std::mem::take(categories).into_iter().map(|(key, positions)| IndexRow { key, at, plan, positions }));
            }
        }
        if rows.people.is_empty() && rows.categories.is_empty() {
            return rows;
        }
        // Sorted by numbers standing for the texts (each text's rank among
        // its kind): the batch's tens of thousands of rows would otherwise
        // compare owner names and plan ids a million times.
        let mut by_id: Vec<usize> = (0..plans.len()).collect();
        by_id.sort_unstable_by_key(|&i| plans[i].plan_id.as_str());
        let mut plan_rank = vec![0; plans.len()];
        for (rank, &i) in by_id.iter().enumerate() {
            plan_rank[i] = rank;
        }
        let people = ranks(rows.people.iter().map(|row| row.key));
        rows.people.sort_by_cached_key(|row| (people[&row.key], std::cmp::Reverse(row.at), plan_rank[row.plan]));
        let categories = ranks(rows.categories.iter().map(|row| row.key));
        rows.categories.sort_by_cached_key(|row| (categories[&row.key], std::cmp::Reverse(row.at), plan_rank[row.plan]));
        rows
    }
}

/// Each distinct value's place among them, in their order.
fn ranks<T: Ord + std::hash::Hash + Copy>(values: impl Iterator<Item = T>) -> FxHashMap<T, usize> {
    let mut distinct: Vec<T> = values.collect::<FxHashSet<T>>().into_iter().collect();
    distinct.sort_unstable();
    distinct.into_iter().enumerate().map(|(rank, value)| (value, rank)).collect()
}

/// The page cache SQLite keeps by default (`PRAGMA cache_size`, in KiB when negative).
const DEFAULT_CACHE_KIB: i64 = 2000;

/// How a batch of plans is written, for the length of its transaction (back
/// to the defaults when dropped, on the connection only this batch uses):
/// - a page cache that holds everything the batch changes: with the default
///   2 MB, SQLite writes changed pages out to the WAL before the commit and
///   reads them back for the next rows;
/// - foreign keys off: a multi-row INSERT into a table with a foreign key
///   makes SQLite keep a statement journal, a copy of every page the
///   statement changes (measured: a third of the time of a 10,000-plan
///   batch), to undo the statement alone. [`SqliteStore::save_plans`]
///   checks the one reference itself (each route names its plan, written in
///   the same transaction), and undoes a failed batch whole.
struct BatchSettings<'c> {
    conn: &'c Connection,
    cache: bool,
}

impl<'c> BatchSettings<'c> {
    /// `bytes`: about what the batch writes. The cache gets room for three
    /// times that (rows, index entries, pages split on the way).
    fn apply(conn: &'c Connection, bytes: usize) -> rusqlite::Result<BatchSettings<'c>> {
        // Set outside a transaction, or SQLite ignores it.
        conn.pragma_update(None, "foreign_keys", false)?;
        let kib = i64::try_from(bytes / 1024).unwrap_or(i64::MAX).saturating_mul(3);
        // The cache is only a hint: when it cannot be set, the write is slower, not wrong.
        let cache = kib > DEFAULT_CACHE_KIB && conn.pragma_update(None, "cache_size", -kib).is_ok();
        Ok(BatchSettings { conn, cache })
    }
}

impl Drop for BatchSettings<'_> {
    fn drop(&mut self) {
        // After the transaction (dropped before this): foreign keys on for every other write.
        let _ = self.conn.pragma_update(None, "foreign_keys", true);
        if self.cache {
            let _ = self.conn.pragma_update(None, "cache_size", -DEFAULT_CACHE_KIB);
            let _ = self.conn.execute_batch("PRAGMA shrink_memory");
        }
    }
}

/// A plan checked and encoded for its row.
struct EncodedPlan<'p> {
    generated_at: i64,
    /// Its document without its routes.
    document: String,
    routes: PlanRoutes<'p>,
}

impl EncodedPlan<'_> {
    /// About the bytes its rows and index entries take.
    fn size(&self) -> usize {
        self.document.len()
            + match &self.routes {
                PlanRoutes::InRow { routes, .. } => routes.len() + 256,
                PlanRoutes::Apart(routes) => routes.iter().map(|r| r.as_ref().map_or(0, EncodedRoute::size)).sum(),
            }
    }
}

/// Where a plan's routes are written.
enum PlanRoutes<'r> {
    /// In the plan's row: their array (`plan_routes.rs`), and the time they share.
    InRow {
        /// SQLite's binary JSON (`plan_routes.rs`).
        routes: Vec<u8>,
        at: i64,
        /// The time as written, when the store's own form of it differs.
        at_text: Option<&'r str>,
        /// The rows naming the people and the categories of its routes
        /// (`plan_routes::people`, `plan_routes::categories`), made with the
        /// rest on every core.
        people: Vec<(&'r str, String)>,
        categories: Vec<((&'r str, &'r str), String)>,
    },
    /// A row each, each checked (its failure kept with it).
    Apart(Vec<Result<EncodedRoute<'r>, StoreError>>),
}

/// A route decision checked and encoded for its row.
struct EncodedRoute<'r> {
    route: &'r RouteRecord,
    /// Where it stands in its plan's `route_decisions`; none for a route added later.
    position: Option<i64>,
    created_at: i64,
    /// `created_at` as written, when the store's own form of the time differs.
    created_at_text: Option<&'r str>,
}

impl EncodedRoute<'_> {
    /// About the bytes its row and index entries take.
    fn size(&self) -> usize {
        let route = self.route;
        let texts = [&route.reason, &route.maintenance_window_id, &route.owner_availability, &route.episode, &route.suppressed_until, &route.escalates];
        let named =
            [&route.route_id, &route.plan_id, &route.schedule_id, &route.owner, &route.provider, &route.action, &route.category, &route.notification_id];
        // Keys repeated in the indexes, and each value's header and numbers.
        2 * named.iter().map(|t| t.len()).sum::<usize>() + texts.iter().map(|t| t.as_ref().map_or(0, |t| t.len())).sum::<usize>() + 96
    }
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_store(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cavra-store-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("nested/cavra.db")
    }

    #[test]
    fn open_creates_folders_uses_wal_and_migrates() {
        let path = temp_store("wal");
        let store = SqliteStore::open(&path).unwrap();
        let mode: String = store.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let page_size: i64 = store.conn().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        assert_eq!(page_size, PAGE_SIZE);
        assert_eq!(store.version().unwrap(), MIGRATIONS.len() as i64);
        let indexes: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'route_decisions' AND name LIKE 'route_decisions_%'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(indexes, 7);
        drop(store);
        // Opening again applies nothing twice.
        assert_eq!(SqliteStore::open(&path).unwrap().version().unwrap(), MIGRATIONS.len() as i64);
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    /// The plans of a store as its rows hold them, by plan id, with whether the row keeps its routes apart.
    fn plan_rows(store: &SqliteStore) -> Vec<(String, String, bool)> {
        let conn = store.conn();
        let mut query = conn.prepare("SELECT plan_id, document, routes_apart FROM plans ORDER BY plan_id").unwrap();
        query.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn plans_written_before_schema_7_are_read_as_they_were_written_beside_new_ones() {
        // A store written by cavra 0.1 (tests/fixtures/store-v0.1.md), upgraded through every migration.
        let path = temp_store("layout");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/store-v0.1.sqlite"), &path).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.version().unwrap(), SCHEMA_VERSION as i64);
        let page_size: i64 = store.conn().query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        assert_eq!(page_size, 4096, "a store keeps the page size it was created with");
        let old = plan_rows(&store);
        assert!(!old.is_empty() && old.iter().all(|(_, document, apart)| !apart && document.contains("\"route_id\"")), "old rows keep their documents");
        let latest = store.latest_plans(None).unwrap();
        assert!(!latest.is_empty());
        for plan in &latest {
            let (_, document, _) = old.iter().find(|(id, ..)| *id == plan.plan_id).unwrap();
            let written: Plan = serde_json::from_str(document).unwrap();
            assert!(!written.route_decisions.is_empty());
            assert_eq!(*plan, written, "read as the old row holds it");
        }

        // A new plan of the same schedule, later, with an extra twist in its texts: kept apart, read back byte for byte.
        let mut plan = latest[0].clone();
        plan.generated_at = "2026-06-01T00:00:00Z".into();
        plan.plan_id = "plan_0000000000000001".into();
        plan.reason = "a \"quoted\" reason\nwith a line break".into();
        for (i, route) in plan.route_decisions.iter_mut().enumerate() {
            route.plan_id = plan.plan_id.clone().into();
            route.route_id = format!("route_{i:016x}").into();
            route.created_at = plan.generated_at.clone().into();
            // Text that JSON escapes, and a fraction of a minute, in the plan's row.
            route.reason = Some(format!("route {i} é \"quoted\"\n\u{1}").into());
            route.acknowledgement_minutes = Some(Minutes(7.5 + i as f64));
        }
        plan.route_decisions.reverse();
        assert_eq!(store.save_plan(&plan).unwrap(), SaveOutcome::Stored { routes: plan.route_decisions.len() });
        // An escalation added to the plan later is listed with the routes, never in the plan.
        let mut escalation = plan.route_decisions[0].clone();
        escalation.route_id = "route_escalation".into();
        escalation.escalates = Some(escalation.notification_id.clone());
        escalation.notification_id = "ntf_escalation".into();
        assert_eq!(store.save_routes(std::slice::from_ref(&escalation)).unwrap(), SaveOutcome::Stored { routes: 1 });
        let row = plan_rows(&store).into_iter().find(|(id, ..)| *id == plan.plan_id).unwrap();
        assert!(row.2 && !row.1.contains("route_id") && row.1.contains("\"route_decisions\":[]"), "{}", row.1);
        // The plan's routes are in its own row (schema 9); only the escalation
        // has a row of its own, its fields in columns (schema 8), no document.
        assert_eq!(routes_in_row(&store, &plan.plan_id), Some(plan.route_decisions.len()));
        assert_eq!(route_documents(&store, &plan.plan_id), vec![String::new()]);
        let read = store.latest_plans(None).unwrap();
        let again = read.iter().find(|p| p.schedule_id == plan.schedule_id).unwrap();
        assert_eq!(serde_json::to_string(again).unwrap(), serde_json::to_string(&plan).unwrap());
        let listed = store.routes(&RouteFilter { since: Some(cavra_engine::time::parse_time(&plan.generated_at).unwrap()), ..RouteFilter::default() }).unwrap();
        assert_eq!(listed.len(), plan.route_decisions.len() + 1, "the plan's routes and the escalation");

        // A plan whose routes do not share one time as written (cavra never
        // writes one) keeps a row per route, and reads back as it was written.
        let mut apart = plan.clone();
        apart.plan_id = "plan_0000000000000002".into();
        apart.generated_at = "2026-06-02T00:00:00Z".into();
        let mut second = apart.route_decisions[0].clone();
        second.provider = "webhook".into();
        apart.route_decisions.push(second);
        for (i, route) in apart.route_decisions.iter_mut().enumerate() {
            route.plan_id = apart.plan_id.clone().into();
            route.route_id = format!("route_apart_{i}").into();
            route.created_at = if i == 0 { "2026-06-02T02:00:00+02:00".into() } else { apart.generated_at.clone().into() };
        }
        assert_eq!(store.save_plan(&apart).unwrap(), SaveOutcome::Stored { routes: apart.route_decisions.len() });
        assert_eq!(routes_in_row(&store, &apart.plan_id), None);
        assert_eq!(route_documents(&store, &apart.plan_id), vec![String::new(); apart.route_decisions.len()]);
        let read = store.latest_plans(None).unwrap();
        let again = read.iter().find(|p| p.schedule_id == apart.schedule_id).unwrap();
        assert_eq!(serde_json::to_string(again).unwrap(), serde_json::to_string(&apart).unwrap());
        // As of before it, the old plan is still read from its old row.
        let before = store.latest_plans(Some(cavra_engine::time::parse_time("2026-05-31T00:00:00Z").unwrap())).unwrap();
        assert_eq!(before, latest);
        drop(store);
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    /// How many routes a plan keeps in its own row; none when it keeps them apart.
    fn routes_in_row(store: &SqliteStore, plan_id: &str) -> Option<usize> {
        let sql = "SELECT json_array_length(routes) FROM plans WHERE plan_id = ?1 AND routes_apart = 2";
        store.conn().query_row(sql, [plan_id], |r| r.get::<_, i64>(0)).optional().unwrap().map(|n| n as usize)
    }

    /// The documents of a plan's route rows.
    fn route_documents(store: &SqliteStore, plan_id: &str) -> Vec<String> {
        let conn = store.conn();
        let mut query = conn.prepare("SELECT document FROM route_decisions WHERE plan_id = ?1").unwrap();
        query.query_map([plan_id], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    }

    /// Every route a store holds: route rows, and routes in plans' rows.
    fn stored_routes(store: &SqliteStore) -> usize {
        let sql = "SELECT (SELECT count(*) FROM route_decisions) + (SELECT coalesce(sum(json_array_length(routes)), 0) FROM plans)";
        store.conn().query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as usize
    }

    #[test]
    fn a_batch_with_one_bad_plan_stores_nothing() {
        let path = temp_store("bad-batch");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/store-v0.1.sqlite"), &path).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        let (plans, routes) = (plan_rows(&store), stored_routes(&store));
        let template = store.latest_plans(None).unwrap().remove(0);
        let batch: Vec<Plan> = (0..250)
            .map(|n| {
                let mut plan = template.clone();
                plan.plan_id = format!("plan_{n:016x}");
                for (i, route) in plan.route_decisions.iter_mut().enumerate() {
                    route.plan_id = plan.plan_id.clone().into();
                    route.route_id = format!("route_{n:08x}{i:08x}").into();
                }
                plan
            })
            .collect();
        // One bad route time in the last plan, one bad plan time, one route of another plan: each fails the whole batch.
        let mut bad_route = batch.clone();
        bad_route[249].route_decisions[0].created_at = "yesterday".into();
        let mut bad_plan = batch.clone();
        bad_plan[120].generated_at = "tomorrow".into();
        let mut stray = batch.clone();
        stray[200].route_decisions[0].plan_id = "plan_elsewhere".into();
        for (broken, message) in
            [(bad_route, "plan: route_decisions[0]: `created_at`"), (bad_plan, "plan: `generated_at`"), (stray, "`plan_id` is plan_elsewhere")]
        {
            let error = store.save_plans(&broken, &[]).unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
            assert_eq!((plan_rows(&store), stored_routes(&store)), (plans.clone(), routes), "nothing of the batch is kept");
        }
        let outcomes = store.save_plans(&batch, &[]).unwrap();
        assert!(outcomes.iter().all(|o| *o == SaveOutcome::Stored { routes: template.route_decisions.len() }));
        assert_eq!(stored_routes(&store), routes + 250 * template.route_decisions.len());
        drop(store);
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn a_newer_store_is_refused() {
        let path = temp_store("newer");
        let store = SqliteStore::open(&path).unwrap();
        store.conn().pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        let error = SqliteStore::open(&path).err().unwrap().to_string();
        assert_eq!(
            error,
            format!("the store {} has schema version 99, newer than this build of cavra knows ({}); it is left untouched", path.display(), MIGRATIONS.len())
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }
}
