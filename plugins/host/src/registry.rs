//! The set of loaded plugins, indexed by provider, and its load report.
//!
//! [`Registry::load`] never fails as a whole: every file either loads or is
//! refused with its path and a reason, so one bad plugin never stops the
//! others (or the process). Two plugins claiming one provider is a
//! [`HostError::ProviderConflict`] naming both files; neither serves that
//! provider until one is removed, since picking one would be a guess.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use cavra_connector_api::{DeliveryRequest, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call::CallResult;
use crate::config::ConnectorConfig;
use crate::discovery::find_plugin_files;
use crate::error::HostError;
use crate::interrupt;
use crate::isolation::{ChildPlugin, Isolation};
use crate::loader::{Description, Library};
use crate::refusal::Refusal;

/// Schema string of the JSON form of a [`LoadReport`].
pub const PLUGINS_SCHEMA: &str = "cavra.plugins.v1";

/// A plugin that loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The library file.
    pub path: PathBuf,
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The connector ABI it was built against, `MAJOR.MINOR`.
    pub abi: String,
    /// The providers it claims (see [`LoadReport::conflicts`] for any it does not get).
    pub providers: Vec<String>,
}

/// A provider claimed by more than one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderConflict {
    /// The provider.
    pub provider: String,
    /// Every file that claims it, in load order.
    pub paths: Vec<PathBuf>,
}

impl ProviderConflict {
    /// The conflict as an error naming the first two files.
    pub fn to_error(&self) -> HostError {
        let path = |i: usize| self.paths.get(i).cloned().unwrap_or_default();
        HostError::ProviderConflict { provider: self.provider.clone(), first: path(0), second: path(1) }
    }
}

/// What [`Registry::load`] found: for `cavra plugins list` (text via
/// `Display`, JSON via serde).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    /// [`PLUGINS_SCHEMA`].
    pub schema_version: String,
    /// The directories searched, in order.
    pub plugin_dirs: Vec<PathBuf>,
    /// How plugins run.
    pub isolation: Isolation,
    /// Plugins that loaded.
    pub loaded: Vec<PluginInfo>,
    /// Files that did not, with the reason.
    pub refused: Vec<Refusal>,
    /// Providers claimed twice (served by nobody until resolved).
    pub conflicts: Vec<ProviderConflict>,
}

impl LoadReport {
    /// The conflicts as errors.
    pub fn errors(&self) -> Vec<HostError> {
        self.conflicts.iter().map(ProviderConflict::to_error).collect()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let isolation = match &self.isolation {
            Isolation::InProcess => "in process",
            Isolation::Process { .. } => "one child process per plugin",
        };
        writeln!(f, "{} plugin(s) loaded ({isolation}), {} refused", self.loaded.len(), self.refused.len())?;
        for p in &self.loaded {
            let providers = if p.providers.is_empty() { "(none)".to_owned() } else { p.providers.join(", ") };
            writeln!(f, "  {} {} (ABI {}) serves {providers}  [{}]", p.name, p.version, p.abi, p.path.display())?;
        }
        for r in &self.refused {
            writeln!(f, "  refused {}: {}", r.path.display(), r.reason)?;
        }
        for c in &self.conflicts {
            writeln!(f, "  error: {}", c.to_error())?;
        }
        Ok(())
    }
}

/// A problem found by [`Registry::validate_config`]. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigProblem {
    /// The connector section (or provider) concerned.
    pub connector: String,
    /// The plugin file that judged it, if any.
    pub plugin: Option<PathBuf>,
    /// What is wrong (public-safe).
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connector `{}`: {}", self.connector, self.message)
    }
}

/// How a loaded plugin is reached.
pub(crate) enum Handle {
    InProcess(Library),
    Process(Box<ChildPlugin>),
}

/// A loaded plugin.
pub(crate) struct Plugin {
    pub info: PluginInfo,
    pub handle: Handle,
}

/// Extra time the host waits beyond the timeout given to the plugin, so that
/// the plugin's own (more precise) timeout error normally wins.
pub(crate) fn grace(timeout: Duration) -> Duration {
    (timeout / 2).clamp(Duration::from_millis(200), Duration::from_secs(5))
}

/// How often a wait for an in-process connector call looks for an
/// interrupt: nothing can wake a channel wait, and the interrupt comes once.
const INTERRUPT_POLL: Duration = Duration::from_millis(100);

impl Plugin {
    pub(crate) fn validate_config(&self, section: Option<&Value>) -> Result<(), String> {
        let section = section.cloned().unwrap_or(Value::Null);
        match &self.handle {
            Handle::InProcess(library) => library.validate_config(section.to_string()),
            Handle::Process(child) => child.validate_config(&section),
        }
    }

    pub(crate) fn target(&self, section: Option<&Value>) -> String {
        let section = section.cloned().unwrap_or(Value::Null);
        match &self.handle {
            Handle::InProcess(library) => library.target(section.to_string()),
            Handle::Process(child) => child.target(&section),
        }
    }

    /// One attempt, bounded by `timeout` plus [`grace`].
    pub(crate) fn deliver(&self, request: &DeliveryRequest, timeout: Duration) -> CallResult {
        let deadline = timeout.saturating_add(grace(timeout));
        match &self.handle {
            Handle::Process(child) => child.deliver(request, deadline),
            Handle::InProcess(library) => {
                if interrupt::interrupted() {
                    return CallResult::Interrupted;
                }
                let Ok(json) = serde_json::to_string(request) else {
                    return CallResult::Unavailable("could not encode the delivery request".into());
                };
                // The call runs on its own thread so that a plugin ignoring its
                // timeout cannot stall the host: past the deadline the attempt
                // is abandoned (the thread finishes, or not, on its own; the
                // idempotency key protects the provider from a double send).
                // An interrupt abandons it the same way: the call cannot be
                // stopped, and ends with the process.
                let library = *library;
                let (tx, rx) = mpsc::sync_channel(1);
                let spawned = thread::Builder::new().name("cavra-connector-call".into()).spawn(move || {
                    let _ = tx.send(library.deliver(json));
                });
                if spawned.is_err() {
                    return CallResult::Unavailable("could not start a delivery thread".into());
                }
                // A deadline too far to represent means "wait as long as it takes".
                let until = Instant::now().checked_add(deadline);
                loop {
                    let left = until.map_or(INTERRUPT_POLL, |until| until.saturating_duration_since(Instant::now()));
                    match rx.recv_timeout(left.min(INTERRUPT_POLL)) {
                        Ok(outcome) => return CallResult::Outcome(Outcome::from(outcome)),
                        Err(mpsc::RecvTimeoutError::Timeout) if interrupt::interrupted() => return CallResult::Interrupted,
                        Err(mpsc::RecvTimeoutError::Timeout) if left <= INTERRUPT_POLL && until.is_some() => return CallResult::TimedOut,
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            return CallResult::Unavailable("the connector call ended without an outcome".into());
                        }
                    }
                }
            }
        }
    }
}

/// Which plugin serves a provider.
enum Slot {
    Served(usize),
    Conflict,
}

/// The loaded plugins. `Sync`: deliveries run on several threads.
pub struct Registry {
    pub(crate) plugins: Vec<Plugin>,
    providers: BTreeMap<String, Slot>,
    report: LoadReport,
}

impl Registry {
    /// Finds and loads the plugins of `dirs` (see [`plugin_dirs`](crate::plugin_dirs)).
    pub fn load(dirs: &[PathBuf], isolation: &Isolation) -> Registry {
        let (files, refused) = find_plugin_files(dirs);
        let mut registry = Registry::load_files(&files, isolation);
        registry.report.plugin_dirs = dirs.to_vec();
        registry.report.refused.splice(0..0, refused);
        registry
    }

    /// Loads exactly these files, in this order.
    pub fn load_files(files: &[PathBuf], isolation: &Isolation) -> Registry {
        let mut plugins = Vec::new();
        let mut refused = Vec::new();
        for path in files {
            match load_one(path, isolation) {
                Ok(plugin) => plugins.push(plugin),
                Err(refusal) => refused.push(refusal),
            }
        }
        // Index providers; a provider claimed twice is served by nobody.
        let mut claims: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, plugin) in plugins.iter().enumerate() {
            for provider in &plugin.info.providers {
                claims.entry(provider.clone()).or_default().push(i);
            }
        }
        let mut providers = BTreeMap::new();
        let mut conflicts = Vec::new();
        for (provider, claimants) in claims {
            if let [only] = claimants[..] {
                providers.insert(provider, Slot::Served(only));
            } else {
                conflicts.push(ProviderConflict { provider: provider.clone(), paths: claimants.iter().map(|&i| plugins[i].info.path.clone()).collect() });
                providers.insert(provider, Slot::Conflict);
            }
        }
        let report = LoadReport {
            schema_version: PLUGINS_SCHEMA.to_owned(),
            plugin_dirs: Vec::new(),
            isolation: isolation.clone(),
            loaded: plugins.iter().map(|p| p.info.clone()).collect(),
            refused,
            conflicts,
        };
        Registry { plugins, providers, report }
    }

    /// What was loaded, refused and in conflict.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// `Err` naming both files when two plugins claim one provider.
    pub fn ensure_no_conflicts(&self) -> Result<(), HostError> {
        match self.report.conflicts.first() {
            Some(conflict) => Err(conflict.to_error()),
            None => Ok(()),
        }
    }

    /// The providers that have exactly one plugin, sorted.
    pub fn providers(&self) -> Vec<String> {
        self.providers.iter().filter(|(_, slot)| matches!(slot, Slot::Served(_))).map(|(p, _)| p.clone()).collect()
    }

    /// The plugin serving `provider`, or a public-safe reason why there is none.
    pub(crate) fn plugin_for(&self, provider: &str) -> Result<&Plugin, String> {
        match self.providers.get(provider) {
            Some(Slot::Served(i)) => self.plugins.get(*i).ok_or_else(|| "internal error: plugin index".to_owned()),
            Some(Slot::Conflict) => {
                let paths = self
                    .report
                    .conflicts
                    .iter()
                    .find(|c| c.provider == provider)
                    .map(|c| c.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "))
                    .unwrap_or_default();
                Err(format!("provider `{provider}` is claimed by several plugins ({paths}); remove all but one"))
            }
            None => Err(format!("no loaded plugin serves provider `{provider}`")),
        }
    }

    /// Runs each plugin's configuration check on its section, and reports
    /// sections no plugin serves. Messages are scrubbed of configured values.
    pub fn validate_config(&self, config: &ConnectorConfig) -> Vec<ConfigProblem> {
        let redactor = config.redactor();
        let mut problems = Vec::new();
        for name in config.connectors() {
            let known = self.providers.contains_key(name) || self.plugins.iter().any(|p| p.info.name == name);
            if !known {
                problems.push(ConfigProblem { connector: name.to_owned(), plugin: None, message: "no loaded plugin serves this connector".into() });
            }
        }
        for (provider, slot) in &self.providers {
            let Slot::Served(i) = slot else { continue };
            let Some(plugin) = self.plugins.get(*i) else {
                continue;
            };
            let section = config.section_for(provider, &plugin.info.name);
            if let Err(message) = plugin.validate_config(section) {
                let message = redactor.scrub(&message);
                let message = if section.is_none() { format!("no section in the connector configuration ({message})") } else { message };
                problems.push(ConfigProblem { connector: provider.clone(), plugin: Some(plugin.info.path.clone()), message });
            }
        }
        problems
    }
}

fn load_one(path: &Path, isolation: &Isolation) -> Result<Plugin, Refusal> {
    let (handle, description) = match isolation {
        Isolation::InProcess => {
            let (library, description) = Library::load(path)?;
            (Handle::InProcess(library), description)
        }
        Isolation::Process { program, args } => {
            let (child, description) = ChildPlugin::start(path, program, args)?;
            (Handle::Process(Box::new(child)), description)
        }
    };
    let Description { name, version, abi_major, abi_minor, providers } = description;
    let info = PluginInfo { path: path.to_owned(), name, version, abi: format!("{abi_major}.{abi_minor}"), providers };
    Ok(Plugin { info, handle })
}
