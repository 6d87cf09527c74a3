//! The hyper plumbing: accept loop, per-connection settings (a timer so the
//! header-read timeout works, keep-alive), the request pipeline (route,
//! authorise, read the body under its limit, run the handler under a
//! timeout, count it, log it) and graceful shutdown on SIGINT/SIGTERM.

use super::auth::{Identity, Role, Tokens};
use super::handlers::{self, Access, Route};
use super::http::{check_content_type, ApiError, Reply};
use super::metrics::Metrics;
use crate::deliver::IsolationMode;
use crate::packs::CompiledPacks;
use crate::runtime::ReportArgs;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value as Json;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Settings {
    pub report: ReportArgs,
    pub store: PathBuf,
    pub policy: Option<Json>,
    pub plugin_dirs: Vec<PathBuf>,
    pub isolation: IsolationMode,
    pub runtime: Option<PathBuf>,
    pub tokens: Option<Tokens>,
    pub max_body: usize,
    pub request_timeout: Duration,
    pub log_json: bool,
    pub log_requests: bool,
}

/// What every request sees. The server keeps no state but this (and the
/// store), so instances can run side by side.
pub(crate) struct State {
    pub settings: Settings,
    packs: RwLock<Arc<CompiledPacks>>,
    pub metrics: Metrics,
}

/// One request, read and authorised, as the handlers see it.
pub(crate) struct Call {
    pub method: Method,
    pub query: Option<String>,
    pub body: Bytes,
    pub identity: Option<Identity>,
}

impl State {
    pub(crate) fn assemble(packs: Arc<CompiledPacks>, settings: Settings) -> State {
        State { settings, packs: RwLock::new(packs), metrics: Metrics::default() }
    }

    /// The packs in use now; a reload swaps them for later requests only.
    pub(crate) fn packs(&self) -> Arc<CompiledPacks> {
        self.packs.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn replace_packs(&self, packs: CompiledPacks) {
        *self.packs.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(packs);
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

pub(crate) fn serve(listener: std::net::TcpListener, state: State) -> std::io::Result<()> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
    runtime.block_on(accept_loop(listener, Arc::new(state)))
}

async fn accept_loop(listener: std::net::TcpListener, state: Arc<State>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        state.log(&[("event", "accept_failed".into()), ("error", e.to_string().into())]);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(respond(&state, req).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            signal = &mut shutdown => {
                state.log(&[("event", "shutdown".into()), ("signal", signal.into())]);
                break;
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => {
            state.log(&[("event", "drain_timeout".into())]);
        }
    }
    // The store is opened per operation, so nothing is left open here.
    Ok(())
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return "SIGINT";
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

async fn respond(state: &Arc<State>, req: Request<Incoming>) -> Reply {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = handlers::resolve(&path);
    let template = route.as_ref().map(|r| r.template).unwrap_or("unmatched");
    let reply = match route {
        Some(route) => match tokio::time::timeout(state.settings.request_timeout, pipeline(state, route, req)).await {
            Ok(result) => result.unwrap_or_else(|e| e.reply()),
            Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long; it may still complete (see the store)").reply(),
        },
        None => ApiError::not_found(format!("no endpoint {path}; see GET /v1/packs and `cavra api --help` for the endpoints")).reply(),
    };
    let elapsed = started.elapsed();
    let status = reply.status().as_u16();
    state.metrics.request(template, method.as_str(), status, elapsed);
    // High-volume successes (decisions, probes, scrapes) are counted, not logged.
    let quiet = status < 400 && (!state.settings.log_requests || matches!(template, "/v1/packs/{pack}/evaluate" | "/healthz" | "/metrics"));
    if !quiet {
        state.log(&[
            ("method", method.as_str().into()),
            ("route", template.into()),
            ("status", status.into()),
            ("micros", (elapsed.as_micros() as u64).into()),
        ]);
    }
    reply
}

async fn pipeline(state: &Arc<State>, route: Route, req: Request<Incoming>) -> Result<Reply, ApiError> {
    let method = req.method().clone();
    if !route.methods.contains(&method) {
        let mut e =
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{} {} is not allowed; use {}", method, route.template, route.allow));
        e.allow = Some(route.allow);
        return Err(e);
    }
    let identity = match (&state.settings.tokens, route.access(&method)) {
        (_, Access::Public) | (None, _) => None,
        (Some(tokens), Access::Read) => Some(tokens.check(req.headers().get(hyper::header::AUTHORIZATION), Role::Reader)?),
        (Some(tokens), Access::Change) => Some(tokens.check(req.headers().get(hyper::header::AUTHORIZATION), Role::Operator)?),
    };
    let limit = state.settings.max_body;
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is larger than {limit} bytes (--max-body-bytes)"));
    let declared = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let query = req.uri().query().map(String::from);
    let body = if method == Method::POST {
        check_content_type(req.headers().get(hyper::header::CONTENT_TYPE))?;
        match Limited::new(req.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return Err(too_large()),
            Err(e) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_body", format!("cannot read the request body: {e}"))),
        }
    } else {
        Bytes::new()
    };
    let call = Call { method, query, body, identity };
    handlers::handle(state.clone(), route.endpoint, call).await
}
