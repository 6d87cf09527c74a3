//! A compiled set of rule packs (the bundled `rules/` or a `--rules DIR`),
//! compiled once and shared by a long-running front end (the API), so a
//! request never re-parses rule text. Swapped whole on reload: a set either
//! checks completely or is not used.

use cavra_engine::{Diagnostics, Pack, Program};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many bound programs (pack + static inputs) a set keeps per pack.
const BOUND_PER_PACK: usize = 64;

#[derive(Debug)]
pub(crate) struct CompiledPacks {
    /// By path relative to the rules folder, e.g. `readiness/rollback.cavra`.
    by_file: BTreeMap<String, Pack>,
    /// Pack name (`pack routing`) -> relative path.
    by_name: BTreeMap<String, String>,
    /// Bound programs by pack name and the hash of their static inputs:
    /// binding folds and indexes the statics, worth doing once per policy.
    bound: Mutex<HashMap<String, HashMap<String, Arc<Program>>>>,
}

/// A pack that does not check, with its rendered diagnostics.
#[derive(Debug)]
pub(crate) struct PackFailure {
    pub file: String,
    pub diagnostics: Diagnostics,
}

impl PackFailure {
    pub(crate) fn render(&self) -> String {
        self.diagnostics.render(false)
    }
}

pub(crate) enum LoadError {
    Read(String),
    Check(Vec<PackFailure>),
}

impl CompiledPacks {
    /// Compiles every `.cavra` file of `rules` (or of the bundled packs).
    /// Every failing pack is reported, not only the first.
    pub(crate) fn load(rules: Option<&Path>) -> Result<CompiledPacks, LoadError> {
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
            match cavra_engine::compile(&shown, &text) {
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
        Ok(CompiledPacks { by_file, by_name, bound: Mutex::new(HashMap::new()) })
    }

    /// The pack at `relative` (e.g. `routing.cavra`).
    pub(crate) fn file(&self, relative: &str) -> Option<&Pack> {
        self.by_file.get(relative)
    }

    /// The pack declared as `name`.
    pub(crate) fn named(&self, name: &str) -> Option<&Pack> {
        self.by_name.get(name).and_then(|file| self.by_file.get(file))
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// `{"packs": [{name, file, inputs, decisions, readiness}]}`.
    pub(crate) fn describe(&self) -> Json {
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

    /// The pack already bound to the statics `key` names (a content hash).
    pub(crate) fn cached(&self, pack: &Pack, key: &str) -> Option<Arc<Program>> {
        self.lock_bound().get(pack.name()).and_then(|m| m.get(key)).cloned()
    }

    /// Binds the pack to `statics` and keeps the program under `key`.
    pub(crate) fn bind(&self, pack: &Pack, key: String, statics: &HashMap<String, Json>) -> Result<Arc<Program>, cavra_engine::BindError> {
        let program = Arc::new(pack.bind(statics)?);
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
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: cannot read the rule pack: {e}", path.display()))?;
            Ok((relative, path.display().to_string(), text))
        })
        .collect()
}
