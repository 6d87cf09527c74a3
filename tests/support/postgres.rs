//! Real PostgreSQL servers for the tests: throwaway clusters (`initdb` in a
//! temporary directory, a free loopback port, a socket directory of their
//! own) that the tests create databases in, stop, restart, or serve over TLS.
//!
//! - [`Cluster::shared`]: the one cluster of a test binary, started on first
//!   use; each test takes databases of its own from it with [`Cluster::database`].
//! - [`Cluster::start`]: a cluster for the caller alone, for tests that stop or
//!   restart the server, or want TLS ([`ClusterOptions::tls`]).
//!
//! The server binaries are found through `CAVRA_POSTGRES_BIN` (a directory),
//! then `/usr/lib/postgresql/15/bin`, then the highest
//! `/usr/lib/postgresql/*/bin`, then `pg_config --bindir`. Without them both
//! functions say the test was skipped and return `None`; with
//! `CAVRA_REQUIRE_POSTGRES=1` (set by `.ci/run`) that is a failure instead.
//!
//! `CAVRA_TEST_POSTGRES_URL=postgres://user:pass@host:port/db` points
//! [`Cluster::shared`] at an existing server instead (it must accept plain,
//! non-TLS connections, and its user must be allowed to create databases).
//! [`Cluster::start`] never uses it: a test that asks for a cluster of its own
//! stops it or changes its settings, which must not happen to somebody's
//! server, so `start` still starts a local cluster, and skips without binaries.
//!
//! As root (`initdb` refuses to run as root) `initdb` and `pg_ctl` run as the
//! `postgres` user through `runuser`, and the cluster's directory belongs to it.
//! No server outlives the test process: dropping a [`Cluster`] stops it, and
//! because the shared cluster is a static, whose `Drop` never runs, each
//! cluster also has a watchdog shell that stops it and removes its directory
//! once the test process is gone, even after a panic or a kill.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The unprivileged account `initdb` and `pg_ctl` run as when the tests run as root.
const OS_USER: &str = "postgres";
/// How long `pg_ctl` waits for the server (`-t`); our own deadline around it is longer.
const PG_CTL_WAIT_SECONDS: u64 = 30;
const PG_CTL_DEADLINE: Duration = Duration::from_secs(PG_CTL_WAIT_SECONDS + 30);
const INITDB_DEADLINE: Duration = Duration::from_secs(180);
const SHORT_DEADLINE: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A port taken between choosing it and the server binding it is retried this many times in all.
const PORT_ATTEMPTS: usize = 3;

/// Unique names for directories and databases within this process (the pid tells processes apart).
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How [`Cluster::start`] sets up a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The superuser the tests connect as.
    pub user: String,
    pub password: String,
    /// Serve TLS with a certificate from a test CA (see [`Cluster::ca_pem`]); plain connections stay allowed.
    pub tls: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions { user: "cavra".into(), password: "cavra-test-secret".into(), tls: false }
    }
}

/// A running PostgreSQL server: a local throwaway cluster, or the server of `CAVRA_TEST_POSTGRES_URL`.
pub struct Cluster {
    user: String,
    password: String,
    port: u16,
    kind: Kind,
}

enum Kind {
    Local(Local),
    /// `scheme://authority` and `?query` (possibly empty) of `CAVRA_TEST_POSTGRES_URL`, and its database.
    External {
        authority: String,
        query: String,
        admin_database: String,
    },
}

struct Local {
    bin: PathBuf,
    as_root: bool,
    /// The cluster's temporary directory: owned by the server's account, holds the data directory,
    /// the server log, the Unix socket and the TLS files.
    base: PathBuf,
    data: PathBuf,
    log: PathBuf,
    ca_pem: Option<PathBuf>,
    other_ca_pem: Option<PathBuf>,
    /// Whether the server runs; the lock also keeps stop and restart from overlapping.
    running: Mutex<bool>,
}

impl Cluster {
    /// A fresh cluster for the caller alone (for tests that stop/start the server or want TLS).
    /// `None` = skipped (a message is printed); panics when `CAVRA_REQUIRE_POSTGRES=1` and no
    /// binaries are found, or when starting fails (with the server log's tail).
    pub fn start(options: ClusterOptions) -> Option<Cluster> {
        match find_binaries() {
            Some(bin) => Some(Local::start(bin, &options).unwrap_or_else(|e| panic!("{e}"))),
            None => {
                skip("PostgreSQL server binaries not found (install the Debian package postgresql, or set CAVRA_POSTGRES_BIN to their directory); this test needs a cluster of its own, which CAVRA_TEST_POSTGRES_URL does not give");
                None
            }
        }
    }

    /// The one cluster of this test binary, started on first use with default options
    /// (or the server of `CAVRA_TEST_POSTGRES_URL`); `None` = skipped, as with [`Cluster::start`].
    pub fn shared() -> Option<&'static Cluster> {
        // A failed start is kept as its message, so that the other tests fail with it at once
        // rather than each trying again.
        static SHARED: OnceLock<Result<Option<Cluster>, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| {
            if let Some(url) = std::env::var("CAVRA_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
                return Cluster::external(&url).map(Some);
            }
            match find_binaries() {
                Some(bin) => Local::start(bin, &ClusterOptions::default()).map(Some),
                None => Ok(None),
            }
        });
        match shared {
            Ok(Some(cluster)) => Some(cluster),
            Ok(None) => {
                skip("PostgreSQL 15 not found (install the Debian package postgresql, or set CAVRA_TEST_POSTGRES_URL=postgres://user:pass@host:port/db)");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    fn external(url: &str) -> Result<Cluster, String> {
        let bad = |why: &str| format!("CAVRA_TEST_POSTGRES_URL: {why} (expected postgres://user:pass@host:port/db)");
        let config: postgres::Config = url.parse().map_err(|e| bad(&format!("{e}")))?;
        // Databases other than the URL's own are named by rewriting its path, so only the URL form will do.
        let rest = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")).ok_or_else(|| bad("not a URL"))?;
        let scheme = &url[..url.len() - rest.len()];
        let (before_query, query) = rest.split_once('?').map_or((rest, String::new()), |(b, q)| (b, format!("?{q}")));
        let authority = before_query.split_once('/').map_or(before_query, |(a, _)| a);
        let user = config.get_user().ok_or_else(|| bad("no user"))?.to_string();
        let password = config.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let admin_database = config.get_dbname().unwrap_or(user.as_str()).to_string();
        Ok(Cluster { user, password, port, kind: Kind::External { authority: format!("{scheme}{authority}"), query, admin_database } })
    }

    /// A new, empty database with a unique name (`PREFIX_COUNTER_PID`), as a connection URL.
    pub fn database(&self, prefix: &str) -> String {
        let mut name: String = prefix.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        let suffix = format!("_{}_{}", COUNTER.fetch_add(1, Ordering::Relaxed), std::process::id());
        // PostgreSQL cuts names at 63 bytes, which could make two of them the same.
        name.truncate(63 - suffix.len());
        name.push_str(&suffix);
        let admin = match &self.kind {
            Kind::Local(_) => "postgres",
            Kind::External { admin_database, .. } => admin_database,
        };
        let mut client = connect(&self.url(admin)).unwrap_or_else(|e| panic!("connecting to {} to create database {name}: {e}", self.url_for_display(admin)));
        client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }

    /// `postgres://USER:PASSWORD@127.0.0.1:PORT/DATABASE` (user and password percent-encoded).
    pub fn url(&self, database: &str) -> String {
        match &self.kind {
            Kind::Local(_) => format!("postgres://{}:{}@127.0.0.1:{}/{}", encode(&self.user), encode(&self.password), self.port, encode(database)),
            Kind::External { authority, query, .. } => format!("{authority}/{}{query}", encode(database)),
        }
    }

    /// [`Cluster::url`] without the password, for messages.
    fn url_for_display(&self, database: &str) -> String {
        self.url(database).replace(&format!(":{}@", encode(&self.password)), ":***@")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// Stops the server (`pg_ctl stop -m fast`, waited for, bounded).
    pub fn stop(&self) {
        let local = self.local("stop");
        let mut running = local.running.lock().unwrap_or_else(|e| e.into_inner());
        if *running {
            local.stop("fast").unwrap_or_else(|e| panic!("{e}"));
            *running = false;
        }
    }

    /// Starts the server again on the same port and data (stopping it first if it runs).
    pub fn restart(&self) {
        let local = self.local("restart");
        let mut running = local.running.lock().unwrap_or_else(|e| e.into_inner());
        if *running {
            local.stop("fast").unwrap_or_else(|e| panic!("{e}"));
            *running = false;
        }
        // The tests hold URLs with this port, so a port taken meanwhile is a failure, not a retry.
        local.pg_ctl_start().unwrap_or_else(|e| panic!("restarting the PostgreSQL cluster on port {}: {e}", self.port));
        *running = true;
    }

    /// With TLS: the PEM file of the CA that signed the server certificate (SANs `localhost`, `127.0.0.1`).
    pub fn ca_pem(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local(local) => local.ca_pem.as_deref(),
            Kind::External { .. } => None,
        }
    }

    /// With TLS: the PEM file of another CA, which did not sign the server certificate.
    pub fn other_ca_pem(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Local(local) => local.other_ca_pem.as_deref(),
            Kind::External { .. } => None,
        }
    }

    fn local(&self, what: &str) -> &Local {
        match &self.kind {
            Kind::Local(local) => local,
            Kind::External { .. } => {
                panic!("cannot {what} the server of CAVRA_TEST_POSTGRES_URL: this test needs a cluster of its own (Cluster::start, not Cluster::shared)")
            }
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Not the `running` flag: a start that timed out may still have left a server behind.
        if self.data.join("postmaster.pid").exists() {
            // The data is thrown away next, so nothing needs a clean shutdown.
            let _ = self.stop("immediate");
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// Whether PostgreSQL tests must run (`CAVRA_REQUIRE_POSTGRES=1`), rather than be skipped without a server.
pub fn required() -> bool {
    std::env::var("CAVRA_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    assert!(!required(), "CAVRA_REQUIRE_POSTGRES=1 but {why}");
    eprintln!("skipped: {why}; set CAVRA_REQUIRE_POSTGRES=1 to make this a failure");
}

impl Local {
    fn start(bin: PathBuf, options: &ClusterOptions) -> Result<Cluster, String> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        // Short: the Unix socket's path, BASE/.s.PGSQL.PORT, must fit in 107 bytes.
        let base = std::env::temp_dir().join(format!("cavra-pg-{}-{}-{nanos:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
        // From here on the directory belongs to a Local, whose Drop removes it on any error, and to
        // the watchdog, should this process die before.
        let mut local = Local {
            bin,
            as_root: running_as_root(),
            data: base.join("data"),
            log: base.join("server.log"),
            base,
            ca_pem: None,
            other_ca_pem: None,
            running: Mutex::new(false),
        };
        // It will hold the password file and the TLS key.
        fs::set_permissions(&local.base, fs::Permissions::from_mode(0o700)).map_err(|e| format!("chmod {}: {e}", local.base.display()))?;
        local.spawn_watchdog()?;
        local.init(options)?;
        let settings = local.settings(options.tls)?;
        let conf_path = local.data.join("postgresql.conf");
        let conf = fs::read_to_string(&conf_path).map_err(|e| format!("reading {}: {e}", conf_path.display()))?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            // Written whole each attempt, so a retry's port replaces the last one.
            fs::write(&conf_path, format!("{conf}{settings}port = {port}\n")).map_err(|e| format!("writing {}: {e}", conf_path.display()))?;
            match local.pg_ctl_start() {
                Ok(()) => {
                    *local.running.lock().unwrap_or_else(|e| e.into_inner()) = true;
                    return Ok(Cluster { user: options.user.clone(), password: options.password.clone(), port, kind: Kind::Local(local) });
                }
                Err(e) if attempt < PORT_ATTEMPTS && e.contains("Address already in use") => attempt += 1,
                Err(e) => return Err(format!("starting a PostgreSQL cluster in {}: {e}", local.base.display())),
            }
        }
    }

    /// `initdb`, as the server's account; also makes the TLS files when asked.
    fn init(&mut self, options: &ClusterOptions) -> Result<(), String> {
        let pwfile = self.base.join("pwfile");
        write_private(&pwfile, format!("{}\n", options.password).as_bytes())?;
        if options.tls {
            self.make_certificates()?;
        }
        self.chown(&self.base)?;
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(&self.data).args(["-U", &options.user]).arg(format!("--pwfile={}", pwfile.display()));
        // --no-sync: the cluster is thrown away after the tests, so waiting for the disk buys nothing.
        initdb.args(["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]);
        let result = run_bounded(&mut initdb, INITDB_DEADLINE);
        let _ = fs::remove_file(&pwfile);
        result.map(drop).map_err(|e| format!("initdb in {} failed: {e}", self.base.display()))
    }

    /// The lines appended to postgresql.conf (all but the port, which can change between attempts).
    fn settings(&self, tls: bool) -> Result<String, String> {
        let mut settings = String::from("\n# cavra tests: loopback only, a socket directory of its own (nothing in /var/run/postgresql).\n");
        settings.push_str("listen_addresses = '127.0.0.1'\n");
        let _ = writeln!(settings, "unix_socket_directories = '{}'", conf_quote(&self.base)?);
        settings.push_str("max_connections = 200\nshared_buffers = 32MB\n");
        settings.push_str("# Tests only: a crash loses this data, which is thrown away anyway, and the tests run faster.\n");
        settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        if tls {
            let tls_dir = self.base.join("tls");
            settings.push_str("ssl = on\n");
            let _ = writeln!(settings, "ssl_cert_file = '{}'", conf_quote(&tls_dir.join("server.crt"))?);
            let _ = writeln!(settings, "ssl_key_file = '{}'", conf_quote(&tls_dir.join("server.key"))?);
        }
        Ok(settings)
    }

    /// A CA, a server certificate it signs for `localhost` and `127.0.0.1`, and a second CA that signs nothing.
    fn make_certificates(&mut self) -> Result<(), String> {
        let tls_dir = self.base.join("tls");
        fs::create_dir(&tls_dir).map_err(|e| format!("creating {}: {e}", tls_dir.display()))?;
        let failed = |e: rcgen::Error| format!("making the test certificates: {e}");
        let (ca, ca_issuer) = certificate_authority("cavra test CA").map_err(failed)?;
        let (other_ca, _) = certificate_authority("cavra other test CA").map_err(failed)?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).map_err(failed)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().map_err(failed)?;
        let server = params.signed_by(&key, &ca_issuer).map_err(failed)?;
        let write = |name: &str, contents: &str| fs::write(tls_dir.join(name), contents).map_err(|e| format!("writing {name}: {e}"));
        write("server.crt", &server.pem())?;
        // The server refuses a key that others can read (and it must own it, see Local::chown).
        write_private(&tls_dir.join("server.key"), key.serialize_pem().as_bytes())?;
        write("ca.pem", &ca.pem())?;
        write("other-ca.pem", &other_ca.pem())?;
        self.ca_pem = Some(tls_dir.join("ca.pem"));
        self.other_ca_pem = Some(tls_dir.join("other-ca.pem"));
        Ok(())
    }

    /// `pg_ctl start`, waited for; the error carries pg_ctl's output and the tail of this start's log.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut start = self.command("pg_ctl");
        start.arg("-D").arg(&self.data).arg("-l").arg(&self.log).args(["-w", "-t", &PG_CTL_WAIT_SECONDS.to_string(), "start"]);
        run_bounded(&mut start, PG_CTL_DEADLINE).map(drop).map_err(|e| {
            let log = fs::read(&self.log).unwrap_or_default();
            let this_start = String::from_utf8_lossy(log.get(log_start as usize..).unwrap_or_default()).into_owned();
            format!("pg_ctl start failed: {e}\n--- server log ({}), last lines ---\n{}", self.log.display(), tail(&this_start, 40))
        })
    }

    /// `pg_ctl stop` in the given mode (`fast`, `immediate`), waited for.
    fn stop(&self, mode: &str) -> Result<(), String> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(&self.data).args(["-m", mode, "-w", "-t", &PG_CTL_WAIT_SECONDS.to_string(), "stop"]);
        run_bounded(&mut stop, PG_CTL_DEADLINE).map(drop).map_err(|e| format!("pg_ctl stop -m {mode} failed: {e}\n{}", tail(&self.log_text(), 20)))
    }

    fn log_text(&self) -> String {
        fs::read(&self.log).map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default()
    }

    /// A server program, run as the server's account when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_root {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", OS_USER, "--"]).arg(path);
            runuser
        } else {
            Command::new(path)
        };
        // A directory the server's account may enter (initdb complains about one it cannot), and no
        // PG* settings of the caller's environment that could point the programs elsewhere.
        command.current_dir(&self.base);
        for var in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGOPTIONS"] {
            command.env_remove(var);
        }
        command
    }

    /// Gives the server's account everything under `path` (only as root; otherwise it is ours already).
    fn chown(&self, path: &Path) -> Result<(), String> {
        if !self.as_root {
            return Ok(());
        }
        let mut chown = Command::new("chown");
        chown.args(["-R", &format!("{OS_USER}:{OS_USER}")]).arg(path);
        run_bounded(&mut chown, SHORT_DEADLINE).map(drop).map_err(|e| format!("chown {}: {e}", path.display()))
    }

    /// A shell that waits for this process to end, then stops the server and removes the directory.
    /// It leaves early when the directory is gone (the Cluster was dropped), ignores the terminal's
    /// signals and sits in a process group of its own, so that a Ctrl-C to the tests does not kill
    /// it before it has cleaned up, and holds none of our stdio, so `cargo test` does not wait for it.
    fn spawn_watchdog(&self) -> Result<(), String> {
        let base = shell_quote(&self.base);
        let mut pg_ctl = String::new();
        if self.as_root {
            let _ = write!(pg_ctl, "runuser -u {OS_USER} -- ");
        }
        let _ = write!(pg_ctl, "{} -D {} -m immediate -w -t {PG_CTL_WAIT_SECONDS} stop", shell_quote(&self.bin.join("pg_ctl")), shell_quote(&self.data));
        let script = format!(
            "trap '' INT HUP TERM; while kill -0 {pid} 2>/dev/null && [ -d {base} ]; do sleep 1; done; \
             if [ -d {base} ]; then cd /; {pg_ctl}; rm -rf {base}; fi",
            pid = std::process::id()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(drop)
            .map_err(|e| format!("starting the cluster's watchdog shell: {e}"))
    }
}

fn certificate_authority(name: &str) -> Result<(rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>), rcgen::Error> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert, rcgen::Issuer::new(params, key)))
}

/// The directory of `initdb` and `pg_ctl`, or `None` when there is none.
fn find_binaries() -> Option<PathBuf> {
    let usable = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("CAVRA_POSTGRES_BIN").filter(|d| !d.is_empty()).map(PathBuf::from) {
        // Named on purpose, so a wrong one is a mistake to report rather than a reason to look elsewhere.
        assert!(usable(&dir), "CAVRA_POSTGRES_BIN={} holds no initdb and pg_ctl", dir.display());
        return Some(dir);
    }
    let debian = Path::new("/usr/lib/postgresql");
    if usable(&debian.join("15/bin")) {
        return Some(debian.join("15/bin"));
    }
    let version = |name: &str| name.split('.').map(|part| part.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>();
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(debian)
        .map(|entries| entries.flatten().map(|e| (version(&e.file_name().to_string_lossy()), e.path().join("bin"))).filter(|(_, bin)| usable(bin)).collect())
        .unwrap_or_default();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let output = run_bounded(Command::new("pg_config").arg("--bindir"), SHORT_DEADLINE).ok()?;
    Some(PathBuf::from(output.trim())).filter(|dir| usable(dir))
}

fn running_as_root() -> bool {
    // /proc/self belongs to our (effective) user; `id -u` where there is no /proc.
    match fs::metadata("/proc/self") {
        Ok(meta) => meta.uid() == 0,
        Err(_) => run_bounded(Command::new("id").arg("-u"), SHORT_DEADLINE).is_ok_and(|out| out.trim() == "0"),
    }
}

/// A loopback port free right now (the server may still lose it to someone else: see PORT_ATTEMPTS).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("finding a free port: {e}"))
}

/// Runs `command` to its end or until `limit` (then kills it); `Ok(output)` when it succeeded,
/// otherwise `Err` with its status and output. The output goes through a file rather than a pipe,
/// so that a program which leaves a child behind holding it (pg_ctl's server) cannot make us wait.
fn run_bounded(command: &mut Command, limit: Duration) -> Result<String, String> {
    let out_path = std::env::temp_dir().join(format!("cavra-pg-out-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let out = File::create(&out_path).map_err(|e| format!("creating {}: {e}", out_path.display()))?;
    let err = out.try_clone().map_err(|e| format!("{e}"))?;
    let program = std::iter::once(command.get_program()).chain(command.get_args()).map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    let spawned = command.stdin(Stdio::null()).stdout(out).stderr(err).spawn();
    let result = spawned.map_err(|e| format!("cannot run {program}: {e}")).and_then(|mut child| {
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{program} did not finish within {limit:?} and was killed"));
                }
                Err(e) => return Err(format!("waiting for {program}: {e}")),
            }
        }
    });
    let output = fs::read(&out_path).map(|o| String::from_utf8_lossy(&o).into_owned()).unwrap_or_default();
    let _ = fs::remove_file(&out_path);
    match result {
        Ok(status) if status.success() => Ok(output),
        Ok(status) => Err(format!("{program} {status}:\n{}", output.trim_end())),
        Err(e) => Err(format!("{e}:\n{}", output.trim_end())),
    }
}

/// Writes a file only its owner may read (the server's account, after Local::chown).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| format!("chmod {}: {e}", path.display()))
}

fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.connect(postgres::NoTls)
}

/// Percent-encodes all but URL-unreserved characters, for the user, password and database of a URL.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A path inside single quotes of postgresql.conf.
fn conf_quote(path: &Path) -> Result<String, String> {
    let text = path.to_str().ok_or_else(|| format!("{}: not UTF-8", path.display()))?;
    Ok(text.replace('\'', "''"))
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_url_parts() {
        assert_eq!(encode("cavra-test-secret"), "cavra-test-secret");
        assert_eq!(encode("p@ss:w/rd ü"), "p%40ss%3Aw%2Frd%20%C3%BC");
    }

    #[test]
    fn rewrites_the_database_of_an_external_url() {
        let cluster = Cluster::external("postgres://u%40x:p%3Aw@db.example:6543/main?sslmode=disable").expect("parses");
        assert_eq!((cluster.user(), cluster.password(), cluster.port()), ("u@x", "p:w", 6543));
        assert_eq!(cluster.url("other"), "postgres://u%40x:p%3Aw@db.example:6543/other?sslmode=disable");
        assert!(Cluster::external("host=localhost user=u").is_err());
    }

    #[test]
    fn quotes() {
        assert_eq!(conf_quote(Path::new("/tmp/it's")).unwrap(), "/tmp/it''s");
        assert_eq!(shell_quote(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
    }
}
