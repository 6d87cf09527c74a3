//! Where the rule packs come from ([`PackSource`]: bundled, a rules folder,
//! or a set compiled once at server start), the compiled set itself
//! ([`CompiledPacks`], swapped whole on reload: a set either checks
//! completely or is not used), and [`BoundPack`], a pack bound to its static
//! inputs that resolves the inputs an operation sets, once, by name.

use crate::error::{pack_error, AppError};
use crate::modules::RuleFiles;
use cavra_engine::{Diagnostics, InputSlot, Inputs, Outcome, Pack, Program, Report, Value};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many bound programs (pack + static inputs) a set keeps per pack.
const BOUND_PER_PACK: usize = 64;

#[derive(Debug)]
pub struct CompiledPacks {
    /// By path relative to the rules folder, e.g. `readiness/rollback.cavra`.
    by_file: BTreeMap<String, Pack>,
    /// Pack name (`pack routing`) -> relative path.
    by_name: BTreeMap<String, String>,
    /// Bound programs by pack name and the hash of their static inputs:
    /// binding folds and indexes the statics, worth doing once per policy.
    bound: Mutex<HashMap<String, HashMap<String, Arc<Program>>>>,
    /// Days after binding that a bound program's indexes and decision
    /// tables answer ([`cavra_engine::BindOptions::horizon_days`]).
    horizon_days: u32,
}

/// A pack that does not check, with its rendered diagnostics.
#[derive(Debug)]
pub struct PackFailure {
    pub file: String,
    pub diagnostics: Diagnostics,
}

impl PackFailure {
    pub fn render(&self) -> String {
        self.diagnostics.render(false)
    }
}

/// Why a set of packs was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The folder or a file could not be read, or two packs share a name.
    #[error("{0}")]
    Read(String),
    /// These packs do not check (every one, not only the first).
    #[error("{}", .0.iter().map(PackFailure::render).collect::<Vec<_>>().join("\n"))]
    Check(Vec<PackFailure>),
}

/// Where an operation finds its rule packs.
#[derive(Clone, Debug, Default)]
pub enum PackSource {
    /// The packs bundled in the binary (`rules/`).
    #[default]
    Bundled,
    /// A folder with the layout of `rules/` (`--rules DIR`), read per operation.
    Folder(PathBuf),
    /// Packs compiled once (the API's); nothing is read again.
    Compiled(Arc<CompiledPacks>),
}

impl PackSource {
    /// The bundled packs, or the folder when one is given.
    pub fn from_folder(rules: Option<PathBuf>) -> PackSource {
        match rules.filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) => PackSource::Folder(dir),
            None => PackSource::Bundled,
        }
    }

    /// The pack at `relative` (e.g. `routing.cavra`), compiled.
    pub fn pack(&self, relative: &str) -> Result<Pack, AppError> {
        let (name, source, modules) = match self {
            PackSource::Compiled(packs) => {
                return packs.file(relative).cloned().ok_or_else(|| AppError::Pack(format!("{relative}: no such rule pack in the loaded rules")))
            }
            PackSource::Folder(dir) => {
                let path = dir.join(relative);
                let text = read_pack(&path).map_err(AppError::Pack)?;
                let modules = RuleFiles::for_file(&path, Some(dir), cavra_grammar::DEFAULT_MAX_RULE_BYTES);
                (path.display().to_string(), text, modules)
            }
            PackSource::Bundled => {
                let key = format!("rules/{relative}");
                let text = crate::bundled::get(&key).ok_or_else(|| AppError::Pack(format!("{key}: not bundled in this build")))?;
                (key, text.to_string(), RuleFiles::bundled())
            }
        };
        let pack =
            cavra_engine::compile_with(&name, &source, &modules).map_err(|d| AppError::Pack(format!("the rule pack does not check:\n{}", d.render(false))))?;
        if pack.is_module() {
            return Err(AppError::Pack(format!("{name}: is a module (`module {}`), not a pack a command can run", pack.name())));
        }
        Ok(pack)
    }

    /// The pack at `relative` bound to no static inputs.
    pub fn bind(&self, relative: &'static str) -> Result<BoundPack, AppError> {
        let pack = self.pack(relative)?;
        let program = pack.bind(&HashMap::new()).map_err(|e| pack_error(relative, e))?;
        Ok(BoundPack { file: relative, program })
    }
}

/// A pack bound to its static inputs. Operations name the inputs they set
/// and the decisions they ask for; a pack that lacks one is an error naming
/// the pack and the input, and a failed decision is rendered with its
/// position in the pack.
pub struct BoundPack {
    /// The pack's path relative to the rules folder, for errors.
    pub file: &'static str,
    pub program: Program,
}

impl BoundPack {
    pub fn new(file: &'static str, program: Program) -> BoundPack {
        BoundPack { file, program }
    }

    /// The slot of a declared input.
    pub fn slot(&self, name: &str) -> Result<InputSlot, AppError> {
        self.program.input_slot(name).ok_or_else(|| AppError::Pack(format!("{}: the pack has no input `{name}`", self.file)))
    }

    /// The slots of several inputs, in order.
    pub fn slots<const N: usize>(&self, names: [&str; N]) -> Result<[InputSlot; N], AppError> {
        let slots = names.iter().map(|name| self.slot(name)).collect::<Result<Vec<_>, _>>()?;
        // One slot per name, so the lengths always agree.
        <[InputSlot; N]>::try_from(slots).map_err(|_| AppError::Pack(format!("{}: the pack's inputs could not be resolved", self.file)))
    }

    /// Sets an input by name.
    pub fn set(&self, inputs: &mut Inputs, name: &str, value: Value) -> Result<(), AppError> {
        inputs.set(self.slot(name)?, value);
        Ok(())
    }

    /// Sets an input when the pack declares it (optional settings).
    pub fn set_if_declared(&self, inputs: &mut Inputs, name: &str, value: Value) {
        if let Some(slot) = self.program.input_slot(name) {
            inputs.set(slot, value);
        }
    }

    pub fn inputs(&self) -> Inputs {
        self.program.inputs()
    }

    pub fn decide(&self, decision: &str, inputs: &Inputs) -> Result<Outcome<'_>, AppError> {
        self.program.decide(decision, inputs).map_err(|e| AppError::Evaluation(self.program.render_error(&e)))
    }

    pub fn readiness(&self, gate: &str, inputs: &Inputs) -> Result<Report, AppError> {
        self.program.readiness(gate, inputs).map_err(|e| AppError::Evaluation(self.program.render_error(&e)))
    }

    /// The rendered form of an evaluation error of this program.
    pub fn render_error(&self, e: &cavra_engine::EvalError) -> AppError {
        AppError::Evaluation(self.program.render_error(e))
    }
}

impl CompiledPacks {
    /// Compiles every `.cavra` file of `rules` (or of the bundled packs).
    /// Every failing pack is reported, not only the first. Modules are
    /// checked too, but only packs are kept (and listed).
    pub fn load(rules: Option<&Path>) -> Result<CompiledPacks, LoadError> {
        let sources = match rules {
            Some(dir) => read_folder(dir).map_err(LoadError::Read)?,
            None => crate::bundled::list(".cavra")
                .into_iter()
                .filter_map(|key| Some((key.trim_start_matches("rules/").to_string(), key.to_string(), crate::bundled::get(key)?.to_string())))
                .collect(),
        };
        let mut by_file = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        let mut failures = Vec::new();
        for (relative, shown, text) in sources {
            let modules = match rules {
                Some(dir) => RuleFiles::for_file(Path::new(&shown), Some(dir), cavra_grammar::DEFAULT_MAX_RULE_BYTES),
                None => RuleFiles::bundled(),
            };
            match cavra_engine::compile_with(&shown, &text, &modules) {
                Ok(pack) if pack.is_module() => {}
                Ok(pack) => {
                    if let Some(other) = by_name.insert(pack.name().to_string(), relative.clone()) {
                        return Err(LoadError::Read(format!("{shown}: pack `{}` is also declared in {other}; pack names must be unique", pack.name())));
                    }
                    by_file.insert(relative, pack);
                }
                Err(diagnostics) => failures.push(PackFailure { file: shown, diagnostics }),
            }
        }
        if !failures.is_empty() {
            return Err(LoadError::Check(failures));
        }
        Ok(CompiledPacks { by_file, by_name, bound: Mutex::new(HashMap::new()), horizon_days: cavra_engine::DEFAULT_HORIZON_DAYS })
    }

    /// The pack at `relative` (e.g. `routing.cavra`).
    pub fn file(&self, relative: &str) -> Option<&Pack> {
        self.by_file.get(relative)
    }

    /// The pack declared as `name`.
    pub fn named(&self, name: &str) -> Option<&Pack> {
        self.by_name.get(name).and_then(|file| self.by_file.get(file))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// `{"packs": [{name, file, inputs, decisions, readiness}]}`.
    pub fn describe(&self) -> Json {
        let packs: Vec<Json> = self
            .by_name
            .iter()
            .map(|(name, file)| {
                let pack = &self.by_file[file];
                json!({
                    "name": name,
                    "file": file,
                    "inputs": pack.inputs(),
                    "decisions": pack.decisions().iter().map(|(d, _)| *d).collect::<Vec<_>>(),
                    "readiness": pack.gates().iter().map(|(g, _)| *g).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({"packs": packs, "count": packs.len()})
    }

    /// Bound programs answer from their indexes and tables for `days` days
    /// after binding (`cavra api --bind-horizon-days`); a cached program
    /// nearing the end of that horizon is bound again.
    pub fn with_horizon_days(mut self, days: u32) -> CompiledPacks {
        self.horizon_days = days.max(1);
        self
    }

    pub fn horizon_days(&self) -> u32 {
        self.horizon_days
    }

    /// The pack already bound to the statics `key` names (a content hash),
    /// unless its horizon is about to run out.
    pub fn cached(&self, pack: &Pack, key: &str) -> Option<Arc<Program>> {
        self.cached_at(pack, key, crate::store::wall_micros())
    }

    /// [`CompiledPacks::cached`] at the instant `now`: a program whose horizon
    /// ends within an eighth of the horizon (at least an hour) is dropped, so
    /// that the next request binds it again before it runs out. (Past the
    /// horizon a program still decides correctly, only without its tables.)
    pub fn cached_at(&self, pack: &Pack, key: &str, now: i64) -> Option<Arc<Program>> {
        const HOUR: i64 = 3_600_000_000;
        let margin = (i64::from(self.horizon_days) * 24 * HOUR / 8).max(HOUR);
        let mut bound = self.lock_bound();
        let per_pack = bound.get_mut(pack.name())?;
        let program = per_pack.get(key)?;
        if program.horizon().1.saturating_sub(now) <= margin {
            per_pack.remove(key);
            return None;
        }
        Some(program.clone())
    }

    /// Binds the pack to `statics` and keeps the program under `key`.
    pub fn bind(&self, pack: &Pack, key: String, statics: &HashMap<String, Json>) -> Result<Arc<Program>, cavra_engine::BindError> {
        self.bind_at(pack, key, statics, crate::store::wall_micros())
    }

    /// [`CompiledPacks::bind`] as if at the instant `now`.
    pub fn bind_at(&self, pack: &Pack, key: String, statics: &HashMap<String, Json>, now: i64) -> Result<Arc<Program>, cavra_engine::BindError> {
        let program = Arc::new(pack.bind_with(statics, cavra_engine::BindOptions::horizon_days(now, self.horizon_days))?);
        let mut bound = self.lock_bound();
        let per_pack = bound.entry(pack.name().to_string()).or_default();
        if per_pack.len() >= BOUND_PER_PACK {
            // Bounded memory: start over rather than track recency.
            per_pack.clear();
        }
        per_pack.insert(key, program.clone());
        Ok(program)
    }

    fn lock_bound(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Arc<Program>>>> {
        self.bound.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `(relative path, shown path, text)` of every `.cavra` file below `dir`.
fn read_folder(dir: &Path) -> Result<Vec<(String, String, String)>, String> {
    let files: Vec<PathBuf> = crate::documents::expand(&[dir.to_path_buf()], ".cavra")?;
    if files.is_empty() {
        return Err(format!("{}: no .cavra rule packs found", dir.display()));
    }
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            let text = read_pack(&path)?;
            Ok((relative, path.display().to_string(), text))
        })
        .collect()
}

/// A rule pack of a `--rules` folder: a regular file within the rule byte
/// limit (`cavra_grammar::DEFAULT_MAX_RULE_BYTES`), UTF-8 (else the position
/// of the first bad byte).
fn read_pack(path: &std::path::Path) -> Result<String, String> {
    cavra_grammar::read_rule_file(path, cavra_grammar::DEFAULT_MAX_RULE_BYTES).map_err(|e| format!("cannot read the rule pack: {e}"))
}

#[cfg(test)]
mod tests {
    use super::CompiledPacks;
    use serde_json::json;
    use std::collections::HashMap;

    const HOUR: i64 = 3_600_000_000;

    #[test]
    fn a_cached_program_is_bound_again_before_its_horizon_runs_out() {
        let packs = CompiledPacks::load(None).expect("the bundled packs").with_horizon_days(2);
        let pack = packs.file("routing.cavra").expect("the routing pack").clone();
        let statics = HashMap::from([("policy".to_string(), json!({}))]);
        let bound_at = 1_780_000_000 * 1_000_000;
        let program = packs.bind_at(&pack, "k".into(), &statics, bound_at).expect("binds");
        assert_eq!(program.horizon().1, bound_at + 48 * HOUR, "the horizon is the bind plus two days");
        assert!(packs.cached_at(&pack, "k", bound_at + 40 * HOUR).is_some(), "eight hours left: still cached");
        // The margin is an eighth of the horizon (six hours): with five left, bind again.
        assert!(packs.cached_at(&pack, "k", bound_at + 43 * HOUR).is_none(), "five hours left: bound again");
        assert!(packs.cached_at(&pack, "k", bound_at).is_none(), "and dropped from the cache");
    }
}
