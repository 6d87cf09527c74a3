//! The store conformance suite: every behaviour of the plan store, checked
//! against both backends, the embedded SQLite file and PostgreSQL.
//!
//! Each test of a module is a function `fn name(backend: &Backend)`;
//! `backend_tests!` runs it twice, as `MODULE::sqlite::name` (a fresh file
//! under `CARGO_TARGET_TMPDIR`) and `MODULE::postgres::name` (a fresh database).
//!
//! - `routes`: plans stored through the CLI (in-process) and
//!   `go-rollback-drill-routes` with every filter, append-only, transactions.
//! - `records`, `claims`: the `Store` trait on real records (`fixture`: made
//!   once by the `cavra` binary in a SQLite store of its own, then read back).
//! - `concurrent`: two delivery processes at once against one store.
//! - `same_json`: one CLI script against both backends, answers compared.
//! - `failures`: what only one backend has (a read-only SQLite connection, a
//!   folder as the store path; a PostgreSQL role that may not insert, a
//!   database that does not exist).
//!
//! The PostgreSQL half: `cavra_tests::postgres` starts one throwaway cluster
//! for this test binary (PostgreSQL's `initdb` and `pg_ctl`, a loopback port,
//! removed when the tests end) and each test takes a database of its own.
//! Without the server binaries those tests print `skipped: ...` and pass;
//! with `CAVRA_REQUIRE_POSTGRES=1` (CI sets it) that is a failure instead.
//! `CAVRA_TEST_POSTGRES_URL=postgres://user:pass@host:port/db` uses an
//! existing server instead of starting one (its user must be allowed to
//! create databases and roles). One backend only:
//! `cargo test -p cavra-tests --test store -- ::postgres::` (or `::sqlite::`).

#[macro_use]
#[path = "store_backends/backend.rs"]
mod backend;
#[macro_use]
#[path = "store_backends/common.rs"]
mod common;
#[path = "store_backends/fixture.rs"]
mod fixture;

#[path = "store_backends/claims.rs"]
mod claims;
#[path = "store_backends/concurrent.rs"]
mod concurrent;
#[path = "store_backends/failures.rs"]
mod failures;
#[path = "store_backends/records.rs"]
mod records;
#[path = "store_backends/routes.rs"]
mod routes;
#[path = "store_backends/same_json.rs"]
mod same_json;
