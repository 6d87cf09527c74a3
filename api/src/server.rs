//! The hyper plumbing: accept loop, per-connection settings (a timer so the
//! header-read timeout works, keep-alive), the request pipeline (route,
//! authorise, read the body under its limit, run the handler under a
//! timeout, count it, log it) and graceful shutdown on SIGINT/SIGTERM.
//!
//! Shutdown: the listener closes, and in-flight requests get the grace
//! (`Settings::shutdown_grace`, `--shutdown-grace-secs`) to finish. A
//! delivery may not finish at all (a connector stuck for good, retries
//! backing off), so at the end of the grace every delivery still running is
//! interrupted ([`cavra_app::deliver::interrupt_all`]): plugin children are
//! killed, each open notification gets a final `interrupted` attempt (not a
//! failure: it stays `pending_delivery`, its claim is released), and the
//! requests answer with their delivery results, for which they get
//! [`INTERRUPT_WAIT`]. An in-process connector call cannot be stopped: it is
//! abandoned the same way and ends with the process. Work the drain does not
//! count (a sweep of expired claims) gets the same grace and interrupt, and
//! the exit waits for no blocking task beyond that: dropping a tokio runtime
//! would wait for each one however long it runs.
//!
//! A request answered before its body was read (413, 401, 404, 415, ...)
//! has the rest of its body read and discarded, within bounds, before the
//! answer goes out: closing a socket with unread data makes the kernel reset
//! the connection, and a client still sending would see the reset instead of
//! the answer.

use crate::auth::{Role, Tokens};
use crate::handlers::{self, Access, Route};
use crate::http::{check_content_type, ApiError, Reply};
use crate::metrics;
use crate::state::{Call, Settings, State};
use bytes::{Bytes, BytesMut};
use cavra_app::packs::{CompiledPacks, PackSource};
use cavra_app::safety::Screen;
use cavra_app::store::SharedStore;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long, after the grace, interrupted requests get to write their
/// answers: recording the interrupted attempts and the result takes well
/// under a second; a client that does not read its answer is not waited for.
const INTERRUPT_WAIT: Duration = Duration::from_secs(5);
/// How long blocking work still running after an interrupt (whose request
/// was already given [`INTERRUPT_WAIT`]) may take before the process exits.
const EXIT_WAIT: Duration = Duration::from_secs(1);
/// The most of an unread request body that is read and thrown away so that
/// its sender receives the answer (see the module docs). A body declared
/// larger is not read at all: the connection is closed after the answer.
const DISCARD_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// How long the rest of a body may take to arrive before the answer goes out
/// anyway (and the connection is closed).
const DISCARD_MAX_TIME: Duration = Duration::from_secs(10);

/// A server ready to serve: tokens read, packs compiled, policy screened.
pub struct Server {
    state: State,
}

impl Server {
    /// Reads the tokens, compiles the packs and screens the server's policy.
    /// The store is not opened here: a server whose store is down starts,
    /// answers 503 for what needs the store, and says so on `/readyz`.
    pub fn new(settings: Settings) -> Result<Server, String> {
        let tokens = settings.tokens.as_deref().map(Tokens::load).transpose()?;
        if tokens.is_none() && !settings.listen.ip().is_loopback() {
            return Err(format!(
                "--listen {}: without CAVRA_API_TOKENS the API only binds to loopback (127.0.0.1 or ::1); configure tokens to serve other addresses",
                settings.listen
            ));
        }
        let packs = Arc::new(CompiledPacks::load(settings.rules.as_deref()).map_err(|e| e.to_string())?.with_horizon_days(settings.bind_horizon_days));
        let policy = match &settings.routing_policy {
            Some(path) => {
                let policy = cavra_app::documents::read_json(path).map_err(|e| format!("--routing-policy: {e}"))?;
                let screen = Screen::load(&PackSource::Compiled(packs.clone())).map_err(|e| e.to_string())?;
                let refused = screen.refusals(&policy).map_err(|e| e.to_string())?;
                if !refused.is_empty() {
                    let reasons: Vec<&str> = refused.iter().map(|r| r.reason.as_str()).collect();
                    return Err(format!("--routing-policy: {} is not public-safe:\n  {}", path.display(), reasons.join("\n  ")));
                }
                Some(policy)
            }
            None => None,
        };
        // The runtime's files are checked now, so a mistake stops the start
        // rather than failing every evaluation.
        let cli_flag = |f: &cavra_app::Field| format!("--{}", f.name.replace('_', "-"));
        settings.runtime_files.checked(&PackSource::Compiled(packs.clone())).map_err(|e| e.render(cli_flag))?;
        let store = SharedStore::new(settings.store.clone());
        Ok(Server { state: State::new(settings, tokens, policy, packs, store) })
    }

    /// Serves on `listener` until SIGINT or SIGTERM, then drains within the
    /// grace, interrupting the deliveries still running at its end (see the
    /// module docs).
    pub fn serve(self, listener: std::net::TcpListener) -> std::io::Result<()> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
        let grace_ends = runtime.block_on(accept_loop(listener, Arc::new(self.state)))?;
        // The drain counted requests only. Blocking work still running (a
        // sweep of expired claims) gets the rest of the grace, then is
        // interrupted like a request; the runtime is not simply dropped, which
        // would wait for it however long it runs.
        let Some(grace_ends) = grace_ends else {
            // A grace that never ends: wait as promised.
            drop(runtime);
            return Ok(());
        };
        let left = grace_ends.saturating_duration_since(Instant::now());
        let wait = if cavra_app::deliver::interrupted() {
            EXIT_WAIT
        } else if left.is_zero() {
            cavra_app::deliver::interrupt_all();
            INTERRUPT_WAIT
        } else {
            let timer = std::thread::Builder::new().name("cavra-shutdown-grace".into()).spawn(move || {
                std::thread::sleep(left);
                cavra_app::deliver::interrupt_all();
            });
            if timer.is_err() {
                // No timer: interrupt now rather than never.
                cavra_app::deliver::interrupt_all();
            }
            left.saturating_add(INTERRUPT_WAIT)
        };
        runtime.shutdown_timeout(wait);
        Ok(())
    }
}

/// Serves until SIGINT or SIGTERM, then drains (see the module docs).
/// Returns when the grace ends (the signal's instant plus the grace; `None`
/// for a grace too long to represent, which never ends).
async fn accept_loop(listener: std::net::TcpListener, state: Arc<State>) -> std::io::Result<Option<Instant>> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    crate::sweeper::spawn(state.clone());
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
                let grace = state.settings.shutdown_grace;
                state.log(&[("event", "shutdown".into()), ("signal", signal.into()), ("grace_secs", grace.as_secs_f64().into())]);
                break;
            }
        }
    }
    let grace_ends = Instant::now().checked_add(state.settings.shutdown_grace);
    drop(listener);
    let mut drained = std::pin::pin!(graceful.shutdown());
    // The store closes when the last request holding it ends.
    let Some(ends) = grace_ends else {
        drained.await;
        return Ok(None);
    };
    if tokio::time::timeout_at(ends.into(), &mut drained).await.is_ok() {
        return Ok(grace_ends);
    }
    // What is still running may never end on its own: a connector stuck for
    // good, or retries backing off for minutes. Interrupted, each delivery
    // records its open notifications as interrupted, releases their claims
    // and answers its client.
    let killed = cavra_app::deliver::interrupt_all();
    state.log(&[("event", "shutdown_grace_ended".into()), ("plugin_processes_killed", killed.into())]);
    if tokio::time::timeout(INTERRUPT_WAIT, &mut drained).await.is_err() {
        state.log(&[("event", "drain_timeout".into())]);
    }
    Ok(grace_ends)
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
    let (parts, body) = req.into_parts();
    // `Some` while part of the body may be unread; see `discard_rest`.
    let mut body = Some(body);
    let path = parts.uri.path().to_string();
    let route = handlers::resolve(&path);
    // Unknown paths share one label: a client cannot grow the label set.
    let template = route.as_ref().map(|r| r.template).unwrap_or(metrics::OTHER);
    let mut reply = match route {
        Some(route) => match tokio::time::timeout(state.settings.request_timeout, pipeline(state, route, &parts, &mut body)).await {
            Ok(result) => result.unwrap_or_else(|e| e.reply()),
            Err(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long; it may still complete (see the store)").reply(),
        },
        None => ApiError::not_found(format!("no endpoint {path}; see GET /v1/packs and `cavra api --help` for the endpoints")).reply(),
    };
    if let Some(body) = body.take() {
        if !discard_rest(&parts.headers, body).await {
            reply.headers_mut().insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    let elapsed = started.elapsed();
    let status = reply.status().as_u16();
    let method = &parts.method;
    state.metrics.request(template, method.as_str(), status, elapsed);
    // High-volume successes (decisions, probes, scrapes) are counted, not logged.
    let quiet = status < 400 && (!state.settings.log_requests || matches!(template, "/v1/packs/{pack}/evaluate" | "/healthz" | "/metrics"));
    if !quiet {
        state.log(&[
            ("method", metrics::method_label(method.as_str()).into()),
            ("route", template.into()),
            ("status", status.into()),
            ("micros", (elapsed.as_micros() as u64).into()),
        ]);
    }
    reply
}

/// The request's declared `Content-Length`, if it has a valid one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
}

/// Reads and throws away what is left of a body the answer does not need,
/// up to [`DISCARD_MAX_BYTES`] and [`DISCARD_MAX_TIME`], so that a client
/// still sending it receives the answer rather than a connection reset.
/// `false` when some of it was left unread: the connection must then close.
async fn discard_rest(headers: &HeaderMap, mut body: Incoming) -> bool {
    if body.is_end_stream() {
        return true;
    }
    // A client waiting for `100 Continue` has not sent the body: reading
    // would invite the very body being refused.
    let waits_for_continue = headers.get(hyper::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let too_long = declared_length(headers).is_some_and(|n| n > DISCARD_MAX_BYTES);
    if waits_for_continue || too_long {
        return false;
    }
    let read_all = async {
        let mut discarded: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                discarded = discarded.saturating_add(data.len() as u64);
                if discarded > DISCARD_MAX_BYTES {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DISCARD_MAX_TIME, read_all).await.unwrap_or(false)
}

/// The body, read whole if it is at most `limit` bytes. Over the limit, the
/// rest stays in `slot` (to be discarded before the answer); read whole or
/// broken, `slot` is emptied.
async fn read_body(slot: &mut Option<Incoming>, limit: usize, too_large: impl Fn() -> ApiError) -> Result<Bytes, ApiError> {
    let Some(body) = slot.as_mut() else {
        return Ok(Bytes::new());
    };
    let mut collected = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                *slot = None;
                return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_body", format!("cannot read the request body: {e}")));
            }
        };
        if let Some(data) = frame.data_ref() {
            if collected.len().saturating_add(data.len()) > limit {
                return Err(too_large());
            }
            collected.extend_from_slice(data);
        }
    }
    *slot = None;
    Ok(collected.freeze())
}

async fn pipeline(state: &Arc<State>, route: Route, parts: &hyper::http::request::Parts, body: &mut Option<Incoming>) -> Result<Reply, ApiError> {
    let method = parts.method.clone();
    if !route.methods.contains(&method) {
        let mut e =
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{} {} is not allowed; use {}", method, route.template, route.allow));
        e.allow = Some(route.allow);
        return Err(e);
    }
    let identity = match (&state.tokens, route.access(&method)) {
        (_, Access::Public) | (None, _) => None,
        (Some(tokens), Access::Read) => Some(tokens.check(parts.headers.get(hyper::header::AUTHORIZATION), Role::Reader)?),
        (Some(tokens), Access::Change) => Some(tokens.check(parts.headers.get(hyper::header::AUTHORIZATION), Role::Operator)?),
    };
    let limit = state.settings.max_body;
    let too_large = || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is larger than {limit} bytes (--max-body-bytes)"));
    if declared_length(&parts.headers).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let query = parts.uri.query().map(String::from);
    let body = if method == Method::POST {
        check_content_type(parts.headers.get(hyper::header::CONTENT_TYPE))?;
        read_body(body, limit, too_large).await?
    } else {
        Bytes::new()
    };
    let call = Call { method, query, body, identity };
    handlers::handle(state.clone(), route.endpoint, call).await
}
