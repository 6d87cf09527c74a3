//! Where plugins are looked for: `--plugin-dir` directories first, then the
//! entries of `CAVRA_PLUGIN_PATH`; in each, the files ending in `.so`,
//! `.dylib` or `.dll`, sorted by name so that loading (and therefore which
//! file a conflict names first) is deterministic.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::config::io_reason;
use crate::refusal::{Refusal, RefusalKind};

/// The environment variable listing plugin directories (`:`-separated on
/// Unix, `;` on Windows, like `PATH`).
pub const PLUGIN_PATH_ENV: &str = "CAVRA_PLUGIN_PATH";

/// File extensions of dynamic libraries, on every platform (a library for
/// another platform is then refused with a clear reason instead of ignored).
pub const PLUGIN_EXTENSIONS: [&str; 3] = ["so", "dylib", "dll"];

/// The plugin directories: `explicit` (from `--plugin-dir`, in order), then
/// those of `CAVRA_PLUGIN_PATH`. Empty entries and repeats are dropped.
pub fn plugin_dirs(explicit: &[PathBuf]) -> Vec<PathBuf> {
    plugin_dirs_from(explicit, std::env::var_os(PLUGIN_PATH_ENV).as_deref())
}

/// [`plugin_dirs`] with the value of `CAVRA_PLUGIN_PATH` given explicitly.
pub fn plugin_dirs_from(explicit: &[PathBuf], plugin_path: Option<&OsStr>) -> Vec<PathBuf> {
    let from_env: Vec<PathBuf> = plugin_path.map(|v| std::env::split_paths(v).collect()).unwrap_or_default();
    let mut seen = HashSet::new();
    explicit.iter().cloned().chain(from_env).filter(|d| !d.as_os_str().is_empty()).filter(|d| seen.insert(d.clone())).collect()
}

/// The candidate plugin files of `dirs`, and the directories that could not
/// be read. Each file is listed once even if reachable from two directories.
pub fn find_plugin_files(dirs: &[PathBuf]) -> (Vec<PathBuf>, Vec<Refusal>) {
    let mut files = Vec::new();
    let mut refused = Vec::new();
    let mut seen = HashSet::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                refused.push(Refusal { path: dir.clone(), kind: RefusalKind::Unreadable, reason: format!("cannot read plugin directory: {}", io_reason(&e)) });
                continue;
            }
        };
        let mut in_dir: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| is_plugin_file(p)).collect();
        in_dir.sort();
        for path in in_dir {
            let identity = path.canonicalize().unwrap_or_else(|_| path.clone());
            if seen.insert(identity) {
                files.push(path);
            }
        }
    }
    (files, refused)
}

fn is_plugin_file(path: &Path) -> bool {
    let has_extension = path.extension().and_then(|e| e.to_str()).is_some_and(|e| PLUGIN_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
    // `is_file` follows symlinks, so a link to a library counts.
    has_extension && path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_dirs_come_first_then_the_env_path_without_repeats() {
        let explicit = [PathBuf::from("/opt/a"), PathBuf::from("/opt/b")];
        let env = std::env::join_paths(["/opt/c", "", "/opt/a", "/opt/d"]).expect("joinable");
        let dirs = plugin_dirs_from(&explicit, Some(&env));
        assert_eq!(dirs, ["/opt/a", "/opt/b", "/opt/c", "/opt/d"].map(PathBuf::from));
        assert_eq!(plugin_dirs_from(&[], None), Vec::<PathBuf>::new());
    }

    #[test]
    fn finds_libraries_sorted_and_reports_missing_dirs() {
        let dir = std::env::temp_dir().join(format!("cavra-discovery-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub.so")).expect("dir");
        for name in ["b.so", "a.dylib", "c.DLL", "notes.txt", "d.so.1"] {
            std::fs::write(dir.join(name), b"x").expect("file");
        }
        let missing = dir.join("missing");
        let (files, refused) = find_plugin_files(&[dir.clone(), missing.clone(), dir.clone()]);
        let names: Vec<_> = files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.dylib", "b.so", "c.DLL"]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].path, missing);
        assert_eq!(refused[0].reason, "cannot read plugin directory: no such file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
