//! `cavra-app`: the application that the CLI and the HTTP API both serve,
//! knowing neither clap nor hyper. Front ends build a typed request, call
//! one operation with a [`PackSource`] (and a [`store::StoreProvider`] where
//! records are kept), and render the typed record it returns, or map the one
//! error type, [`AppError`], to an exit code or an HTTP status.
//!
//! Data flows one way: documents and requests -> bound packs (`cavra-engine`)
//! -> decisions -> typed [`records`] -> store / output. The operations:
//! [`readiness`], [`evaluate`] (go-pilot), [`plan`], [`history`] (routes,
//! latest plans), [`acks`], [`escalation`], [`simulate`], [`trends`],
//! [`deliver`], [`evaluation`] of any pack, and [`diff`], the impact of a
//! change to a pack or its inputs.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod acks;
pub mod bundled;
pub mod claims;
pub mod connectors;
pub mod contracts;
pub mod deliver;
pub mod diff;
pub mod documents;
pub mod error;
pub mod escalation;
pub mod evaluate;
pub mod evaluation;
mod hash;
pub mod history;
pub mod lifecycle;
pub mod modules;
pub mod packs;
pub mod parallel;
pub mod plan;
pub mod policy;
pub mod readiness;
pub mod records;
pub mod recovery;
pub mod retry;
pub mod routing;
pub mod safety;
pub mod simulate;
pub mod store;
pub mod trends;

pub use error::{AppError, Field, Refusal};
pub use hash::content_hash as json_content_hash;
pub use packs::PackSource;
