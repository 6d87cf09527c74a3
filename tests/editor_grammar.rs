//! The editor grammar, `editors/vscode/syntaxes/cavra.tmLanguage.json`, holds
//! for every bundled pack: the Node tests of `editors/vscode` tokenize each
//! `.cavra` file of `rules/` and `tests/corpus/` with VS Code's own TextMate
//! engine (vscode-textmate with vscode-oniguruma) and fail on a token left
//! without a scope, on an invalid token in a pack that parses, or on a sample
//! whose comment, interpolation, keyword, type, duration or timestamp loses its
//! scope. A second test checks, without Node, that the extension's manifest
//! registers that grammar.
//!
//! Needs `node` (18 or later) and the folder's test packages (`npm ci` in
//! `editors/vscode`; `.ci/run` does both and sets CAVRA_REQUIRE_NODE=1).
//! Elsewhere, without them, the test says it was skipped; with
//! CAVRA_REQUIRE_NODE=1 a missing `node` or package fails it.

use serde_json::Value as Json;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Node tests take a few seconds; a hung `node` must not hang the suite.
const DEADLINE: Duration = Duration::from_secs(120);
/// The packages the grammar test loads: devDependencies of editors/vscode/package.json.
const TEST_PACKAGES: [&str; 2] = ["vscode-textmate", "vscode-oniguruma"];

/// `editors/vscode`, found from this crate's folder (`tests/`) in the repository root.
fn extension_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate's folder has a parent, the repository root").join("editors").join("vscode")
}

/// Whether the Node test must run (`CAVRA_REQUIRE_NODE=1`) rather than be skipped without Node.
fn required() -> bool {
    std::env::var("CAVRA_REQUIRE_NODE").is_ok_and(|v| v == "1")
}

/// Says why the test is skipped; with CAVRA_REQUIRE_NODE=1 that is a failure instead.
fn skip(why: &str) {
    assert!(!required(), "CAVRA_REQUIRE_NODE=1 but {why}");
    eprintln!("skipped: {why}; set CAVRA_REQUIRE_NODE=1 to make this a failure");
}

/// The major version of the `node` on PATH, or why there is none to run.
fn node_major_version() -> Result<u32, String> {
    let output = Command::new("node").arg("--version").output().map_err(|e| format!("`node` could not be run ({e}); install Node.js 18 or later"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|major| major.parse().ok())
        .ok_or_else(|| format!("`node --version` printed {version:?}, not a version"))
}

/// The Node test files, by name: `node --test DIR` searches a folder only up to
/// Node 20 (later versions read the argument as a glob, nodejs/node#50219).
fn node_test_files(dir: &Path) -> Vec<String> {
    let test_dir = dir.join("test");
    let entries = std::fs::read_dir(&test_dir).unwrap_or_else(|e| panic!("read {}: {e}", test_dir.display()));
    let mut files: Vec<String> = entries
        .map(|entry| entry.expect("an entry of editors/vscode/test").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("test/{name}"))
        .collect();
    files.sort();
    files
}

/// What node wrote to `path`, or why it cannot be read (for the failure message).
fn read_output(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(could not read {}: {e})", path.display()))
}

#[test]
fn textmate_grammar_scopes_every_bundled_pack() {
    let dir = extension_dir();
    match node_major_version() {
        Ok(major) if major >= 18 => {}
        Ok(major) => {
            skip(&format!("`node` is version {major}; the grammar test needs Node.js 18 or later"));
            return;
        }
        Err(why) => {
            skip(&why);
            return;
        }
    }
    if let Some(missing) = TEST_PACKAGES.iter().find(|package| !dir.join("node_modules").join(package).is_dir()) {
        skip(&format!("the npm package {missing} is not installed: run `npm ci` in editors/vscode"));
        return;
    }
    let files = node_test_files(&dir);
    assert!(!files.is_empty(), "no *.test.js file in {}", dir.join("test").display());

    // Output goes to files, not pipes: nothing has to drain them while we wait,
    // and `node --test` runs each file in a child that could outlive a killed parent.
    let scratch = std::env::temp_dir().join(format!("cavra-editor-grammar-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("create a scratch folder for node's output");
    let stdout_path = scratch.join("stdout.txt");
    let stderr_path = scratch.join("stderr.txt");
    let stdout = File::create(&stdout_path).expect("create the file for node's stdout");
    let stderr = File::create(&stderr_path).expect("create the file for node's stderr");
    let mut child = Command::new("node")
        .arg("--test")
        .args(&files)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("start `node --test`");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll `node --test`") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            // Either may fail when node exits in between; the outcome is the same.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (read_output(&stdout_path), read_output(&stderr_path));
    let _ = std::fs::remove_dir_all(&scratch);

    let command = format!("node --test {}", files.join(" "));
    let status = status.unwrap_or_else(|| {
        panic!("`{command}` did not finish within {} s in {} and was killed\n--- stdout ---\n{out}\n--- stderr ---\n{err}", DEADLINE.as_secs(), dir.display())
    });
    assert!(status.success(), "`{command}` failed in {} ({status})\n--- stdout ---\n{out}\n--- stderr ---\n{err}", dir.display());
    // The counts the Node test reports (files and tokens checked), shown with --nocapture.
    for line in out.lines().filter(|line| line.contains("checked")) {
        println!("{}", line.trim_start_matches(['#', ' ']));
    }
}

/// The manifest registers the language, the grammar the Node test checks and
/// the server setting. Needs no Node, so a broken JSON file fails everywhere.
#[test]
fn extension_manifest_registers_the_grammar() {
    let dir = extension_dir();
    let read_json = |name: &str| -> Json {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
    };
    let manifest = read_json("package.json");
    let grammar = read_json("syntaxes/cavra.tmLanguage.json");
    let configuration = read_json("language-configuration.json");
    let contributes = &manifest["contributes"];

    let language = contributes["languages"]
        .as_array()
        .and_then(|languages| languages.iter().find(|language| language["id"].as_str() == Some("cavra")))
        .expect("package.json contributes the language `cavra`");
    let extensions = language["extensions"].as_array().expect("the language `cavra` lists its file extensions");
    assert!(extensions.iter().any(|extension| extension.as_str() == Some(".cavra")), "the language `cavra` claims .cavra files: {language}");

    let entry = contributes["grammars"]
        .as_array()
        .and_then(|grammars| grammars.iter().find(|entry| entry["language"].as_str() == Some("cavra")))
        .expect("package.json contributes a grammar for `cavra`");
    assert_eq!(entry["scopeName"].as_str(), Some("source.cavra"), "the scope package.json registers");
    assert_eq!(entry["path"].as_str(), Some("./syntaxes/cavra.tmLanguage.json"), "the grammar package.json registers");
    assert_eq!(grammar["scopeName"].as_str(), Some("source.cavra"), "the grammar's own scopeName");

    assert_eq!(configuration["comments"]["lineComment"].as_str(), Some("#"), "line comments toggle with #");
    let server_path = &contributes["configuration"]["properties"]["cavra.server.path"];
    assert_eq!(server_path["default"].as_str(), Some("cavra"), "the setting cavra.server.path defaults to `cavra`: {server_path}");
    for package in TEST_PACKAGES {
        assert!(manifest["devDependencies"][package].is_string(), "package.json lists {package} in devDependencies");
    }
}
