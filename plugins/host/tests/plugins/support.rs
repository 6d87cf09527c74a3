//! Test support: builds the plugin libraries, lays out plugin directories,
//! runs recording HTTP servers on 127.0.0.1, and makes notifications.
//!
//! `cargo test` does not build `cdylib` files of other crates, so the first
//! test that needs them runs `cargo build` for the bundled connectors and for
//! the fixture crates outside the workspace, all into the workspace target
//! directory (so abi_stable and friends are compiled once), exactly once per
//! test binary (`OnceLock`; cargo's own lock serialises concurrent builds).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use cavra_plugin_host::{ConnectorConfig, DeliveryOptions, Notification};

/// The built plugin libraries.
pub struct Artifacts {
    pub slack: PathBuf,
    pub teams: PathBuf,
    pub webhook: PathBuf,
    pub email: PathBuf,
    pub outbox: PathBuf,
    pub vendor: PathBuf,
    pub panicking: PathBuf,
    pub aborting: PathBuf,
    pub not_a_plugin: PathBuf,
    pub wrong_abi: PathBuf,
}

impl Artifacts {
    pub fn bundled(&self) -> Vec<&Path> {
        vec![&self.slack, &self.teams, &self.webhook, &self.email, &self.outbox]
    }
}

pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(build_artifacts)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target>/<profile>`: the directory this test executable's `deps/` is in.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("test executable lives in <target>/<profile>/deps").to_owned()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => profile_dir().parent().expect("profile dir has a parent").to_owned(),
    }
}

fn cargo(args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let release = profile_dir().file_name().is_some_and(|n| n == "release");
    let mut command = Command::new(cargo);
    command.arg("build").arg("-j2").args(args).arg("--target-dir").arg(target_dir()).current_dir(workspace_root());
    if release {
        command.arg("--release");
    }
    let output = command.output().expect("run cargo");
    assert!(output.status.success(), "cargo build {args:?} failed:\n{}", String::from_utf8_lossy(&output.stderr));
}

fn build_artifacts() -> Artifacts {
    cargo(&["-p", "cavra-plugin-slack", "-p", "cavra-plugin-teams", "-p", "cavra-plugin-webhook", "-p", "cavra-plugin-email", "-p", "cavra-plugin-outbox"]);
    cargo(&["--manifest-path", "tests/fixtures/vendor-connector/Cargo.toml"]);
    cargo(&["--manifest-path", "plugins/host/tests/fixtures/Cargo.toml"]);
    cargo(&["--manifest-path", "plugins/host/tests/fixtures/wrong-abi/Cargo.toml"]);
    let dir = profile_dir();
    let dir = if std::env::var_os("CARGO_TARGET_DIR").is_some() { target_dir().join(dir.file_name().expect("profile name")) } else { dir };
    let lib = |name: &str| {
        let path = dir.join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
        assert!(path.is_file(), "{} was not built", path.display());
        path
    };
    Artifacts {
        slack: lib("cavra_plugin_slack"),
        teams: lib("cavra_plugin_teams"),
        webhook: lib("cavra_plugin_webhook"),
        email: lib("cavra_plugin_email"),
        outbox: lib("cavra_plugin_outbox"),
        vendor: lib("vendor_pager_connector"),
        panicking: lib("cavra_fixture_panicking"),
        aborting: lib("cavra_fixture_aborting"),
        not_a_plugin: lib("cavra_fixture_not_a_plugin"),
        wrong_abi: lib("cavra_fixture_wrong_abi"),
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("cavra-plugin-host-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A plugin directory holding links to these libraries (links, so that
    /// every test shares one loaded copy of each library, as a host would).
    pub fn plugin_dir(&self, libraries: &[&Path]) -> PathBuf {
        let dir = self.0.join("plugins");
        std::fs::create_dir_all(&dir).expect("plugin dir");
        for lib in libraries {
            let link = dir.join(lib.file_name().expect("file name"));
            link_or_copy(lib, &link);
        }
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn link_or_copy(from: &Path, to: &Path) {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return;
    }
    std::fs::copy(from, to).expect("copy plugin");
}

/// Options that keep tests fast: tiny backoff, short timeouts.
pub fn fast_options() -> DeliveryOptions {
    DeliveryOptions { max_attempts: 4, backoff_base: Duration::from_millis(5), backoff_max: Duration::from_millis(20), attempt_timeout: Duration::from_secs(5) }
}

/// A configuration from JSON text, with `*_env` names looked up in `env`.
pub fn config(json: serde_json::Value, env: &[(&str, &str)]) -> ConnectorConfig {
    let env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ConnectorConfig::parse(&json.to_string(), Path::new("connectors.json"), |name| env.get(name).cloned()).expect("valid test config")
}

/// A due-soon notification for `provider`. Its idempotency key is given
/// here, as cavra gives its own: the host sends it as it is. One key per
/// route, since the outbox connector writes a key only once.
pub fn notification(route: &str, provider: &str, owner: &str) -> Notification {
    Notification {
        idempotency_key: format!("cavra-test-{route}"),
        route_id: format!("route_{route}"),
        plan_id: "plan_test".into(),
        schedule_id: "go_backend_python_fallback_monthly".into(),
        owner: owner.into(),
        escalation_owner: "platform-operations".into(),
        provider: provider.into(),
        alert_level: "warning".into(),
        status: "due_soon".into(),
        next_due_at: Some("2026-05-30T15:40:00Z".into()),
        reason: "rollback drill schedule go_backend_python_fallback_monthly is due soon".into(),
        runbook_ref: Some("docs/go-backend-rollback-drill-scheduling.md".into()),
        acknowledgement_minutes: 60,
        created_at: "2026-05-21T19:00:00Z".into(),
    }
}

/// What a [`Server`] answers to successive requests (the last one repeats).
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// Accept the request and never answer (until the server is dropped).
    Hang,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// A scripted HTTP/1.1 server on 127.0.0.1 that records what it receives.
pub struct Server {
    pub port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(script: &[Reply]) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script = script.to_vec();
        let (recorded, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        thread::spawn(move || {
            let mut served = 0usize;
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let reply = script.get(served).or(script.last()).copied().unwrap_or(Reply::Status(200));
                served += 1;
                let (recorded, stopping) = (Arc::clone(&recorded), Arc::clone(&stopping));
                thread::spawn(move || serve(stream, reply, &recorded, &stopping));
            }
        });
        Server { port, requests, stop }
    }

    /// `http://127.0.0.1:PORT` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, reply: Reply, recorded: &Mutex<Vec<Recorded>>, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length = headers.get("content-length").and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    recorded.lock().expect("record").push(Recorded { method, path, headers, body });
    match reply {
        Reply::Status(code) => {
            let _ = write!(out, "HTTP/1.1 {code} Scripted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let _ = out.flush();
        }
        Reply::Hang => {
            let until = Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
