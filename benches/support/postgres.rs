//! The PostgreSQL server of the benchmarks' PostgreSQL halves (included by
//! `#[path]` into the benches and examples that need it).
//!
//! - `CAVRA_BENCH_POSTGRES_URL=postgres://user:pass@host:port/db`: that
//!   server (plain connections; its user must be allowed to create databases).
//! - Otherwise a throwaway local cluster from `cavra_tests::postgres::Cluster::start`
//!   (PostgreSQL 15 from `/usr/lib/postgresql`, or `CAVRA_POSTGRES_BIN`), on a
//!   free loopback port, stopped and removed when the bench ends. It runs with
//!   `fsync = off`, `synchronous_commit = off` and `full_page_writes = off`:
//!   a commit does not wait for the disk, as SQLite's `synchronous = NORMAL`
//!   in WAL mode does not either (but SQLite still syncs at checkpoints, this
//!   cluster never), so figures beside SQLite's say so.
//!
//! Without either, [`Server::start`] prints a `skipped` line and returns `None`.

#![allow(dead_code)]

use cavra_tests::postgres::{Cluster, ClusterOptions};
use std::path::Path;

/// The environment variable naming an existing server to use instead of a local cluster.
pub const URL_ENV: &str = "CAVRA_BENCH_POSTGRES_URL";

/// A PostgreSQL server to make fresh databases in.
pub struct Server {
    held: Held,
    /// Where databases are created and dropped from.
    admin_url: String,
    /// Version and durability settings, for the figures.
    pub description: String,
}

enum Held {
    Local(Box<Cluster>),
    External(&'static Cluster),
}

impl Server {
    /// Whether [`Server::start`] can give a server (cheap: starts nothing).
    pub fn available() -> bool {
        if std::env::var(URL_ENV).is_ok_and(|u| !u.is_empty()) {
            return true;
        }
        let usable = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
        if let Some(dir) = std::env::var_os("CAVRA_POSTGRES_BIN").filter(|d| !d.is_empty()) {
            return usable(Path::new(&dir));
        }
        let versions = std::fs::read_dir("/usr/lib/postgresql").map(|entries| entries.flatten().any(|e| usable(&e.path().join("bin"))));
        if versions.unwrap_or(false) {
            return true;
        }
        std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .is_some_and(|o| usable(Path::new(String::from_utf8_lossy(&o.stdout).trim())))
    }

    /// The server of `CAVRA_BENCH_POSTGRES_URL`, else a throwaway local cluster;
    /// `None` (after a `skipped` line naming `what`) when there is neither.
    pub fn start(what: &str) -> Option<Server> {
        if !Server::available() {
            println!("{what}: skipped: no PostgreSQL (install PostgreSQL 15's server binaries, set CAVRA_POSTGRES_BIN, or {URL_ENV}=postgres://...)");
            return None;
        }
        let (held, admin_url) = match std::env::var(URL_ENV).ok().filter(|u| !u.is_empty()) {
            Some(url) => {
                // `Cluster::shared` is the one that serves an existing server's URL.
                std::env::set_var("CAVRA_TEST_POSTGRES_URL", &url);
                let Some(cluster) = Cluster::shared() else {
                    println!("{what}: skipped: {URL_ENV} could not be used");
                    return None;
                };
                (Held::External(cluster), url)
            }
            None => {
                let Some(cluster) = Cluster::start(ClusterOptions::default()) else {
                    println!("{what}: skipped: no PostgreSQL cluster could be started");
                    return None;
                };
                let admin = cluster.url("postgres");
                (Held::Local(Box::new(cluster)), admin)
            }
        };
        let mut server = Server { held, admin_url, description: String::new() };
        server.description = server.describe();
        Some(server)
    }

    /// Whether the server runs on this machine (its processes can be seen, e.g. by [`backend_cpu`]).
    pub fn is_local(&self) -> bool {
        matches!(self.held, Held::Local(_))
    }

    fn cluster(&self) -> &Cluster {
        match &self.held {
            Held::Local(cluster) => cluster,
            Held::External(cluster) => cluster,
        }
    }

    /// A client of the admin database.
    pub fn admin(&self) -> postgres::Client {
        connect(&self.admin_url)
    }

    fn describe(&self) -> String {
        let mut client = self.admin();
        let mut show = |setting: &str| -> String {
            client.query_one(&format!("SHOW {setting}"), &[]).map(|row| row.get::<_, String>(0)).unwrap_or_else(|e| format!("? ({e})"))
        };
        let version = show("server_version");
        let settings = format!(
            "fsync={}, synchronous_commit={}, full_page_writes={}, shared_buffers={}",
            show("fsync"),
            show("synchronous_commit"),
            show("full_page_writes"),
            show("shared_buffers")
        );
        match &self.held {
            Held::Local(cluster) => format!("PostgreSQL {version}, a throwaway local cluster on 127.0.0.1:{} ({settings})", cluster.port()),
            Held::External(_) => format!("PostgreSQL {version} of {URL_ENV} ({settings})"),
        }
    }

    /// A new, empty database, as a connection URL.
    pub fn database(&self, prefix: &str) -> String {
        self.cluster().database(prefix)
    }

    /// Drops a database made by [`Server::database`] (its connections are closed first).
    pub fn drop_database(&self, url: &str) {
        let config: postgres::Config = url.parse().expect("a database URL");
        let name = config.get_dbname().expect("a database name").replace('"', "\"\"");
        let mut admin = self.admin();
        // WITH (FORCE): PostgreSQL 13 and later; a pool being dropped may still hold a connection.
        if admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).is_err() {
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\"")).unwrap_or_else(|e| panic!("DROP DATABASE {name}: {e}"));
        }
    }
}

/// A plain connection (the local cluster and `CAVRA_BENCH_POSTGRES_URL` serve plain connections).
pub fn connect(url: &str) -> postgres::Client {
    let mut config: postgres::Config = url.parse().expect("a database URL");
    config.connect_timeout(std::time::Duration::from_secs(10));
    config.connect(postgres::NoTls).unwrap_or_else(|e| panic!("connecting to PostgreSQL: {e}"))
}

/// User and system CPU seconds of a process (`self`, or a pid) so far, from
/// `/proc` (Linux; 0 elsewhere). Ticks are USER_HZ, 100 per second.
pub fn process_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 11 and 12 here (state, field 3, is 0).
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of the PostgreSQL backends connected to `database` (found by
/// their process titles, `postgres: USER DATABASE HOST(PORT) STATE`).
pub fn backend_cpu(database: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())).map(String::from))
        .filter(|pid| {
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let title = String::from_utf8_lossy(&title);
            title.starts_with("postgres: ") && title.split_whitespace().any(|word| word == database)
        })
        .map(|pid| process_cpu(&pid))
        .sum()
}
