//! The hyper plumbing: accept loop, per-connection settings (a timer so the
//! header-read timeout works, keep-alive), the request pipeline (route,
//! authorise, read the body under its limit, run the handler under a
//! timeout, count it, log it) and graceful shutdown on SIGINT/SIGTERM.

use crate::auth::{Role, Tokens};
use crate::handlers::{self, Access, Route};
use crate::http::{check_content_type, ApiError, Reply};
use crate::state::{Call, Settings, State};
use bytes::Bytes;
use cavra_app::packs::{CompiledPacks, PackSource};
use cavra_app::safety::Screen;
use cavra_app::store::SharedStore;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

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
        let packs = Arc::new(CompiledPacks::load(settings.rules.as_deref()).map_err(|e| e.to_string())?);
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
        let store = SharedStore::new(settings.store.clone());
        Ok(Server { state: State::new(settings, tokens, policy, packs, store) })
    }

    /// Serves on `listener` until SIGINT or SIGTERM, then drains.
    pub fn serve(self, listener: std::net::TcpListener) -> std::io::Result<()> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
        runtime.block_on(accept_loop(listener, Arc::new(self.state)))
    }
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
    // The store closes when the last request holding it ends.
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
    let identity = match (&state.tokens, route.access(&method)) {
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
