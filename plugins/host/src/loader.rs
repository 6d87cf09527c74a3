//! Loading one connector library into this process (or checking the module
//! of a connector linked into it: [`Library::from_module`]).
//!
//! Each file is opened with `abi_stable::library::lib_header_from_path` and
//! its root module initialised with `init_root_module` (not
//! `RootModule::load_from_file`, which caches the first library it loads and
//! hands it back for every later path). abi_stable checks the connector ABI
//! version and the layout of the root module; the host then checks the
//! module's own `abi_major` field and asks the plugin to describe itself.
//! Libraries are never unloaded: a plugin's code may still be referenced by
//! leaked statics or threads, and abi_stable does not support unloading.

use std::path::Path;

use abi_stable::library::{lib_header_from_path, LibraryError, RootModuleError};
use abi_stable::std_types::{RResult, RString};
use cavra_connector_api::{ConnectorModuleRef, DeliveryOutcome, ABI_MAJOR, ABI_MINOR};
use serde::{Deserialize, Serialize};

use crate::refusal::{Refusal, RefusalKind};

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Description {
    pub name: String,
    pub version: String,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub providers: Vec<String>,
}

/// A loaded, checked connector library.
#[derive(Clone, Copy)]
pub(crate) struct Library {
    module: ConnectorModuleRef,
}

impl Library {
    /// Loads and checks the library at `path`; a refusal says why not.
    pub fn load(path: &Path) -> Result<(Library, Description), Refusal> {
        let refuse = |kind, reason: String| Refusal { path: path.to_owned(), kind, reason };
        let header = lib_header_from_path(path).map_err(|e| {
            let (kind, reason) = explain(&e);
            refuse(kind, reason)
        })?;
        let module = header.init_root_module::<ConnectorModuleRef>().map_err(|e| {
            let (kind, reason) = explain(&e);
            refuse(kind, reason)
        })?;
        Library::from_module(module).map_err(|(kind, reason)| refuse(kind, reason))
    }

    /// Checks a module this process already has (a built-in connector,
    /// linked into the binary) as [`Library::load`] checks a file's, and
    /// asks it to describe itself.
    pub fn from_module(module: ConnectorModuleRef) -> Result<(Library, Description), (RefusalKind, String)> {
        // abi_stable compared the version strings of a file already; the
        // field is a second check that does not depend on how the module was
        // exported (and the only one for a linked module).
        if module.abi_major() != ABI_MAJOR {
            return Err((
                RefusalKind::IncompatibleAbi,
                format!(
                    "built against connector ABI {}.{}; this host speaks ABI {ABI_MAJOR}.x (rebuild the plugin against cavra-connector-api {ABI_MAJOR}.x)",
                    module.abi_major(),
                    module.abi_minor()
                ),
            ));
        }
        let library = Library { module };
        let description = library.describe().map_err(|reason| (RefusalKind::InitFailed, reason))?;
        Ok((library, description))
    }

    fn describe(&self) -> Result<Description, String> {
        let text =
            |result: RResult<RString, RString>, what: &str| result.into_result().map(String::from).map_err(|e| format!("failed to report its {what}: {e}"));
        let name = text((self.module.name())(), "name")?;
        let version = text((self.module.version())(), "version")?;
        let providers: Vec<String> =
            (self.module.providers())().into_result().map_err(|e| format!("failed to report its providers: {e}"))?.into_iter().map(String::from).collect();
        let description = Description { name, version, abi_major: self.module.abi_major(), abi_minor: self.module.abi_minor(), providers };
        check_description(&description)?;
        Ok(description)
    }

    /// Runs the plugin's configuration check on a section (`null` when absent).
    pub fn validate_config(&self, section_json: String) -> Result<(), String> {
        (self.module.validate_config())(section_json.into()).into_result().map_err(String::from)
    }

    /// The plugin's description of its target for a section.
    pub fn target(&self, section_json: String) -> String {
        (self.module.target())(section_json.into()).into()
    }

    /// One delivery call, on the current thread.
    pub fn deliver(&self, request_json: String) -> DeliveryOutcome {
        (self.module.deliver())(request_json.into())
    }
}

/// A plugin must have a name and serve at least one provider, with names
/// that are safe to print and to use as configuration keys.
pub(crate) fn check_description(d: &Description) -> Result<(), String> {
    let valid = |s: &str| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid(&d.name) {
        return Err("its name must be 1-64 characters of letters, digits, `-`, `_` or `.`".into());
    }
    if d.providers.is_empty() {
        return Err("it serves no provider".into());
    }
    if let Some(bad) = d.providers.iter().find(|p| !valid(p)) {
        return Err(format!("provider name {bad:?} must be 1-64 characters of letters, digits, `-`, `_` or `.`"));
    }
    let mut sorted = d.providers.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != d.providers.len() {
        return Err("it lists a provider twice".into());
    }
    Ok(())
}

/// A short, actionable explanation of an abi_stable loading error.
fn explain(e: &LibraryError) -> (RefusalKind, String) {
    match e {
        LibraryError::OpenError { err, .. } => (RefusalKind::NotAPlugin, format!("not a loadable dynamic library: {}", first_line(&err.to_string()))),
        LibraryError::GetSymbolError { .. } => (RefusalKind::NotAPlugin, "not a cavra connector plugin: it exports no abi_stable root module".into()),
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
            (RefusalKind::IncompatibleAbi, "built with an abi_stable release this host cannot load (rebuild against the current cavra-connector-api)".into())
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => (
            RefusalKind::IncompatibleAbi,
            format!(
                "built against connector ABI {}.{}; this host speaks ABI {}.{} and loads plugins of ABI {}.x only (rebuild the plugin against cavra-connector-api {}.x)",
                actual_version.major, actual_version.minor, expected_version.major, ABI_MINOR, expected_version.major, expected_version.major
            ),
        ),
        LibraryError::ParseVersionError(_) => (RefusalKind::IncompatibleAbi, "its connector ABI version is malformed".into()),
        LibraryError::AbiInstability(details) => (
            RefusalKind::IncompatibleAbi,
            format!("its connector interface does not match this host's (built against an incompatible cavra-connector-api): {}", first_line(&details.to_string())),
        ),
        LibraryError::RootModule { err: RootModuleError::Unwound, .. } => (RefusalKind::InitFailed, "its root module panicked while initialising".into()),
        LibraryError::RootModule { err: RootModuleError::Returned(e), .. } => (RefusalKind::InitFailed, format!("its root module failed to initialise: {}", first_line(&e.to_string()))),
        LibraryError::Many(errors) => errors.iter().next().map(explain).unwrap_or_else(|| (RefusalKind::InitFailed, "failed to load".into())),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("unknown error");
    line.chars().take(300).collect()
}
