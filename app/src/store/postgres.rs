//! The shared store: the records of the embedded store, in PostgreSQL, so
//! that several `cavra api` instances (and CLI runs) on several machines
//! work on one database (README, "Running several instances").
//!
//! - A bounded r2d2 pool of synchronous `postgres` clients: the connect
//!   timeout is the URL's `connect_timeout` (5 s when it sets none), every
//!   statement has a timeout, and a connection that broke (a restarted
//!   server) is replaced at its next checkout, so an instance recovers by
//!   itself when its database comes back. A request waiting for a
//!   connection fails as soon as an attempt to connect fails (503 after at
//!   most the connect timeout), and waits up to the statement timeout when
//!   the pool is only busy.
//! - The schema is versioned SQL ([`MIGRATIONS`]), applied at open in one
//!   transaction under an advisory lock, so instances starting together
//!   never race; a database whose schema is newer than this build knows is
//!   left untouched ([`StoreError::TooNew`]).
//! - The same tables, columns and indexes as SQLite, with times as integer
//!   microseconds and each record's JSON document kept verbatim, so both
//!   backends answer with the same JSON. Text columns use the "C" collation
//!   so ties sort as SQLite sorts them (by bytes).
//! - Claims across instances are unique rows, not application locks: a
//!   claim is an upsert that takes the row only when it is free, expired or
//!   the holder's own, and the checks that follow run while the row is
//!   locked by that upsert (see [`Store::claim`]).
//! - The connection URL is private: the store is named `postgres://…/DBNAME`
//!   and every error text is stripped of the URL's user, password and hosts.

use super::postgres_tls;
use super::postgres_url::PostgresUrl;
use super::route_columns::{created_at_text, select_list, RouteColumns};
use super::{wall_micros, Cause, Claim, History, RouteFilter, SaveOutcome, Store, StoreError, SuppressedCount, RECOVERY_KIND, TREND_KIND};
use crate::records::{Acknowledgement, AlertLevel, DeliveryAttempt, Plan, PolicyRecord, Recovery, Retry, RouteRecord, Text, Trend};
use postgres::types::ToSql;
use postgres::{Client, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Schema migrations; migration `i` brings the database to version `i + 1`
/// (kept in `cavra_schema`). Version 1 is the embedded store's schema 6,
/// version 2 its schema 7, version 3 its schema 8.
const MIGRATIONS: &[&str] = &[
    // 1: every table and index of the embedded store.
    r#"CREATE TABLE plans (
         plan_id TEXT COLLATE "C" PRIMARY KEY,
         schedule_id TEXT COLLATE "C" NOT NULL,
         generated_at BIGINT NOT NULL,
         status TEXT COLLATE "C" NOT NULL,
         alert_level TEXT COLLATE "C" NOT NULL,
         document TEXT NOT NULL,
         policy_id TEXT COLLATE "C",
         healthy BOOLEAN NOT NULL DEFAULT FALSE,
         recorded_at BIGINT
     );
     CREATE INDEX plans_healthy ON plans (schedule_id, generated_at) WHERE healthy;
     CREATE INDEX plans_latest ON plans (schedule_id, generated_at DESC, plan_id DESC);
     CREATE TABLE route_decisions (
         route_id TEXT COLLATE "C" PRIMARY KEY,
         plan_id TEXT COLLATE "C" NOT NULL REFERENCES plans(plan_id),
         schedule_id TEXT COLLATE "C" NOT NULL,
         owner TEXT COLLATE "C" NOT NULL,
         escalation_owner TEXT COLLATE "C" NOT NULL,
         provider TEXT COLLATE "C" NOT NULL,
         action TEXT COLLATE "C" NOT NULL,
         category TEXT COLLATE "C" NOT NULL,
         created_at BIGINT NOT NULL,
         document TEXT NOT NULL,
         notification_id TEXT COLLATE "C",
         escalates TEXT COLLATE "C",
         recorded_at BIGINT
     );
     CREATE INDEX route_decisions_recent ON route_decisions (created_at DESC, route_id);
     CREATE INDEX route_decisions_owner ON route_decisions (owner, created_at DESC, route_id);
     CREATE INDEX route_decisions_escalation_owner ON route_decisions (escalation_owner, created_at DESC, route_id);
     CREATE INDEX route_decisions_schedule ON route_decisions (schedule_id, created_at DESC, route_id);
     CREATE INDEX route_decisions_provider ON route_decisions (provider, created_at DESC, route_id);
     CREATE INDEX route_decisions_action_category ON route_decisions (action, category, created_at DESC, route_id);
     CREATE INDEX route_decisions_plan ON route_decisions (plan_id);
     CREATE INDEX route_decisions_notification ON route_decisions (notification_id, created_at DESC, route_id) WHERE notification_id IS NOT NULL;
     CREATE TABLE acknowledgements (
         ack_id TEXT COLLATE "C" PRIMARY KEY,
         schedule_id TEXT COLLATE "C" NOT NULL,
         provider TEXT COLLATE "C" NOT NULL,
         acknowledged_by TEXT COLLATE "C" NOT NULL,
         acknowledgement_state TEXT COLLATE "C" NOT NULL,
         plan_id TEXT COLLATE "C",
         external_ref TEXT COLLATE "C",
         notes TEXT,
         created_at BIGINT NOT NULL,
         document TEXT NOT NULL,
         recorded_at BIGINT
     );
     CREATE INDEX acknowledgements_schedule_provider ON acknowledgements (schedule_id, provider, created_at);
     CREATE TABLE metadata (
         metadata_id TEXT COLLATE "C" PRIMARY KEY,
         kind TEXT COLLATE "C" NOT NULL,
         created_at BIGINT NOT NULL,
         document TEXT NOT NULL
     );
     CREATE INDEX metadata_kind ON metadata (kind, created_at);
     CREATE TABLE deliveries (
         delivery_id TEXT COLLATE "C" PRIMARY KEY,
         route_id TEXT COLLATE "C" NOT NULL,
         plan_id TEXT COLLATE "C" NOT NULL,
         schedule_id TEXT COLLATE "C" NOT NULL,
         provider TEXT COLLATE "C" NOT NULL,
         notification_key TEXT COLLATE "C" NOT NULL,
         attempt BIGINT NOT NULL,
         status_code BIGINT,
         outcome TEXT COLLATE "C" NOT NULL,
         started_at BIGINT NOT NULL,
         completed_at BIGINT NOT NULL,
         document TEXT NOT NULL,
         notification_id TEXT COLLATE "C",
         at BIGINT,
         is_final BOOLEAN NOT NULL DEFAULT TRUE,
         recorded_at BIGINT
     );
     CREATE INDEX deliveries_notification ON deliveries (notification_key, outcome);
     CREATE INDEX deliveries_notification_id ON deliveries (notification_id, outcome);
     CREATE INDEX deliveries_plan ON deliveries (plan_id, completed_at);
     CREATE INDEX deliveries_schedule_at ON deliveries (schedule_id, at);
     CREATE INDEX deliveries_provider_final ON deliveries (provider, is_final, at);
     CREATE TABLE policies (
         policy_id TEXT COLLATE "C" PRIMARY KEY,
         document TEXT NOT NULL
     );
     CREATE TABLE retries (
         retry_id TEXT COLLATE "C" PRIMARY KEY,
         approval_id TEXT COLLATE "C" NOT NULL,
         at BIGINT NOT NULL,
         recorded_at BIGINT NOT NULL,
         document TEXT NOT NULL
     );
     CREATE INDEX retries_at ON retries (at);
     CREATE TABLE claims (
         notification_id TEXT COLLATE "C" PRIMARY KEY,
         schedule_id TEXT COLLATE "C" NOT NULL,
         holder TEXT COLLATE "C" NOT NULL,
         claimed_at BIGINT NOT NULL,
         expires_at BIGINT NOT NULL
     );
     CREATE INDEX claims_expiry ON claims (expires_at);"#,
    // 2: a plan's row no longer repeats its routes' text, as in the embedded
    // store's schema 7: a plan written from now on keeps its document with
    // `route_decisions` empty (`routes_apart`), each of its routes its place
    // in the plan (`plan_position`), and reading the plan puts them back.
    // Rows written before keep their whole document and are read as they are.
    r#"ALTER TABLE plans ADD COLUMN routes_apart BOOLEAN NOT NULL DEFAULT FALSE;
     ALTER TABLE route_decisions ADD COLUMN plan_position INTEGER;"#,
    // 3: a route row keeps the route's fields in columns instead of its JSON
    // document, and fewer index entries per route, as in the embedded
    // store's schema 8 (see `route_columns.rs` and that migration).
    r#"ALTER TABLE route_decisions ADD COLUMN escalation_owner_given BOOLEAN;
     ALTER TABLE route_decisions ADD COLUMN acknowledgement_minutes DOUBLE PRECISION;
     ALTER TABLE route_decisions ADD COLUMN reason TEXT;
     ALTER TABLE route_decisions ADD COLUMN maintenance_window_id TEXT COLLATE "C";
     ALTER TABLE route_decisions ADD COLUMN owner_availability TEXT COLLATE "C";
     ALTER TABLE route_decisions ADD COLUMN created_at_text TEXT COLLATE "C";
     ALTER TABLE route_decisions ADD COLUMN episode TEXT COLLATE "C";
     ALTER TABLE route_decisions ADD COLUMN suppressed_until TEXT COLLATE "C";
     ALTER TABLE route_decisions ADD COLUMN alert_level TEXT COLLATE "C";
     DROP INDEX route_decisions_provider;
     DROP INDEX route_decisions_escalation_owner;
     CREATE INDEX route_decisions_escalation_owner ON route_decisions (escalation_owner, created_at DESC, route_id) WHERE escalation_owner <> owner;
     DROP INDEX route_decisions_notification;
     CREATE INDEX route_decisions_notification ON route_decisions (notification_id) WHERE notification_id IS NOT NULL;"#,
];

/// The schema version this build writes in PostgreSQL.
pub const POSTGRES_SCHEMA_VERSION: usize = MIGRATIONS.len();
/// The advisory lock that migrations hold ("cavra" in ASCII): one instance
/// migrates, the others wait and then find the work done.
const MIGRATION_LOCK: i64 = 0x63_6176_7261;
/// Rows per INSERT of a batch: large enough that a 10,000-plan batch is a
/// few statements, small enough to keep each statement's parameters modest.
const BATCH_ROWS: usize = 2000;

/// How the pool behaves (`cavra api --store-pool-size`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The most connections one process holds.
    pub pool_size: u32,
    /// How long one statement may run before the server cancels it.
    pub statement_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions { pool_size: 10, statement_timeout: Duration::from_secs(30) }
    }
}

/// Makes and checks the pool's connections; its errors are already redacted.
struct Connections {
    url: PostgresUrl,
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    statement_timeout: Duration,
    failures: Arc<Failures>,
}

/// The newest failure to connect, and when: a request waiting for a
/// connection tells "the database cannot be reached or refuses us" (a
/// failure since it began waiting) from "every connection is busy" (none).
#[derive(Default)]
struct Failures(Mutex<Option<Failure>>);

#[derive(Clone)]
struct Failure {
    at: Instant,
    message: String,
    /// The server refused the login or has no such database: a setting to
    /// fix, not an outage (`cannot open` rather than `cannot reach`).
    refused: bool,
}

impl Failures {
    fn record(&self, failure: Option<Failure>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    fn since(&self, start: Instant) -> Option<Failure> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref().filter(|f| f.at >= start).cloned()
    }
}

/// How long a request waits between two looks at the pool.
const POLL: Duration = Duration::from_millis(50);

impl r2d2::ManageConnection for Connections {
    type Connection = Client;
    type Error = Cause;

    fn connect(&self) -> Result<Client, Cause> {
        let connected = self.config.connect(self.tls.clone()).and_then(|mut client| {
            client.batch_execute(&format!("SET statement_timeout = {}", self.statement_timeout.as_millis().max(1)))?;
            Ok(client)
        });
        let failure = connected.as_ref().err().map(|e| Failure {
            at: Instant::now(),
            message: self.url.cause(e).to_string(),
            // invalid_authorization_specification (28...), invalid_catalog_name (3D000)
            refused: e.as_db_error().is_some_and(|db| db.code().code().starts_with("28") || db.code().code() == "3D000"),
        });
        self.failures.record(failure.clone());
        connected.map_err(|_| Cause(failure.map(|f| f.message).unwrap_or_default()))
    }

    fn is_valid(&self, client: &mut Client) -> Result<(), Cause> {
        client.simple_query("").map(|_| ()).map_err(|e| self.url.cause(&e))
    }

    fn has_broken(&self, client: &mut Client) -> bool {
        client.is_closed()
    }
}

type Pooled = r2d2::PooledConnection<Connections>;

/// The connection pool, closed on a thread of its own: closing a
/// `postgres::Client` blocks on the client's private runtime, which panics
/// on a tokio worker thread (where `cavra api` drops its last store handle
/// as it shuts down).
struct Pool(Option<r2d2::Pool<Connections>>);

impl std::ops::Deref for Pool {
    type Target = r2d2::Pool<Connections>;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("the pool is taken only when it is dropped")
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            // A thread that cannot be started leaves the pool to close here.
            let closing = std::thread::Builder::new().name("cavra-pool-close".into()).spawn(move || drop(pool));
            if let Ok(closing) = closing {
                let _ = closing.join();
            }
        }
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    url: PostgresUrl,
    shown: String,
    failures: Arc<Failures>,
    /// How long a request waits for a busy pool (the statement timeout).
    busy_wait: Duration,
}

impl PostgresStore {
    /// Connects, and brings the schema up to date (or refuses a newer one).
    pub fn open(url: &PostgresUrl, options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let shown = url.shown();
        let connection = url.connection()?;
        let tls = postgres_tls::connector(&connection).map_err(|source| StoreError::Open { path: shown.clone(), source })?;
        // r2d2 retries a failed connection in the background with delays up to half this.
        let wait = connection.config.get_connect_timeout().copied().unwrap_or(super::postgres_url::DEFAULT_CONNECT_TIMEOUT) + Duration::from_secs(1);
        let failures = Arc::new(Failures::default());
        let connections =
            Connections { url: url.clone(), config: connection.config, tls, statement_timeout: options.statement_timeout, failures: failures.clone() };
        // No connection is made here: the first use makes it, so an
        // instance starts (and answers 503) while its database is down.
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(2))
            .min_idle(Some(0))
            .connection_timeout(wait)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(connections);
        let store = PostgresStore { pool: Pool(Some(pool)), url: url.clone(), shown, failures, busy_wait: options.statement_timeout.max(wait) };
        store.migrate()?;
        Ok(store)
    }

    /// `postgres://…/DBNAME`.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A connection from the pool. A failure to connect since the request
    /// began waiting fails it at once (the database is away, or refuses the
    /// login); a pool whose connections are all busy (a burst, connections
    /// still being made) is waited for up to the statement timeout, so load
    /// alone is never reported as the database being away.
    fn client(&self) -> Result<Pooled, StoreError> {
        let start = Instant::now();
        loop {
            let error = match self.pool.get_timeout(POLL) {
                Ok(client) => return Ok(client),
                Err(e) => e,
            };
            let path = self.shown.clone();
            if let Some(failure) = self.failures.since(start) {
                let source = Cause(failure.message);
                return Err(if failure.refused { StoreError::Open { path, source } } else { StoreError::Unavailable { path, source } });
            }
            if start.elapsed() >= self.busy_wait {
                let message = format!("{error} (all {} connections busy for {} s)", self.pool.max_size(), self.busy_wait.as_secs());
                return Err(StoreError::Unavailable { path, source: Cause(message) });
            }
        }
    }

    /// A failed statement: the server gone (or going) is "cannot reach",
    /// anything else a failed read or write.
    fn failed(&self, e: postgres::Error, write: bool) -> StoreError {
        let io = std::error::Error::source(&e).is_some_and(|cause| cause.is::<std::io::Error>());
        let gone = e.is_closed() || io || e.as_db_error().is_some_and(|db| matches!(db.code().code().get(..2), Some("08" | "57")));
        let source = self.url.cause(&e);
        let path = self.shown.clone();
        match (gone, write) {
            (true, _) => StoreError::Unavailable { path, source },
            (false, true) => StoreError::Write { path, source },
            (false, false) => StoreError::Read { path, source },
        }
    }

    fn version(&self, client: &mut Client) -> Result<i64, StoreError> {
        let read = |e| self.failed(e, false);
        let exists: bool = client.query_one("SELECT to_regclass('cavra_schema') IS NOT NULL", &[]).map_err(read)?.get(0);
        if !exists {
            return Ok(0);
        }
        Ok(client.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM cavra_schema", &[]).map_err(read)?.get(0))
    }

    fn too_new(&self, found: i64) -> Result<(), StoreError> {
        if found > MIGRATIONS.len() as i64 {
            return Err(StoreError::TooNew { path: self.shown.clone(), found, known: MIGRATIONS.len() });
        }
        Ok(())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client()?;
        let found = self.version(&mut client)?;
        self.too_new(found)?;
        if found == MIGRATIONS.len() as i64 {
            return Ok(());
        }
        let failed = |version: usize| move |e: postgres::Error| StoreError::Migrate { path: self.shown.clone(), version, source: self.url.cause(&e) };
        let mut tx = client.transaction().map_err(failed(1))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(failed(1))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS cavra_schema (version INTEGER NOT NULL)").map_err(failed(1))?;
        // Another instance may have migrated while we waited for the lock.
        let found: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM cavra_schema", &[]).map_err(failed(1))?.get(0);
        self.too_new(found)?;
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            tx.batch_execute(sql).map_err(failed(index + 1))?;
        }
        let known = MIGRATIONS.len() as i32;
        tx.execute("DELETE FROM cavra_schema", &[]).map_err(failed(MIGRATIONS.len()))?;
        tx.execute("INSERT INTO cavra_schema (version) VALUES ($1)", &[&known]).map_err(failed(MIGRATIONS.len()))?;
        tx.commit().map_err(failed(MIGRATIONS.len()))
    }

    fn invalid(&self, message: impl Into<String>) -> StoreError {
        StoreError::Invalid { path: self.shown.clone(), message: message.into() }
    }

    /// Microseconds of an RFC 3339 time, or an error naming the field.
    fn micros(&self, what: &str, field: &str, text: &str) -> Result<i64, StoreError> {
        cavra_engine::time::parse_time(text).map_err(|e| self.invalid(format!("{what}: `{field}`: {e}")))
    }

    fn document(&self, record: &impl Serialize) -> Result<String, StoreError> {
        serde_json::to_string(record).map_err(|source| StoreError::Corrupt { path: self.shown.clone(), source })
    }

    fn documents<T: DeserializeOwned>(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<T>, StoreError> {
        self.documents_on(&mut *self.client()?, sql, params)
    }

    /// As [`PostgresStore::documents`], on a connection the caller holds
    /// (one checkout for several queries: each checkout is a round trip).
    fn documents_on<T: DeserializeOwned>(&self, client: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<T>, StoreError> {
        let rows = client.query(sql, params).map_err(|e| self.failed(e, false))?;
        rows.iter()
            .map(|row| {
                let text: &str = row.get(0);
                serde_json::from_str(text).map_err(|source| StoreError::Corrupt { path: self.shown.clone(), source })
            })
            .collect()
    }

    /// Route decisions selected with [`select_list`] first.
    fn stored_routes(&self, client: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<RouteRecord>, StoreError> {
        let rows = client.query(sql, params).map_err(|e| self.failed(e, false))?;
        let mut routes = Vec::with_capacity(rows.len());
        for row in &rows {
            routes.extend(self.read_route(row, 0)?);
        }
        Ok(routes)
    }

    /// The route whose [`select_list`] starts at column `first`: from its
    /// document (a row written before schema 3) or its columns; none when
    /// they are null (a join that matched no route).
    fn read_route(&self, row: &postgres::Row, first: usize) -> Result<Option<RouteRecord>, StoreError> {
        let corrupt = |message: String| StoreError::Corrupt { path: self.shown.clone(), source: serde::de::Error::custom(message) };
        match row.try_get::<_, Option<&str>>(first).map_err(|e| self.failed(e, false))? {
            None => Ok(None),
            Some(document) if !document.is_empty() => {
                serde_json::from_str(document).map(Some).map_err(|source| StoreError::Corrupt { path: self.shown.clone(), source })
            }
            Some(_) => route_columns_at(row, first + 1).map_err(|e| self.failed(e, false))?.record().map(Some).map_err(corrupt),
        }
    }

    /// Runs one statement in its own transaction (autocommit): 1 row means stored.
    fn insert_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<SaveOutcome, StoreError> {
        let inserted = self.client()?.execute(sql, params).map_err(|e| self.failed(e, true))?;
        Ok(if inserted == 0 { SaveOutcome::AlreadyStored } else { SaveOutcome::Stored { routes: 0 } })
    }

    /// [`Store::history`] of the schedules `schedules` selects (`$2` is `schedule`).
    fn history_where(&self, schedules: &str, schedule: &(dyn ToSql + Sync), as_of: i64) -> Result<History, StoreError> {
        let params: [&(dyn ToSql + Sync); 2] = [&as_of, schedule];
        let mut client = self.client()?;
        let routes = self.stored_routes(
            &mut client,
            &format!(
                "SELECT DISTINCT ON (notification_id) {} FROM route_decisions
                 WHERE notification_id IS NOT NULL AND created_at <= $1 AND {schedules}
                 ORDER BY notification_id, created_at DESC, route_id DESC",
                select_list("")
            ),
            &params,
        )?;
        let attempts = self.documents_on(
            &mut client,
            &format!(
                "SELECT document FROM deliveries WHERE at <= $1 AND {schedules} AND notification_id IS NOT NULL
                 ORDER BY at, recorded_at, completed_at, attempt"
            ),
            &params,
        )?;
        let acknowledgements = self.documents_on(
            &mut client,
            &format!("SELECT document FROM acknowledgements WHERE created_at <= $1 AND {schedules} ORDER BY created_at DESC, ack_id"),
            &params,
        )?;
        let healthy_plans = client
            .query(
                &format!(
                    "SELECT schedule_id, MAX(generated_at) FROM plans WHERE healthy AND generated_at <= $1 AND {schedules}
                     GROUP BY schedule_id"
                ),
                &params,
            )
            .map_err(|e| self.failed(e, false))?
            .iter()
            .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
            .collect();
        Ok(History { routes, attempts, acknowledgements, healthy_plans })
    }

    /// The columns of route decisions to insert, checked and encoded; each
    /// with its place in its plan, or none (a route added to a plan later).
    fn route_rows<'r>(&self, what: &str, routes: &[(&'r RouteRecord, Option<i32>)], recorded: i64) -> Result<RouteRows<'r>, StoreError> {
        let mut rows = RouteRows::default();
        for (i, (route, position)) in routes.iter().enumerate() {
            rows.route_id.push(route.route_id.to_string());
            rows.plan_id.push(route.plan_id.to_string());
            rows.schedule_id.push(route.schedule_id.to_string());
            rows.owner.push(route.owner.to_string());
            rows.escalation_owner.push(route.escalation_owner_or_owner().to_string());
            rows.provider.push(route.provider.to_string());
            rows.action.push(route.action.to_string());
            rows.category.push(route.category.to_string());
            let created_at = self.micros(&format!("{what}[{i}]"), "created_at", &route.created_at)?;
            rows.created_at.push(created_at);
            rows.notification_id.push(Some(route.notification_id.to_string()).filter(|n| !n.is_empty()));
            rows.escalates.push(route.escalates.as_deref().map(String::from));
            rows.recorded_at.push(recorded);
            rows.plan_position.push(*position);
            rows.escalation_owner_given.push(route.escalation_owner.is_some());
            rows.acknowledgement_minutes.push(route.acknowledgement_minutes.map(|m| m.0));
            rows.reason.push(route.reason.as_deref());
            rows.maintenance_window_id.push(route.maintenance_window_id.as_deref());
            rows.owner_availability.push(route.owner_availability.as_deref());
            rows.created_at_text.push(created_at_text(route, created_at));
            rows.episode.push(route.episode.as_deref());
            rows.suppressed_until.push(route.suppressed_until.as_deref());
            rows.alert_level.push(route.alert_level.map(AlertLevel::as_str));
        }
        Ok(rows)
    }

    /// Inserts route decisions, a batch per statement; a route id already
    /// stored is an error unless `existing_ok` (as in the embedded store).
    fn insert_routes(&self, tx: &mut Transaction<'_>, rows: &RouteRows, existing_ok: bool) -> Result<u64, StoreError> {
        let sql = format!(
            "INSERT INTO route_decisions (route_id, plan_id, schedule_id, owner, escalation_owner, provider, action, category,
                 created_at, document, notification_id, escalates, recorded_at, plan_position, escalation_owner_given, acknowledgement_minutes,
                 reason, maintenance_window_id, owner_availability, created_at_text, episode, suppressed_until, alert_level)
             SELECT route_id, plan_id, schedule_id, owner, escalation_owner, provider, action, category, created_at, '', notification_id,
                 escalates, recorded_at, plan_position, escalation_owner_given, acknowledgement_minutes, reason, maintenance_window_id,
                 owner_availability, created_at_text, episode, suppressed_until, alert_level
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                 $9::bigint[], $10::text[], $11::text[], $12::bigint[], $13::integer[], $14::boolean[], $15::float8[], $16::text[],
                 $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[])
                 AS row (route_id, plan_id, schedule_id, owner, escalation_owner, provider, action, category, created_at, notification_id,
                     escalates, recorded_at, plan_position, escalation_owner_given, acknowledgement_minutes, reason, maintenance_window_id,
                     owner_availability, created_at_text, episode, suppressed_until, alert_level){}",
            if existing_ok { " ON CONFLICT (route_id) DO NOTHING" } else { "" }
        );
        let mut inserted = 0;
        let mut start = 0;
        while start < rows.route_id.len() {
            let end = (start + BATCH_ROWS).min(rows.route_id.len());
            let r = start..end;
            inserted += tx
                .execute(
                    sql.as_str(),
                    &[
                        &&rows.route_id[r.clone()],
                        &&rows.plan_id[r.clone()],
                        &&rows.schedule_id[r.clone()],
                        &&rows.owner[r.clone()],
                        &&rows.escalation_owner[r.clone()],
                        &&rows.provider[r.clone()],
                        &&rows.action[r.clone()],
                        &&rows.category[r.clone()],
                        &&rows.created_at[r.clone()],
                        &&rows.notification_id[r.clone()],
                        &&rows.escalates[r.clone()],
                        &&rows.recorded_at[r.clone()],
                        &&rows.plan_position[r.clone()],
                        &&rows.escalation_owner_given[r.clone()],
                        &&rows.acknowledgement_minutes[r.clone()],
                        &&rows.reason[r.clone()],
                        &&rows.maintenance_window_id[r.clone()],
                        &&rows.owner_availability[r.clone()],
                        &&rows.created_at_text[r.clone()],
                        &&rows.episode[r.clone()],
                        &&rows.suppressed_until[r.clone()],
                        &&rows.alert_level[r],
                    ],
                )
                .map_err(|e| self.failed(e, true))?;
            start = end;
        }
        Ok(inserted)
    }
}

/// A route's columns from column `at` on (after its document), as
/// [`PostgresStore::insert_routes`] wrote them.
fn route_columns_at(row: &postgres::Row, at: usize) -> Result<RouteColumns, postgres::Error> {
    Ok(RouteColumns {
        route_id: text(row, at)?,
        plan_id: text(row, at + 1)?,
        schedule_id: text(row, at + 2)?,
        owner: text(row, at + 3)?,
        escalation_owner: text(row, at + 4)?,
        escalation_owner_given: row.try_get(at + 5)?,
        provider: text(row, at + 6)?,
        action: text(row, at + 7)?,
        category: text(row, at + 8)?,
        acknowledgement_minutes: row.try_get(at + 9)?,
        reason: optional_text(row, at + 10)?,
        maintenance_window_id: optional_text(row, at + 11)?,
        owner_availability: optional_text(row, at + 12)?,
        created_at: row.try_get(at + 13)?,
        created_at_text: optional_text(row, at + 14)?,
        episode: optional_text(row, at + 15)?,
        suppressed_until: optional_text(row, at + 16)?,
        notification_id: optional_text(row, at + 17)?,
        escalates: optional_text(row, at + 18)?,
        alert_level: optional_text(row, at + 19)?,
        recorded_at: row.try_get(at + 20)?,
    })
}

/// A text column read into a route's [`Text`] from the row's own bytes.
fn text(row: &postgres::Row, column: usize) -> Result<Text, postgres::Error> {
    row.try_get::<_, &str>(column).map(Text::from)
}

/// A text column that may be null, read as [`text`] is.
fn optional_text(row: &postgres::Row, column: usize) -> Result<Option<Text>, postgres::Error> {
    Ok(row.try_get::<_, Option<&str>>(column)?.map(Text::from))
}

/// Route decisions as columns, for one `unnest` insert per batch.
#[derive(Default)]
struct RouteRows<'r> {
    route_id: Vec<String>,
    plan_id: Vec<String>,
    schedule_id: Vec<String>,
    owner: Vec<String>,
    escalation_owner: Vec<String>,
    provider: Vec<String>,
    action: Vec<String>,
    category: Vec<String>,
    created_at: Vec<i64>,
    notification_id: Vec<Option<String>>,
    escalates: Vec<Option<String>>,
    recorded_at: Vec<i64>,
    plan_position: Vec<Option<i32>>,
    escalation_owner_given: Vec<bool>,
    acknowledgement_minutes: Vec<Option<f64>>,
    reason: Vec<Option<&'r str>>,
    maintenance_window_id: Vec<Option<&'r str>>,
    owner_availability: Vec<Option<&'r str>>,
    created_at_text: Vec<Option<&'r str>>,
    episode: Vec<Option<&'r str>>,
    suppressed_until: Vec<Option<&'r str>>,
    alert_level: Vec<Option<&'static str>>,
}

/// A plan's own columns, checked and encoded.
struct PlanRow {
    generated_at: i64,
    document: String,
    policy_id: Option<String>,
}

impl Store for PostgresStore {
    fn save_plans(&self, plans: &[Plan], policies: &[PolicyRecord]) -> Result<Vec<SaveOutcome>, StoreError> {
        let recorded = wall_micros();
        // Everything is checked and encoded before the transaction starts.
        let mut rows = Vec::with_capacity(plans.len());
        for plan in plans {
            if plan.plan_id.is_empty() {
                return Err(self.invalid("plan: `plan_id` is missing"));
            }
            rows.push(PlanRow {
                generated_at: self.micros("plan", "generated_at", &plan.generated_at)?,
                // Its routes are kept in their own rows only (schema version 2).
                document: self.document(&plan.without_routes())?,
                policy_id: Some(plan.policy_id.clone()).filter(|p| !p.is_empty()),
            });
        }
        let mut client = self.client()?;
        let write = |e| self.failed(e, true);
        let mut tx = client.transaction().map_err(write)?;
        if !policies.is_empty() {
            let ids: Vec<&str> = policies.iter().map(|p| p.policy_id.as_str()).collect();
            let documents: Vec<&str> = policies.iter().map(|p| p.document.as_str()).collect();
            tx.execute(
                "INSERT INTO policies (policy_id, document) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (policy_id) DO NOTHING",
                &[&ids, &documents],
            )
            .map_err(write)?;
        }
        // Plans a batch per statement; RETURNING names the ones that were new
        // (a plan another instance stored first is left as it is).
        let mut inserted = std::collections::HashSet::new();
        for (chunk, chunk_rows) in plans.chunks(BATCH_ROWS).zip(rows.chunks(BATCH_ROWS)) {
            let ids: Vec<&str> = chunk.iter().map(|p| p.plan_id.as_str()).collect();
            let schedules: Vec<&str> = chunk.iter().map(|p| p.schedule_id.as_str()).collect();
            let generated: Vec<i64> = chunk_rows.iter().map(|r| r.generated_at).collect();
            let statuses: Vec<&str> = chunk.iter().map(|p| p.status.as_str()).collect();
            let levels: Vec<&str> = chunk.iter().map(|p| p.alert_level.as_str()).collect();
            let documents: Vec<&str> = chunk_rows.iter().map(|r| r.document.as_str()).collect();
            let policy_ids: Vec<Option<&str>> = chunk_rows.iter().map(|r| r.policy_id.as_deref()).collect();
            let healthy: Vec<bool> = chunk.iter().map(Plan::is_healthy).collect();
            let recorded_at = vec![recorded; chunk.len()];
            let apart = vec![true; chunk.len()];
            let returned = tx
                .query(
                    "INSERT INTO plans (plan_id, schedule_id, generated_at, status, alert_level, document, policy_id, healthy, recorded_at, routes_apart)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[], $9::bigint[],
                         $10::boolean[])
                     ON CONFLICT (plan_id) DO NOTHING RETURNING plan_id",
                    &[&ids, &schedules, &generated, &statuses, &levels, &documents, &policy_ids, &healthy, &recorded_at, &apart],
                )
                .map_err(write)?;
            inserted.extend(returned.iter().map(|row| row.get::<_, String>(0)));
        }
        // The first of a plan id in the batch is the one stored, as in the embedded store.
        let mut outcomes = Vec::with_capacity(plans.len());
        let mut routes: Vec<(&RouteRecord, Option<i32>)> = Vec::new();
        for plan in plans {
            if inserted.remove(&plan.plan_id) {
                // Checked for the plans stored only, as the embedded store does;
                // an error here rolls the whole batch back.
                for (i, route) in plan.route_decisions.iter().enumerate() {
                    if route.plan_id != plan.plan_id {
                        return Err(self.invalid(format!("plan: route_decisions[{i}]: `plan_id` is {}, not the plan's {}", route.plan_id, plan.plan_id)));
                    }
                }
                routes.extend(plan.route_decisions.iter().enumerate().map(|(i, route)| (route, i32::try_from(i).ok())));
                outcomes.push(SaveOutcome::Stored { routes: plan.route_decisions.len() });
            } else {
                outcomes.push(SaveOutcome::AlreadyStored);
            }
        }
        let route_rows = self.route_rows("plan: route_decisions", &routes, recorded)?;
        self.insert_routes(&mut tx, &route_rows, false)?;
        tx.commit().map_err(write)?;
        Ok(outcomes)
    }

    fn policy(&self, policy_id: &str) -> Result<Option<PolicyRecord>, StoreError> {
        let row = self.client()?.query_opt("SELECT document FROM policies WHERE policy_id = $1", &[&policy_id]).map_err(|e| self.failed(e, false))?;
        Ok(row.map(|row| PolicyRecord { policy_id: policy_id.to_string(), document: row.get(0) }))
    }

    fn save_routes(&self, routes: &[RouteRecord]) -> Result<SaveOutcome, StoreError> {
        let recorded = wall_micros();
        let listed: Vec<(&RouteRecord, Option<i32>)> = routes.iter().map(|route| (route, None)).collect();
        let rows = self.route_rows("routes", &listed, recorded)?;
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(|e| self.failed(e, true))?;
        let inserted = self.insert_routes(&mut tx, &rows, true)?;
        tx.commit().map_err(|e| self.failed(e, true))?;
        Ok(if inserted == 0 { SaveOutcome::AlreadyStored } else { SaveOutcome::Stored { routes: inserted as usize } })
    }

    fn history(&self, schedule_id: Option<&str>, as_of: i64) -> Result<History, StoreError> {
        // Two statements, as in the embedded store, whose planner cannot use
        // the schedule's index for `(? IS NULL OR schedule_id = ?)`.
        // PostgreSQL plans the statement with its values and found the index
        // either way (5.9 ms against 6.5 ms at 1,000,000 routes).
        match schedule_id {
            Some(schedule) => self.history_where("schedule_id = $2", &schedule, as_of),
            None => self.history_where("$2::text IS NULL", &schedule_id, as_of),
        }
    }

    fn histories(&self, schedule_ids: &[&str], as_of: i64) -> Result<History, StoreError> {
        match schedule_ids {
            [] => Ok(History::default()),
            [one] => self.history(Some(one), as_of),
            // One query per kind of record for them all, not four per schedule.
            many => self.history_where("schedule_id = ANY($2)", &many, as_of),
        }
    }

    fn routes(&self, filter: &RouteFilter) -> Result<Vec<RouteRecord>, StoreError> {
        let (sql, values) = routes_query(filter);
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        self.stored_routes(&mut *self.client()?, &sql, &params)
    }

    fn save_acknowledgement(&self, ack: &Acknowledgement) -> Result<SaveOutcome, StoreError> {
        let created_at = self.micros("acknowledgement", "created_at", &ack.created_at)?;
        let recorded = wall_micros();
        let document = self.document(&Acknowledgement { recorded_at: Some(cavra_engine::time::format_time(recorded)), ..ack.clone() })?;
        self.insert_one(
            "INSERT INTO acknowledgements (ack_id, schedule_id, provider, acknowledged_by, acknowledgement_state,
                 plan_id, external_ref, notes, created_at, document, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (ack_id) DO NOTHING",
            &[
                &ack.ack_id,
                &ack.schedule_id,
                &ack.provider,
                &ack.acknowledged_by,
                &ack.acknowledgement_state,
                &ack.plan_id,
                &ack.external_ref,
                &ack.notes,
                &created_at,
                &document,
                &recorded,
            ],
        )
    }

    fn acknowledgements(&self, schedule_id: &str) -> Result<Vec<Acknowledgement>, StoreError> {
        self.documents("SELECT document FROM acknowledgements WHERE schedule_id = $1 ORDER BY created_at DESC, ack_id", &[&schedule_id])
    }

    fn latest_plans(&self, as_of: Option<i64>) -> Result<Vec<Plan>, StoreError> {
        // A plan written without its routes is given them back, in plan order.
        let rows = self
            .client()?
            .query(
                &format!(
                    "SELECT p.plan_id, p.document, {} FROM (
                     SELECT DISTINCT ON (schedule_id) plan_id, schedule_id, document, routes_apart FROM plans
                     WHERE generated_at <= $1 ORDER BY schedule_id, generated_at DESC, plan_id DESC
                 ) p
                 LEFT JOIN route_decisions r ON p.routes_apart AND r.plan_id = p.plan_id AND r.plan_position IS NOT NULL
                 ORDER BY p.schedule_id, r.plan_position",
                    select_list("r.")
                ),
                &[&as_of.unwrap_or(i64::MAX)],
            )
            .map_err(|e| self.failed(e, false))?;
        let mut plans = super::PlanAssembly::new(&self.shown);
        for row in &rows {
            let route = self.read_route(row, 2)?;
            plans.row(row.get(0), row.get(1), route)?;
        }
        Ok(plans.finish())
    }

    fn save_trend(&self, trend: &Trend) -> Result<SaveOutcome, StoreError> {
        let created = self.micros("trend", "generated_at", &trend.generated_at)?;
        let document = self.document(trend)?;
        self.insert_one(
            "INSERT INTO metadata (metadata_id, kind, created_at, document) VALUES ($1, $2, $3, $4) ON CONFLICT (metadata_id) DO NOTHING",
            &[&trend.trend_id, &TREND_KIND, &created, &document],
        )
    }

    fn suppressed_counts(&self, filter: &RouteFilter) -> Result<Vec<SuppressedCount>, StoreError> {
        let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut sql = String::from("SELECT category, owner, provider, schedule_id, COUNT(*) FROM route_decisions WHERE action = 'suppress'");
        if let Some(owner) = given(&filter.owner) {
            values.push(Box::new(owner.to_string()));
            sql.push_str(&format!(" AND (owner = ${0} OR escalation_owner = ${0})", values.len()));
        }
        for (column, value) in [("provider", &filter.provider), ("schedule_id", &filter.schedule_id)] {
            if let Some(v) = given(value) {
                values.push(Box::new(v.to_string()));
                sql.push_str(&format!(" AND {column} = ${}", values.len()));
            }
        }
        for (condition, bound) in [("created_at >=", filter.since), ("created_at <", filter.until)] {
            if let Some(t) = bound {
                values.push(Box::new(t));
                sql.push_str(&format!(" AND {condition} ${}", values.len()));
            }
        }
        sql.push_str(" GROUP BY category, owner, provider, schedule_id ORDER BY category, owner, provider, schedule_id");
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        let rows = self.client()?.query(&sql, &params).map_err(|e| self.failed(e, false))?;
        Ok(rows
            .iter()
            .map(|r| SuppressedCount {
                category: r.get(0),
                owner: r.get(1),
                provider: r.get(2),
                schedule_id: r.get(3),
                count: r.get::<_, i64>(4).max(0) as u64,
            })
            .collect())
    }

    fn save_delivery(&self, attempt: &DeliveryAttempt) -> Result<SaveOutcome, StoreError> {
        let record = &attempt.record;
        let started_at = self.micros("delivery", "started_at", &record.started_at)?;
        let completed_at = self.micros("delivery", "completed_at", &record.completed_at)?;
        let at = self.micros("delivery", "at", &attempt.at)?;
        let recorded = wall_micros();
        let document = self.document(&DeliveryAttempt { recorded_at: Some(cavra_engine::time::format_time(recorded)), ..attempt.clone() })?;
        self.insert_one(
            "INSERT INTO deliveries (delivery_id, route_id, plan_id, schedule_id, provider, notification_key, attempt,
                 status_code, outcome, started_at, completed_at, document, notification_id, at, is_final, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (delivery_id) DO NOTHING",
            &[
                &attempt.delivery_id,
                &record.route_id,
                &record.plan_id,
                &attempt.schedule_id,
                &record.provider,
                &attempt.notification_key,
                &i64::from(record.attempt),
                &record.status_code.map(i64::from),
                &record.outcome.as_str(),
                &started_at,
                &completed_at,
                &document,
                &attempt.notification_id,
                &at,
                &record.is_final,
                &recorded,
            ],
        )
    }

    fn deliveries(&self, plan_id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.documents("SELECT document FROM deliveries WHERE plan_id = $1 ORDER BY completed_at, route_id, attempt", &[&plan_id])
    }

    /// The upsert comes first: it takes the claim row only when it is free,
    /// expired or already the holder's, and holds the row's lock until the
    /// transaction ends. The checks run after it, under that lock, so they
    /// see every attempt recorded by the claim's previous holder (a holder
    /// records its attempts before it releases the row). Another instance
    /// claiming the same notification meanwhile waits on the row, then
    /// finds it taken.
    fn claim(&self, claim: &Claim, seen_attempt: Option<&str>) -> Result<bool, StoreError> {
        let mut client = self.client()?;
        let write = |e| self.failed(e, true);
        let mut tx = client.transaction().map_err(write)?;
        let taken = tx
            .execute(
                "INSERT INTO claims (notification_id, schedule_id, holder, claimed_at, expires_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (notification_id) DO UPDATE
                 SET schedule_id = EXCLUDED.schedule_id, holder = EXCLUDED.holder, claimed_at = EXCLUDED.claimed_at, expires_at = EXCLUDED.expires_at
                 WHERE claims.expires_at <= EXCLUDED.claimed_at OR claims.holder = EXCLUDED.holder",
                &[&claim.notification_id, &claim.schedule_id, &claim.holder, &claim.claimed_at, &claim.expires_at],
            )
            .map_err(write)?;
        if taken != 1 {
            return Ok(false);
        }
        // Delivered by anyone, or attempted since the caller looked: not ours to send.
        let delivered: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM deliveries WHERE notification_id = $1 AND outcome = 'delivered')", &[&claim.notification_id])
            .map_err(write)?
            .get(0);
        let latest: Option<String> = tx
            .query_opt(
                "SELECT delivery_id FROM deliveries WHERE notification_id = $1 ORDER BY at DESC, recorded_at DESC, completed_at DESC, attempt DESC LIMIT 1",
                &[&claim.notification_id],
            )
            .map_err(write)?
            .map(|row| row.get(0));
        if delivered || latest.as_deref() != seen_attempt {
            // Dropping the transaction rolls the upsert back.
            return Ok(false);
        }
        tx.commit().map_err(write)?;
        Ok(true)
    }

    fn renew_claims(&self, holder: &str, notification_ids: &[String], expires_at: i64) -> Result<usize, StoreError> {
        let renewed = self
            .client()?
            .execute("UPDATE claims SET expires_at = $3 WHERE notification_id = ANY($1) AND holder = $2", &[&notification_ids, &holder, &expires_at])
            .map_err(|e| self.failed(e, true))?;
        Ok(renewed as usize)
    }

    fn release_claim(&self, holder: &str, notification_id: &str) -> Result<(), StoreError> {
        self.insert_one("DELETE FROM claims WHERE notification_id = $1 AND holder = $2", &[&notification_id, &holder]).map(|_| ())
    }

    fn expired_claims(&self, now: i64) -> Result<Vec<Claim>, StoreError> {
        let rows = self
            .client()?
            .query("SELECT notification_id, schedule_id, holder, claimed_at, expires_at FROM claims WHERE expires_at <= $1 ORDER BY expires_at", &[&now])
            .map_err(|e| self.failed(e, false))?;
        Ok(rows
            .iter()
            .map(|r| Claim { notification_id: r.get(0), schedule_id: r.get(1), holder: r.get(2), claimed_at: r.get(3), expires_at: r.get(4) })
            .collect())
    }

    fn final_attempts(&self, provider: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.documents(
            "SELECT document FROM deliveries WHERE provider = $1 AND is_final AND notification_id IS NOT NULL ORDER BY at, recorded_at, completed_at",
            &[&provider],
        )
    }

    fn save_retry(&self, retry: &Retry) -> Result<SaveOutcome, StoreError> {
        let at = self.micros("retry", "at", &retry.at)?;
        let recorded = wall_micros();
        let document = self.document(&Retry { recorded_at: Some(cavra_engine::time::format_time(recorded)), ..retry.clone() })?;
        self.insert_one(
            "INSERT INTO retries (retry_id, approval_id, at, recorded_at, document) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (retry_id) DO NOTHING",
            &[&retry.retry_id, &retry.approval_id, &at, &recorded, &document],
        )
    }

    fn retries(&self, as_of: Option<i64>) -> Result<Vec<Retry>, StoreError> {
        self.documents("SELECT document FROM retries WHERE at <= $1 ORDER BY at DESC, recorded_at DESC, retry_id", &[&as_of.unwrap_or(i64::MAX)])
    }

    fn save_recovery(&self, recovery: &Recovery) -> Result<SaveOutcome, StoreError> {
        let created = self.micros("recovery", "recovered_at", &recovery.recovered_at)?;
        let document = self.document(&Recovery { recorded_at: Some(super::wall_clock()), ..recovery.clone() })?;
        self.insert_one(
            "INSERT INTO metadata (metadata_id, kind, created_at, document) VALUES ($1, $2, $3, $4) ON CONFLICT (metadata_id) DO NOTHING",
            &[&recovery.recovery_id, &RECOVERY_KIND, &created, &document],
        )
    }

    fn recoveries(&self, as_of: Option<i64>) -> Result<Vec<Recovery>, StoreError> {
        self.documents(
            "SELECT document FROM metadata WHERE kind = $1 AND created_at <= $2 ORDER BY created_at DESC, metadata_id",
            &[&RECOVERY_KIND, &as_of.unwrap_or(i64::MAX)],
        )
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.client()?.simple_query("").map(|_| ()).map_err(|e| self.failed(e, false))
    }
}

/// The SQL and parameters of [`Store::routes`] for `filter` (public so that
/// the benchmarks can EXPLAIN exactly what the store runs).
pub fn routes_query(filter: &RouteFilter) -> (String, Vec<Box<dyn ToSql + Sync>>) {
    let mut values: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut placeholder = |value: Box<dyn ToSql + Sync>| {
        values.push(value);
        format!("${}", values.len())
    };
    // Every condition but the owner's.
    let mut conditions: Vec<String> = Vec::new();
    for (column, value) in [("action", &filter.action), ("category", &filter.category), ("provider", &filter.provider), ("schedule_id", &filter.schedule_id)] {
        if let Some(v) = given(value) {
            conditions.push(format!("{column} = {}", placeholder(Box::new(v.to_string()))));
        }
    }
    if let Some(s) = filter.since {
        conditions.push(format!("created_at >= {}", placeholder(Box::new(s))));
    }
    if let Some(u) = filter.until {
        conditions.push(format!("created_at < {}", placeholder(Box::new(u))));
    }
    const ORDER: &str = " ORDER BY created_at DESC, route_id";
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    let limit = i64::from(filter.limit);
    let sql = match given(&filter.owner) {
        None => {
            let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
            format!(
                "SELECT {} FROM route_decisions{filter}{ORDER} LIMIT {} OFFSET {}",
                select_list(""),
                placeholder(Box::new(limit)),
                placeholder(Box::new(offset))
            )
        }
        Some(owner) => {
            // `owner = $ OR escalation_owner = $` as two index-ordered
            // branches, each cut at the page's end, then merged. The second
            // says `escalation_owner <> owner` as its index does.
            let rest: String = conditions.iter().map(|c| format!(" AND {c}")).collect();
            let owner = placeholder(Box::new(owner.to_string()));
            let enough = placeholder(Box::new(limit.saturating_add(offset)));
            let (limit, offset) = (placeholder(Box::new(limit)), placeholder(Box::new(offset)));
            let columns = select_list("");
            format!(
                "SELECT {columns} FROM (\
                   (SELECT {columns} FROM route_decisions WHERE owner = {owner}{rest}{ORDER} LIMIT {enough}) \
                   UNION ALL \
                   (SELECT {columns} FROM route_decisions \
                    WHERE escalation_owner = {owner} AND escalation_owner <> owner{rest}{ORDER} LIMIT {enough})\
                 ) AS matched{ORDER} LIMIT {limit} OFFSET {offset}"
            )
        }
    };
    (sql, values)
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}
