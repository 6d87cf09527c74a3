//! Why a plugin file (or directory) was not loaded.
//!
//! Its own module, importing nothing from the crate, because discovery, the
//! loader and process isolation all refuse files and the registry collects
//! the refusals: with the type in `registry.rs`, those modules and the
//! registry would import each other.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Why a file was not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Not a dynamic library, or one without a connector root module.
    NotAPlugin,
    /// Built against another connector ABI major (or an incompatible layout).
    IncompatibleAbi,
    /// The plugin failed to initialise or to describe itself.
    InitFailed,
    /// A plugin directory that cannot be read.
    Unreadable,
}

/// A file (or directory) that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The file or directory.
    pub path: PathBuf,
    /// The category.
    pub kind: RefusalKind,
    /// A one-line, actionable reason.
    pub reason: String,
}
