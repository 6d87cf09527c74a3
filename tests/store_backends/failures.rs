//! Stores that cannot be written or opened, each backend in its own way. A
//! failing write is simulated so that it also fails for root (which ignores
//! file permissions): SQLite is opened with `SqliteStore::open_read_only`
//! (`SQLITE_OPEN_READ_ONLY`) and, for the CLI, the store path is a folder;
//! PostgreSQL is used by a role that may read the tables but not insert, and
//! a database that does not exist cannot be opened.

use crate::backend::Backend;
use crate::common::{dry_plan, plan_args, routes, store_plan, typed, T1, T2, T3};
use cavra_app::store::{RouteFilter, SqliteStore, Store, StoreLocation};
use cavra_tests::{cavra, Run};
use std::path::Path;

/// Two plans stored through the CLI, and their six routes.
fn two_plans(backend: &Backend) -> Vec<serde_json::Value> {
    store_plan(&backend.store(), T1);
    store_plan(&backend.store(), T2);
    let before = routes(&backend.store(), &[]);
    assert_eq!(before.len(), 6);
    before
}

/// `read_only` still reads the six routes, refuses the T3 plan with an error that names the
/// store and says `cause`, and the store keeps `before` and nothing of T3.
fn assert_write_refused(backend: &Backend, read_only: &dyn Store, cause: &str, before: &[serde_json::Value]) {
    assert_eq!(read_only.routes(&RouteFilter::default()).unwrap().len(), 6, "reading still works");
    let error = read_only.save_plan(&typed(&dry_plan(T3))).unwrap_err().to_string();
    assert!(error.starts_with(&format!("cannot write the store {}: ", backend.shown())), "{error}");
    assert!(error.contains(cause), "{error}");
    assert_eq!(routes(&backend.store(), &[]), before, "the earlier plans are intact and nothing of T3 was written");
    assert!(routes(&backend.store(), &["--since", T3]).is_empty());
}

/// `go-rollback-drill-notification-plan` at T3 into `store`.
fn plan_into(store: &str) -> Run {
    let mut args = plan_args(T3);
    args.extend(["--store".to_string(), store.to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    cavra(&argv)
}

/// The plan is not printed, the exit status is 2, and the message names the store as `shown`, after `failure`.
fn assert_refused(run: &Run, failure: &str, shown: &str) {
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with(&format!("error: {failure} {shown}: ")), "{}", run.stderr);
}

mod sqlite {
    use super::*;

    #[test]
    fn a_failed_write_names_the_store_and_keeps_the_earlier_plans() {
        let backend = Backend::sqlite("store::failures::sqlite::failed_write");
        let store = backend.store();
        let before = two_plans(&backend);

        // A read-only connection: root cannot write through it either.
        assert_write_refused(&backend, &SqliteStore::open_read_only(&store).unwrap(), "readonly", &before);

        // Through the CLI: a store path that is a folder cannot be opened. The
        // plan is not printed and the exit status is 2.
        let folder = backend.dir().join("folder").display().to_string();
        std::fs::create_dir_all(&folder).unwrap();
        assert_refused(&plan_into(&folder), "cannot open the store", &folder);
        // The listing reports the same store error.
        let run = cavra(&["runtime", "go-rollback-drill-routes", "--store", &folder]);
        assert_eq!(run.code, 2);
        assert!(run.stderr.contains(&format!("cannot open the store {folder}")), "{}", run.stderr);
        assert_eq!(routes(&store, &[]), before);
    }

    #[test]
    fn listing_a_missing_store_creates_nothing() {
        let backend = Backend::sqlite("store::failures::sqlite::missing");
        let store = backend.store();
        assert!(routes(&store, &[]).is_empty());
        assert!(!Path::new(&store).exists(), "listing does not create the store");
    }
}

mod postgres {
    use super::*;

    #[test]
    fn a_failed_write_names_the_store_and_keeps_the_earlier_plans() {
        let Some(backend) = Backend::postgres("store::failures::postgres::failed_write") else { return };
        let before = two_plans(&backend);
        // A role that may read every table (and so open the migrated store) but insert into none.
        let (reader, password) = (format!("reader_{}", std::process::id()), "reader-canary-7f3a");
        let database = backend.shown().rsplit('/').next().unwrap().to_string();
        backend
            .admin()
            .batch_execute(&format!(
                "CREATE ROLE {reader} LOGIN PASSWORD '{password}';
                 GRANT CONNECT ON DATABASE \"{database}\" TO {reader};
                 GRANT USAGE ON SCHEMA public TO {reader};
                 GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader};"
            ))
            .expect("create the read-only role");
        let url = backend.url_as(&reader, password);

        let read_only = StoreLocation::or_default(Some(Path::new(&url))).open().expect("the reader opens the store");
        assert_write_refused(&backend, &*read_only, "permission denied", &before);

        // Through the CLI: the plan is not printed, the exit status is 2, and
        // neither the role, its password nor the host is in the message.
        let run = plan_into(&url);
        assert_refused(&run, "cannot write the store", &backend.shown());
        for secret in [reader.as_str(), password, "127.0.0.1"] {
            assert!(!run.stderr.contains(secret), "{secret} in {}", run.stderr);
        }
        assert_eq!(routes(&backend.store(), &[]), before);
    }

    #[test]
    fn a_missing_database_cannot_be_opened_and_is_named_without_credentials() {
        let Some(backend) = Backend::postgres("store::failures::postgres::missing") else { return };
        let cluster = backend.cluster();
        // A short connect timeout: the pool tries again until it runs out.
        let url = cluster.url("no_such_database");
        let missing = format!("{url}{}connect_timeout=1", if url.contains('?') { '&' } else { '?' });
        let shown = "postgres://…/no_such_database";
        let run = plan_into(&missing);
        assert_eq!((run.code, run.stdout.as_str()), (2, ""), "{}", run.stderr);
        assert!(run.stderr.contains(&format!("the store {shown}: ")) && run.stderr.contains("does not exist"), "{}", run.stderr);
        // The listing reports the same store error.
        let listing = cavra(&["runtime", "go-rollback-drill-routes", "--store", &missing]);
        assert_eq!(listing.code, 2);
        assert!(listing.stderr.contains(&format!("the store {shown}: ")), "{}", listing.stderr);
        for secret in [cluster.password(), "127.0.0.1"] {
            assert!(!run.stderr.contains(secret) && !listing.stderr.contains(secret), "{secret}: {}", run.stderr);
        }
    }
}
