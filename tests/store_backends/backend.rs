//! The backend a test runs against, and [`backend_tests!`], which runs each
//! test of a module against both.

use cavra_app::store::{Store, StoreLocation};
use cavra_tests::postgres::Cluster;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// For each `fn name(backend: &Backend)` of the calling module, the tests
/// `sqlite::name` (a fresh SQLite file) and `postgres::name` (a fresh
/// database of the shared cluster; it returns at once when the cluster
/// helper says PostgreSQL is skipped).
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::backend::Backend::sqlite(concat!(module_path!(), "::", stringify!($name))));
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(backend) = $crate::backend::Backend::postgres(concat!(module_path!(), "::", stringify!($name))) else { return };
                    super::$name(&backend);
                }
            )+
        }
    };
}

/// One store for one test: where it is, how the CLI names it (`--store`),
/// and a folder of the test's own (child processes run there, the
/// connector configuration lives there).
pub struct Backend {
    /// `module::backend::test`, for sibling stores.
    test: String,
    dir: PathBuf,
    kind: Kind,
}

enum Kind {
    Sqlite,
    Postgres { cluster: &'static Cluster, url: String },
}

impl Backend {
    /// A fresh SQLite file under `CARGO_TARGET_TMPDIR`.
    pub fn sqlite(test: &str) -> Backend {
        Backend { test: test.to_string(), dir: fresh_dir(test), kind: Kind::Sqlite }
    }

    /// A fresh database of the shared cluster; `None` when PostgreSQL is skipped (the helper said so).
    pub fn postgres(test: &str) -> Option<Backend> {
        let cluster = Cluster::shared()?;
        // The test's own name, without the crate and module, makes the database easy to find.
        let name = test.rsplit("::").next().unwrap_or(test);
        Some(Backend { test: test.to_string(), dir: fresh_dir(test), kind: Kind::Postgres { cluster, url: cluster.database(name) } })
    }

    /// Another fresh store of the same backend (a test that needs several empty ones).
    pub fn sibling(&self, name: &str) -> Backend {
        let test = format!("{}::{name}", self.test);
        match &self.kind {
            Kind::Sqlite => Backend::sqlite(&test),
            Kind::Postgres { cluster, .. } => {
                Backend { dir: fresh_dir(&test), kind: Kind::Postgres { cluster, url: cluster.database(name) }, test: test.clone() }
            }
        }
    }

    /// The `--store` value: the SQLite file's path, or the database's URL (with its credentials).
    pub fn store(&self) -> String {
        match &self.kind {
            Kind::Sqlite => self.dir.join("cavra.db").display().to_string(),
            Kind::Postgres { url, .. } => url.clone(),
        }
    }

    pub fn location(&self) -> StoreLocation {
        StoreLocation::or_default(Some(Path::new(&self.store())))
    }

    /// How messages name the store: the file's path, or `postgres://…/DBNAME`.
    pub fn shown(&self) -> String {
        self.location().shown()
    }

    /// The store opened (created and migrated when needed) through its location, as the CLI opens it.
    pub fn open(&self) -> Arc<dyn Store> {
        self.location().open().unwrap_or_else(|e| panic!("opening {}: {e}", self.shown()))
    }

    /// The test's own folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// PostgreSQL only: the cluster the database is in.
    pub fn cluster(&self) -> &'static Cluster {
        let Kind::Postgres { cluster, .. } = &self.kind else { panic!("{} is no PostgreSQL store", self.shown()) };
        cluster
    }

    /// PostgreSQL only: a client of the test's database as the cluster's superuser.
    pub fn admin(&self) -> postgres::Client {
        let Kind::Postgres { url, .. } = &self.kind else { panic!("{} is no PostgreSQL store", self.shown()) };
        let mut config: postgres::Config = url.parse().expect("the cluster's URL");
        config.connect_timeout(Duration::from_secs(10));
        config.connect(postgres::NoTls).unwrap_or_else(|e| panic!("connecting to {}: {e}", self.shown()))
    }

    /// PostgreSQL only: the store's URL with other credentials.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        let url = self.store();
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
        format!("{scheme}://{user}:{password}@{host_and_path}")
    }
}

/// An empty folder for one test (a store left by an earlier run is removed).
fn fresh_dir(test: &str) -> PathBuf {
    let relative: PathBuf = test.split("::").skip(1).collect();
    cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store-tests").join(relative))
}
