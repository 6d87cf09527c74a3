//! Helpers for cavra's integration tests: run the CLI in-process and compare
//! output with golden files. Set `CAVRA_BLESS=1` to rewrite the goldens.

pub mod http;
/// Throwaway PostgreSQL clusters (initdb, pg_ctl) for the PostgreSQL store's tests.
pub mod postgres;
pub mod provider;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The output of one CLI run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cavra ARGS...` in-process, with the tests crate as working directory.
pub fn cavra(args: &[&str]) -> Run {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let argv = std::iter::once("cavra").chain(args.iter().copied()).map(Into::into);
    let code = cavra::run(argv, &mut out, &mut err, false);
    Run { code, stdout: String::from_utf8_lossy(&out).into_owned(), stderr: String::from_utf8_lossy(&err).into_owned() }
}

/// `dir` emptied for a test: removed with all it holds, then made again.
pub fn fresh_dir(dir: PathBuf) -> PathBuf {
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn blessing() -> bool {
    std::env::var_os("CAVRA_BLESS").is_some_and(|v| v != "0")
}

/// Files in `dir` (relative to the tests crate) whose names end with `suffix`, sorted.
pub fn fixtures(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(crate_dir().join(dir))
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(suffix)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Copies the folder `from` into `to` (created), with its subfolders.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())).flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
        }
    }
}

/// Compares `actual` with the golden file; returns a readable mismatch.
/// With `CAVRA_BLESS=1` the golden is (re)written instead.
pub fn check_golden(golden: &Path, actual: &str) -> Result<(), String> {
    if blessing() {
        std::fs::write(golden, actual).map_err(|e| format!("{}: {e}", golden.display()))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(golden).map_err(|_| format!("{}: missing golden file (run with CAVRA_BLESS=1 to create it)", golden.display()))?;
    if expected == actual {
        return Ok(());
    }
    let mut diff = format!("{} differs (run with CAVRA_BLESS=1 to accept):\n", golden.display());
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    diff.push_str(&format!("  line {:>3} - {x}\n", i + 1));
                }
                if let Some(y) = y {
                    diff.push_str(&format!("  line {:>3} + {y}\n", i + 1));
                }
            }
        }
    }
    Err(diff)
}

/// A path relative to the tests crate, with forward slashes, for stable output.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(crate_dir()).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// `target/<profile>`, where cargo puts the `cavra` binary and the plugin libraries.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf()
}

/// The `cavra` binary, built once per test run (an integration test of
/// another crate does not get it built by cargo). Its connectors are built
/// in: no plugin library is needed beside it.
pub fn cavra_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile = profile_dir();
        let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cargo.current_dir(crate_dir().join("..")).args(["build", "-j2", "-p", "cavra"]);
        cargo.arg("--target-dir").arg(profile.parent().expect("target dir"));
        if profile.ends_with("release") {
            cargo.arg("--release");
        }
        let output = cargo.output().expect("run cargo");
        assert!(output.status.success(), "building cavra failed:\n{}", String::from_utf8_lossy(&output.stderr));
        profile.join(format!("cavra{}", std::env::consts::EXE_SUFFIX))
    })
}

/// The plugin host's misbehaving fixture connector (`cavra-fixture-aborting`:
/// aborts, hangs, loops forever or prints, by owner), built once: `cargo
/// test` builds no `cdylib` of crates outside the workspace.
pub fn aborting_fixture() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile = profile_dir();
            let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cargo.current_dir(crate_dir().join("..")).args([
                "build",
                "-j2",
                "--manifest-path",
                "plugins/host/tests/fixtures/Cargo.toml",
                "-p",
                "cavra-fixture-aborting",
            ]);
            cargo.arg("--target-dir").arg(profile.parent().expect("target dir"));
            if profile.ends_with("release") {
                cargo.arg("--release");
            }
            let output = cargo.output().expect("run cargo");
            assert!(output.status.success(), "building the fixture plugin failed:\n{}", String::from_utf8_lossy(&output.stderr));
            profile.join(format!("{}cavra_fixture_aborting{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
        })
        .clone()
}

/// The documents whose examples are tested: README.md and every
/// `docs/*.md`, relative to the repository root `root`.
pub fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(root).expect("under the root").to_path_buf())
        .collect();
    docs.sort();
    docs.insert(0, PathBuf::from("README.md"));
    docs
}
