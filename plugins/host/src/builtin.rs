//! Connectors linked into the host's binary ("built-ins"): each is a
//! library crate whose module [`connector_module!`](cavra_connector_api::connector_module)
//! builds, reached through the same [`ConnectorModuleRef`] a plugin file
//! exports, so every call runs under the same guards.
//!
//! Its own module, importing nothing from the crate, because the registry
//! loads built-ins and process isolation runs one in a child: with the type
//! in `registry.rs`, the two would import each other.

use std::path::PathBuf;

use cavra_connector_api::ConnectorModuleRef;

/// The argument that tells a child process (`cavra plugin-child`) to serve
/// the built-in connector named after it instead of a plugin file.
pub const BUILTIN_ARG: &str = "--builtin";

/// Where a refusal of the built-in connector `name` points (it has no file),
/// whether or not this binary has it.
pub(crate) fn shown_path(name: &str) -> PathBuf {
    PathBuf::from(format!("(built-in {name})"))
}

/// A connector compiled into the host.
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    /// The connector's name (what it describes itself as; a child process
    /// finds the built-in by it).
    pub name: &'static str,
    /// Its module (the connector crate's `module` function).
    pub module: fn() -> ConnectorModuleRef,
}

impl Builtin {
    /// Where a refusal of this built-in points: it has no file.
    pub(crate) fn shown_path(&self) -> PathBuf {
        shown_path(self.name)
    }

    /// Whether `file` is this connector's own plugin build
    /// (`libcavra_plugin_NAME.so`, `cavra_plugin_NAME.dll`, ...): the same
    /// code the built-in already is, as cargo leaves it beside the binary.
    pub(crate) fn is_plugin_build(&self, file: &std::path::Path) -> bool {
        let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else {
            return false;
        };
        let stem = stem.strip_prefix("lib").unwrap_or(stem);
        stem.strip_prefix("cavra_plugin_").is_some_and(|name| name == self.name)
    }
}
