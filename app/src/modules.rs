//! Where a pack's `use "path"` line finds its module ([`RuleFiles`]).
//!
//! The path is relative to the importing file. A file on disk is read first;
//! failing that, the bundled module at the same place under `rules/`. "The
//! same place" is the path relative to the rules folder the pack belongs to:
//! the `--rules` folder, else the nearest enclosing folder named `rules`,
//! else the pack's own folder. So a `--rules` folder that replaces one pack
//! still finds the bundled modules, and a pack written anywhere can import
//! `use "common/routing_policy.cavra"`. A bundled module's own imports are
//! bundled too; bundled packs never read the disk.

use cavra_engine::{ModuleFile, ModuleResolver};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// The module resolver of the CLI and the API.
#[derive(Debug)]
pub struct RuleFiles {
    /// The rules folder of a pack read from disk; `None` for bundled packs.
    disk_root: Option<PathBuf>,
    max_bytes: u64,
    /// Modules taken from the bundled rules, by the name given them.
    bundled_names: Mutex<HashSet<String>>,
}

impl RuleFiles {
    /// For the bundled packs (named `rules/...`): bundled modules only.
    pub fn bundled() -> RuleFiles {
        RuleFiles { disk_root: None, max_bytes: cavra_grammar::DEFAULT_MAX_RULE_BYTES, bundled_names: Mutex::default() }
    }

    /// For the pack `file` on disk, of the rules folder `rules` when known;
    /// module files are read within `max_bytes` each.
    pub fn for_file(file: &Path, rules: Option<&Path>, max_bytes: u64) -> RuleFiles {
        let file = normalize(file);
        let root = match rules {
            Some(dir) => normalize(dir),
            None => file.ancestors().skip(1).find(|dir| dir.file_name().is_some_and(|n| n == "rules")).map_or_else(|| parent(&file), Path::to_path_buf),
        };
        RuleFiles { disk_root: Some(root), max_bytes, bundled_names: Mutex::default() }
    }

    fn is_bundled(&self, name: &str) -> bool {
        self.disk_root.is_none() || self.bundled_names.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).contains(name)
    }

    fn bundled_module(&self, key: &str) -> Option<ModuleFile> {
        let source = crate::bundled::get(key)?;
        self.bundled_names.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key.to_string());
        Some(ModuleFile { name: key.to_string(), source: source.to_string() })
    }
}

impl ModuleResolver for RuleFiles {
    fn resolve(&self, importer: &str, path: &str) -> Result<ModuleFile, String> {
        if path.is_empty() || Path::new(path).is_absolute() {
            return Err("a module path is relative to the importing file".to_string());
        }
        let target = normalize(&parent(Path::new(importer)).join(path));
        if self.is_bundled(importer) {
            let key = slash_path(&target);
            return self.bundled_module(&key).ok_or_else(|| format!("{key} is not bundled in this build"));
        }
        if target.is_file() {
            let source = cavra_grammar::read_rule_file(&target, self.max_bytes).map_err(|e| e.to_string())?;
            return Ok(ModuleFile { name: target.display().to_string(), source });
        }
        let bundled_key = self.disk_root.as_ref().and_then(|root| target.strip_prefix(root).ok()).map(|inside| format!("rules/{}", slash_path(inside)));
        match bundled_key {
            Some(key) => self.bundled_module(&key).ok_or_else(|| format!("no file {} and no bundled {key}", target.display())),
            None => Err(format!("no file {}", target.display())),
        }
    }
}

/// The folder of `file` (`""` for a bare file name).
fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `a/./b/../c` -> `a/c`, without touching the file system (a `..` above
/// the start is kept).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir if out.file_name().is_some() && !out.ends_with("..") => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A relative path with `/` separators, as bundled files are named.
pub fn slash_path(relative: &Path) -> String {
    relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_without_the_file_system() {
        assert_eq!(normalize(Path::new("rules/readiness/../common/./a.cavra")), PathBuf::from("rules/common/a.cavra"));
        assert_eq!(normalize(Path::new("../x.cavra")), PathBuf::from("../x.cavra"));
    }

    #[test]
    fn the_rules_folder_of_a_pack_is_the_nearest_one_named_rules() {
        let files = RuleFiles::for_file(Path::new("work/rules/readiness/rollback.cavra"), None, 1024);
        assert_eq!(files.disk_root, Some(PathBuf::from("work/rules")));
        let files = RuleFiles::for_file(Path::new("drafts/quiet.cavra"), None, 1024);
        assert_eq!(files.disk_root, Some(PathBuf::from("drafts")));
    }
}
