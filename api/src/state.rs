//! What every request sees: the server's settings, its tokens and policy,
//! the compiled packs (swapped whole on reload), the one store handle and
//! the metrics; and one request, read and authorised.

use crate::auth::{Identity, Tokens};
use crate::metrics::Metrics;
use bytes::Bytes;
use cavra_app::deliver::PluginSettings;
use cavra_app::packs::{CompiledPacks, PackSource};
use cavra_app::readiness::Evidence;
use cavra_app::store::{SharedStore, StoreError, StoreLocation};
use hyper::Method;
use serde_json::Value as Json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How the server runs, as the front end (`cavra api`) gives it.
pub struct Settings {
    pub listen: SocketAddr,
    /// The store (a SQLite file or a PostgreSQL database), opened on first use.
    pub store: StoreLocation,
    /// The routing policy used when a request gives none (public-safe).
    pub routing_policy: Option<PathBuf>,
    /// The readiness documents and settings (requests may change the clock and mode).
    pub evidence: Evidence,
    /// A rules folder instead of the bundled packs; reloads read it again.
    pub rules: Option<PathBuf>,
    pub plugins: PluginSettings,
    /// An external runtime for `POST /runtime/go-pilot/evaluate`.
    pub runtime: Option<PathBuf>,
    /// The files that runtime runs with (`--policy-path`, `--package-dir`), checked at start.
    pub runtime_files: cavra_app::evaluate::RuntimeFiles,
    /// The token file (`CAVRA_API_TOKENS`); without it, only loopback addresses are allowed.
    pub tokens: Option<PathBuf>,
    /// How long a delivery claim lasts without its heartbeat; the sweeper runs every half lease.
    pub claim_lease: Duration,
    pub max_body: usize,
    pub request_timeout: Duration,
    /// How long in-flight requests get to finish after SIGINT/SIGTERM; then
    /// the deliveries still running are interrupted (see `server.rs`).
    pub shutdown_grace: Duration,
    /// Log lines as JSON objects rather than `key=value` text.
    pub log_json: bool,
    /// Log every request, not only failures and server events.
    pub log_requests: bool,
    /// Days after binding that bound programs answer from their indexes and
    /// decision tables; a program nearing the end is bound again.
    pub bind_horizon_days: u32,
}

/// What every request sees. The server keeps no state but this (and the
/// store), so instances can run side by side.
pub(crate) struct State {
    pub settings: Settings,
    pub tokens: Option<Tokens>,
    /// The server's `--routing-policy`, screened at start.
    pub policy: Option<Json>,
    packs: RwLock<Arc<CompiledPacks>>,
    /// One store handle for every request, opened on first use.
    pub store: SharedStore,
    pub metrics: Metrics,
    /// What the log last said about the store: `None` while it works.
    store_trouble: Mutex<Option<String>>,
}

/// One request, read and authorised, as the handlers see it.
pub(crate) struct Call {
    pub method: Method,
    pub query: Option<String>,
    pub body: Bytes,
    pub identity: Option<Identity>,
}

impl State {
    /// The packs in use now; a reload swaps them for later requests only.
    pub(crate) fn packs(&self) -> Arc<CompiledPacks> {
        self.packs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How deliveries, retries and the sweeper send: the server's plugins
    /// and claim lease, the default attempts, timeout and backoff.
    pub(crate) fn send_settings(&self) -> cavra_app::deliver::SendSettings {
        cavra_app::deliver::SendSettings { claim_lease: self.settings.claim_lease, ..cavra_app::deliver::SendSettings::new(self.settings.plugins.clone()) }
    }

    /// The packs in use now, as the application takes them.
    pub(crate) fn pack_source(&self) -> PackSource {
        PackSource::Compiled(self.packs())
    }

    pub(crate) fn replace_packs(&self, packs: CompiledPacks) {
        *self.packs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(packs);
    }

    /// Logs a change in the store's health: `problem` is what went wrong
    /// now, `None` that it works. Repeats of the same state are not logged.
    pub(crate) fn store_trouble(&self, problem: Option<&StoreError>) {
        let mut last = self.store_trouble.lock().unwrap_or_else(|p| p.into_inner());
        let now = problem.map(ToString::to_string);
        if *last == now {
            return;
        }
        let store = self.store.location().shown();
        match problem {
            Some(e) => {
                let (_, code) = crate::http::store_problem(e);
                self.log(&[("event", code.into()), ("store", store.into()), ("error", e.to_string().into())]);
            }
            None => self.log(&[("event", "store_ready".into()), ("store", store.into())]),
        }
        *last = now;
    }

    /// Server log lines go to stderr; they carry no request bodies, tokens or documents.
    pub(crate) fn log(&self, fields: &[(&str, Json)]) {
        if self.settings.log_json {
            let map: serde_json::Map<String, Json> = fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            eprintln!("{}", Json::Object(map));
        } else {
            let line: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))).collect();
            eprintln!("{}", line.join(" "));
        }
    }
}

impl State {
    pub(crate) fn new(settings: Settings, tokens: Option<Tokens>, policy: Option<Json>, packs: Arc<CompiledPacks>, store: SharedStore) -> State {
        State { settings, tokens, policy, packs: RwLock::new(packs), store, metrics: Metrics::default(), store_trouble: Mutex::new(None) }
    }
}
