//! The set of loaded connectors (built into the host, or plugin files),
//! indexed by provider, and its load report.
//!
//! [`Registry::load_sources`] never fails as a whole: every file either loads
//! or is refused with its path and a reason, so one bad plugin never stops
//! the others (or the process). Who serves a provider:
//! 1. a connector whose configuration section lists it in `providers`
//!    (decided per delivery, see [`ConnectorConfig::route`]);
//! 2. a built-in connector, unless the operator lets plugin files take the
//!    provider over (`overrides`, `--plugin-override`): a file claiming a
//!    built-in's provider is then *shadowed* for it, which is no error (the
//!    plugin builds of the built-ins that cargo leaves beside the binary are
//!    not even loaded);
//! 3. the one plugin file claiming it. Two files claiming one provider is a
//!    [`HostError::ProviderConflict`] naming both; neither serves that
//!    provider until one is removed, since picking one would be a guess.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use cavra_connector_api::{DeliveryRequest, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::builtin::Builtin;
use crate::call::CallResult;
use crate::config::ConnectorConfig;
use crate::discovery::find_plugin_files;
use crate::error::HostError;
use crate::interrupt;
use crate::isolation::{ChildPlugin, ChildSource, Isolation};
use crate::loader::{Description, Library};
use crate::refusal::Refusal;

/// Schema string of the JSON form of a [`LoadReport`].
pub const PLUGINS_SCHEMA: &str = "cavra.plugins.v1";

/// Where a connector comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Compiled into the host: always available.
    Builtin,
    /// A plugin library file.
    File,
}

/// Where a connector's calls run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunsIn {
    /// In the host process.
    InProcess,
    /// In a child process of its own.
    Process,
}

impl RunsIn {
    fn of(isolation: &Isolation) -> RunsIn {
        match isolation {
            Isolation::InProcess => RunsIn::InProcess,
            Isolation::Process { .. } => RunsIn::Process,
        }
    }
}

/// A connector that loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Built in, or a file.
    pub origin: Origin,
    /// The library file; none for a built-in.
    pub path: Option<PathBuf>,
    /// Where its calls run.
    pub runs_in: RunsIn,
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

/// A plugin file whose claim on providers a built-in connector keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shadowed {
    /// The file.
    pub path: PathBuf,
    /// The providers it does not serve.
    pub providers: Vec<String>,
    /// The built-in connector that serves them.
    pub builtin: String,
    /// Whether the file was loaded at all: the built-in's own plugin build
    /// is not (it is the same code).
    pub loaded: bool,
}

/// A provider that the connector configuration sends to a connector (its
/// section's `providers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfiguredRoute {
    /// The provider.
    pub provider: String,
    /// The connector (section) that serves it.
    pub connector: String,
    /// Whether a connector of that name is loaded.
    pub loaded: bool,
}

/// What [`Registry::load_sources`] found: for `cavra plugins list` (text via
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
    /// Plugin files whose providers built-ins keep.
    #[serde(default)]
    pub shadowed: Vec<Shadowed>,
    /// The providers plugin files may take over from built-ins.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// Providers the connector configuration sends elsewhere (see [`Registry::report_for`]).
    #[serde(default)]
    pub configured: Vec<ConfiguredRoute>,
    /// What an operator should know but that stops nothing (an override no file uses).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl LoadReport {
    /// The conflicts as errors.
    pub fn errors(&self) -> Vec<HostError> {
        self.conflicts.iter().map(ProviderConflict::to_error).collect()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let runs = |r: RunsIn| match r {
            RunsIn::InProcess => "in process",
            RunsIn::Process => "in a child process",
        };
        let builtin = self.loaded.iter().filter(|p| p.origin == Origin::Builtin).count();
        writeln!(
            f,
            "{} connector(s): {builtin} built in, {} from plugin files; {} file(s) refused",
            self.loaded.len(),
            self.loaded.len() - builtin,
            self.refused.len()
        )?;
        for p in &self.loaded {
            let providers = if p.providers.is_empty() { "(none)".to_owned() } else { p.providers.join(", ") };
            let origin = match &p.path {
                Some(path) => format!("file {}", path.display()),
                None => "built in".to_owned(),
            };
            writeln!(f, "  {} {} (ABI {}) serves {providers}  [{origin}; runs {}]", p.name, p.version, p.abi, runs(p.runs_in))?;
        }
        if self.plugin_dirs.is_empty() {
            writeln!(f, "plugin folders searched: none (--plugin-dir and CAVRA_PLUGIN_PATH are not set)")?;
        } else {
            let dirs: Vec<String> = self.plugin_dirs.iter().map(|d| d.display().to_string()).collect();
            writeln!(f, "plugin folders searched: {}", dirs.join(", "))?;
        }
        for s in &self.shadowed {
            if s.loaded {
                let providers = s.providers.join(",");
                writeln!(
                    f,
                    "  {} does not serve {providers}: the built-in `{}` does (--plugin-override {providers} to use the file)",
                    s.path.display(),
                    s.builtin
                )?;
            } else {
                writeln!(f, "  skipped {}: the plugin build of the built-in `{}` connector", s.path.display(), s.builtin)?;
            }
        }
        for r in &self.refused {
            writeln!(f, "  refused {}: {}", r.path.display(), r.reason)?;
        }
        for c in &self.configured {
            let state = if c.loaded { "" } else { " (no connector of that name is loaded)" };
            writeln!(f, "  provider {} goes to connector {} (connector configuration `providers`){state}", c.provider, c.connector)?;
        }
        for c in &self.conflicts {
            writeln!(f, "  error: {}", c.to_error())?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
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
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Served(usize),
    Conflict,
}

/// What [`Registry::load_sources`] loads, and how.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Connectors compiled into the host: always available.
    pub builtins: Vec<Builtin>,
    /// How built-ins run: trusted code, in process unless the operator asks otherwise.
    pub builtin_isolation: Isolation,
    /// The folders searched for plugin files (for the report).
    pub dirs: Vec<PathBuf>,
    /// The plugin files, in load order.
    pub files: Vec<PathBuf>,
    /// Files and folders the search refused.
    pub search_refusals: Vec<Refusal>,
    /// How plugin files run.
    pub isolation: Isolation,
    /// Providers a plugin file may take over from a built-in.
    pub overrides: Vec<String>,
}

/// The loaded connectors. `Sync`: deliveries run on several threads.
pub struct Registry {
    pub(crate) plugins: Vec<Plugin>,
    providers: BTreeMap<String, Slot>,
    report: LoadReport,
}

impl Registry {
    /// Finds and loads the plugin files of `dirs` (see [`plugin_dirs`](crate::plugin_dirs)); no built-ins.
    pub fn load(dirs: &[PathBuf], isolation: &Isolation) -> Registry {
        let (files, search_refusals) = find_plugin_files(dirs);
        Registry::load_sources(Sources { dirs: dirs.to_vec(), files, search_refusals, isolation: isolation.clone(), ..Sources::default() })
    }

    /// Loads exactly these files, in this order; no built-ins.
    pub fn load_files(files: &[PathBuf], isolation: &Isolation) -> Registry {
        Registry::load_sources(Sources { files: files.to_vec(), isolation: isolation.clone(), ..Sources::default() })
    }

    /// Loads the built-ins and the plugin files, and decides who serves each
    /// provider (see the module docs).
    pub fn load_sources(sources: Sources) -> Registry {
        let Sources { builtins, builtin_isolation, dirs, files, search_refusals, isolation, overrides } = sources;
        let mut plugins = Vec::new();
        let mut refused = search_refusals;
        for builtin in &builtins {
            match load_builtin(builtin, &builtin_isolation) {
                Ok(plugin) => plugins.push(plugin),
                Err(refusal) => refused.push(refusal),
            }
        }
        let builtin_count = plugins.len();
        let mut shadowed = Vec::new();
        for path in &files {
            // The plugin build of a built-in is the same code: not worth a
            // load (a child process, under isolation) unless the operator
            // lets files take one of its providers over.
            let build_of = builtins.iter().find(|b| b.is_plugin_build(path));
            if let Some(builtin) = build_of {
                let providers = plugins[..builtin_count].iter().find(|p| p.info.name == builtin.name).map(|p| p.info.providers.clone()).unwrap_or_default();
                if !providers.is_empty() && !providers.iter().any(|p| overrides.contains(p)) {
                    shadowed.push(Shadowed { path: path.clone(), providers, builtin: builtin.name.to_owned(), loaded: false });
                    continue;
                }
            }
            match load_one(path, &isolation) {
                Ok(plugin) => plugins.push(plugin),
                Err(refusal) => refused.push(refusal),
            }
        }
        // Index providers: built-ins first (unless overridden), then files;
        // a provider claimed by two files is served by nobody.
        let mut claims: BTreeMap<String, (Option<usize>, Vec<usize>)> = BTreeMap::new();
        for (i, plugin) in plugins.iter().enumerate() {
            for provider in &plugin.info.providers {
                let claim = claims.entry(provider.clone()).or_default();
                if i < builtin_count {
                    claim.0.get_or_insert(i);
                } else {
                    claim.1.push(i);
                }
            }
        }
        let mut providers = BTreeMap::new();
        let mut conflicts = Vec::new();
        // File -> (the providers a built-in keeps from it, that built-in).
        let mut kept: BTreeMap<usize, (Vec<String>, String)> = BTreeMap::new();
        for (provider, (builtin, files)) in claims {
            match (builtin, files.as_slice()) {
                (Some(b), files) if files.is_empty() || !overrides.contains(&provider) => {
                    for &file in files {
                        kept.entry(file).or_insert_with(|| (Vec::new(), plugins[b].info.name.clone())).0.push(provider.clone());
                    }
                    providers.insert(provider, Slot::Served(b));
                }
                (_, [only]) => {
                    providers.insert(provider, Slot::Served(*only));
                }
                (_, files) => {
                    let paths = files.iter().filter_map(|&i| plugins[i].info.path.clone()).collect();
                    conflicts.push(ProviderConflict { provider: provider.clone(), paths });
                    providers.insert(provider, Slot::Conflict);
                }
            }
        }
        for (file, (providers, builtin)) in kept {
            let path = plugins[file].info.path.clone().unwrap_or_default();
            shadowed.push(Shadowed { path, providers, builtin, loaded: true });
        }
        let mut warnings = Vec::new();
        for provider in &overrides {
            let by_file = plugins[builtin_count..].iter().any(|p| p.info.providers.contains(provider));
            if !by_file {
                let server = match providers.get(provider) {
                    Some(Slot::Served(i)) => format!("; the built-in `{}` serves it", plugins[*i].info.name),
                    _ => String::new(),
                };
                warnings.push(format!("--plugin-override {provider}: no plugin file claims provider `{provider}`{server}"));
            }
        }
        let report = LoadReport {
            schema_version: PLUGINS_SCHEMA.to_owned(),
            plugin_dirs: dirs,
            isolation,
            loaded: plugins.iter().map(|p| p.info.clone()).collect(),
            refused,
            conflicts,
            shadowed,
            overrides,
            configured: Vec::new(),
            warnings,
        };
        Registry { plugins, providers, report }
    }

    /// What was loaded, refused and in conflict.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// [`Registry::report`] with the providers `config` sends to connectors of its choosing.
    pub fn report_for(&self, config: &ConnectorConfig) -> LoadReport {
        let mut report = self.report.clone();
        report.configured = config
            .routes()
            .map(|(provider, connector)| ConfiguredRoute {
                provider: provider.to_owned(),
                connector: connector.to_owned(),
                loaded: self.connector_named(connector).is_some(),
            })
            .collect();
        report
    }

    /// `Err` naming both files when two plugins claim one provider.
    pub fn ensure_no_conflicts(&self) -> Result<(), HostError> {
        match self.report.conflicts.first() {
            Some(conflict) => Err(conflict.to_error()),
            None => Ok(()),
        }
    }

    /// The providers that have exactly one connector, sorted (not counting
    /// those the connector configuration routes).
    pub fn providers(&self) -> Vec<String> {
        self.providers.iter().filter(|(_, slot)| matches!(slot, Slot::Served(_))).map(|(p, _)| p.clone()).collect()
    }

    /// The loaded connector named `name` that serves its own providers (a
    /// file shadowed by a built-in of the same name does not), else any of that name.
    fn connector_named(&self, name: &str) -> Option<&Plugin> {
        let serving = |(i, plugin): &(usize, &Plugin)| plugin.info.providers.iter().any(|p| self.providers.get(p) == Some(&Slot::Served(*i)));
        let named = || self.plugins.iter().enumerate().filter(|(_, p)| p.info.name == name);
        named().find(serving).or_else(|| named().next()).map(|(_, p)| p)
    }

    /// The connector serving `provider` and the configuration section it
    /// gets, or a public-safe reason why there is none.
    pub(crate) fn plugin_for<'a>(&'a self, provider: &str, config: &'a ConnectorConfig) -> Result<(&'a Plugin, Option<&'a Value>), String> {
        if let Some(connector) = config.route(provider) {
            return match self.connector_named(connector) {
                Some(plugin) => Ok((plugin, config.section(connector))),
                None => Err(format!("the connector configuration sends provider `{provider}` to connector `{connector}`, which is not loaded")),
            };
        }
        match self.providers.get(provider) {
            Some(Slot::Served(i)) => {
                let plugin = self.plugins.get(*i).ok_or_else(|| "internal error: plugin index".to_owned())?;
                Ok((plugin, config.section_for(provider, &plugin.info.name)))
            }
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
            None => Err(format!("no loaded connector serves provider `{provider}`")),
        }
    }

    /// Runs each connector's configuration check on its section, and reports
    /// sections no connector serves and providers sent to connectors that
    /// are not loaded. Messages are scrubbed of configured values.
    pub fn validate_config(&self, config: &ConnectorConfig) -> Vec<ConfigProblem> {
        let redactor = config.redactor();
        let mut problems = Vec::new();
        for name in config.connectors() {
            let known = self.providers.contains_key(name) || self.plugins.iter().any(|p| p.info.name == name);
            if !known {
                problems.push(ConfigProblem { connector: name.to_owned(), plugin: None, message: "no loaded connector serves this connector section".into() });
            }
        }
        let served = self.providers.iter().filter_map(|(provider, slot)| match slot {
            Slot::Served(_) => Some(provider.as_str()),
            Slot::Conflict => None,
        });
        let routed = config.routes().map(|(provider, _)| provider);
        let all: std::collections::BTreeSet<&str> = served.chain(routed).collect();
        for provider in all {
            let (plugin, section) = match self.plugin_for(provider, config) {
                Ok(found) => found,
                Err(message) => {
                    problems.push(ConfigProblem { connector: provider.to_owned(), plugin: None, message });
                    continue;
                }
            };
            if let Err(message) = plugin.validate_config(section) {
                let message = redactor.scrub(&message);
                let message = if section.is_none() { format!("no section in the connector configuration ({message})") } else { message };
                problems.push(ConfigProblem { connector: provider.to_owned(), plugin: plugin.info.path.clone(), message });
            }
        }
        problems
    }
}

fn load_builtin(builtin: &Builtin, isolation: &Isolation) -> Result<Plugin, Refusal> {
    let (handle, description) = match isolation {
        Isolation::InProcess => {
            let refuse = |(kind, reason)| Refusal { path: builtin.shown_path(), kind, reason };
            let (library, description) = Library::from_module((builtin.module)()).map_err(refuse)?;
            (Handle::InProcess(library), description)
        }
        Isolation::Process { program, args } => {
            let (child, description) = ChildPlugin::start(ChildSource::Builtin(*builtin), program, args)?;
            (Handle::Process(Box::new(child)), description)
        }
    };
    Ok(Plugin { info: plugin(description, Origin::Builtin, None, isolation), handle })
}

fn load_one(path: &Path, isolation: &Isolation) -> Result<Plugin, Refusal> {
    let (handle, description) = match isolation {
        Isolation::InProcess => {
            let (library, description) = Library::load(path)?;
            (Handle::InProcess(library), description)
        }
        Isolation::Process { program, args } => {
            let (child, description) = ChildPlugin::start(ChildSource::File(path.to_owned()), program, args)?;
            (Handle::Process(Box::new(child)), description)
        }
    };
    Ok(Plugin { info: plugin(description, Origin::File, Some(path.to_owned()), isolation), handle })
}

/// What the report says of a connector that loaded.
fn plugin(description: Description, origin: Origin, path: Option<PathBuf>, isolation: &Isolation) -> PluginInfo {
    let Description { name, version, abi_major, abi_minor, providers } = description;
    PluginInfo { origin, path, runs_in: RunsIn::of(isolation), name, version, abi: format!("{abi_major}.{abi_minor}"), providers }
}
