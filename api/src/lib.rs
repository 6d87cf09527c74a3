//! `cavra-api`: the HTTP front end (hyper 1.x on tokio) over `cavra-app`.
//! Every endpoint converts its query or body into the application's typed
//! request, calls the same operation as the CLI, and answers with the typed
//! record as JSON; application errors are mapped to statuses in one place
//! (`http::ApiError::from_app`). This crate adds only HTTP concerns:
//! routing, limits, access control, JSON errors, metrics, the Evidence
//! Console, readiness probes and graceful shutdown. It holds one store
//! handle, opened lazily, so the server starts and recovers whatever state
//! its store is in.

#![forbid(unsafe_code)]

mod auth;
mod handlers;
mod http;
mod metrics;
mod server;
mod state;
mod sweeper;

pub use auth::token_line;
pub use server::Server;
pub use state::Settings;
