//! `cavra test`: rule tests written as TOML files (`*.test.toml`) next to the
//! packs they test. Each case gives inputs and the clock and expects an
//! outcome (decisions) or a status and check results (readiness gates).
//! `cavra diff --tests FILE` reads the same files for their cases' inputs
//! and instants ([`diff_cases`]).

use crate::authoring::{bind, say, RuleLimits};
use crate::{exit, Io};
use cavra_app::bundled;
use cavra_app::documents::{expand, parse_json};
use cavra_app::modules::{normalize, RuleFiles};
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The pack under test, relative to the test file.
    pack: String,
    /// Default decision (or readiness gate) for the cases.
    decision: Option<String>,
    readiness: Option<String>,
    /// Default clock for the cases.
    at: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    inputs: toml::Table,
    #[serde(rename = "case", default)]
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    at: Option<String>,
    decision: Option<String>,
    readiness: Option<String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    inputs: toml::Table,
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    action: Option<String>,
    category: Option<String>,
    arm: Option<String>,
    reason: Option<String>,
    fields: Option<toml::Table>,
    /// Values of lets, by name: how a module (no decision) is tested.
    lets: Option<toml::Table>,
    status: Option<String>,
    failed: Option<Vec<String>>,
    passed: Option<Vec<String>>,
    messages: Option<BTreeMap<String, String>>,
    /// The case must fail to evaluate with an error containing this text.
    error: Option<String>,
}

/// Where test files and the files they name come from.
enum Source {
    /// Files on disk, read within the rule limits.
    Disk(RuleLimits),
    Bundled,
}

impl Source {
    fn read(&self, path: &Path) -> Result<String, String> {
        match self {
            Source::Disk(limits) => crate::authoring::read_rule_source(path, *limits),
            Source::Bundled => {
                let key = path.to_string_lossy().replace('\\', "/");
                bundled::get(&key).map(str::to_string).ok_or_else(|| format!("{key}: not bundled"))
            }
        }
    }

    /// The JSON document `rel` (relative to the test file's folder `dir`) given as input `name`.
    fn document(&self, dir: &Path, name: &str, rel: &str) -> Result<Json, String> {
        let path = normalize(&dir.join(rel));
        let text = self.read(&path)?;
        parse_json(&path.display().to_string(), &text).map_err(|e| format!("input `{name}`: {e}"))
    }
}

/// A test file's `[files]` and `[inputs]`, shared by its cases.
fn file_inputs(spec: &TestFile, read_doc: &dyn Fn(&str, &str) -> Result<Json, String>) -> Result<serde_json::Map<String, Json>, String> {
    let mut inputs = serde_json::Map::new();
    for (name, rel) in &spec.files {
        inputs.insert(name.clone(), read_doc(name, rel)?);
    }
    for (name, value) in &spec.inputs {
        inputs.insert(name.clone(), toml_to_json(value));
    }
    Ok(inputs)
}

/// A case's inputs: its file's (`shared`), then its own files and inputs.
fn case_inputs(
    shared: &serde_json::Map<String, Json>,
    case: &Case,
    read_doc: &dyn Fn(&str, &str) -> Result<Json, String>,
) -> Result<serde_json::Map<String, Json>, String> {
    let mut inputs = shared.clone();
    for (name, rel) in &case.files {
        inputs.insert(name.clone(), read_doc(name, rel)?);
    }
    for (name, value) in &case.inputs {
        inputs.insert(name.clone(), toml_to_json(value));
    }
    Ok(inputs)
}

#[derive(Default)]
struct Coverage {
    /// pack path -> (decision/arm ids, gate/check ids)
    declared: BTreeMap<String, (Vec<String>, Vec<String>)>,
    reached_arms: BTreeSet<(String, String)>,
    failed_checks: BTreeSet<(String, String)>,
}

pub(crate) fn run(io: &mut Io, paths: &[PathBuf], verbose: bool, limits: RuleLimits) -> i32 {
    let (source, files): (Source, Vec<PathBuf>) = if paths.is_empty() {
        (Source::Bundled, bundled::list(".test.toml").into_iter().map(PathBuf::from).collect())
    } else {
        match expand(paths, ".test.toml") {
            Ok(files) => (Source::Disk(limits), files),
            Err(e) => {
                say!(io.err, "error: {e}");
                return exit::USAGE;
            }
        }
    };
    if files.is_empty() {
        say!(io.err, "error: no *.test.toml files found");
        return exit::USAGE;
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut coverage = Coverage::default();
    for file in &files {
        let shown = file.display().to_string();
        match run_file(io, &source, file, verbose, &mut coverage) {
            Ok((p, f)) => {
                passed += p;
                failed += f;
            }
            Err(problem) => {
                failed += 1;
                say!(io.out, "FAIL {shown}");
                for line in problem.lines() {
                    say!(io.out, "    {line}");
                }
            }
        }
    }
    say!(io.out, "{passed} passed, {failed} failed");
    print_coverage(io, &coverage);
    if failed > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn print_coverage(io: &mut Io, c: &Coverage) {
    let mut arms = (0, 0);
    let mut checks = (0, 0);
    let mut unreached = Vec::new();
    let mut never_failing = Vec::new();
    for (pack, (pack_arms, pack_checks)) in &c.declared {
        for arm in pack_arms {
            arms.1 += 1;
            if c.reached_arms.contains(&(pack.clone(), arm.clone())) {
                arms.0 += 1;
            } else {
                unreached.push(format!("{pack}: {arm}"));
            }
        }
        for check in pack_checks {
            checks.1 += 1;
            if c.failed_checks.contains(&(pack.clone(), check.clone())) {
                checks.0 += 1;
            } else {
                never_failing.push(format!("{pack}: {check}"));
            }
        }
    }
    say!(io.out, "coverage: {} of {} arms reached, {} of {} checks seen failing", arms.0, arms.1, checks.0, checks.1);
    for u in unreached {
        say!(io.out, "  arm not reached: {u}");
    }
    for n in never_failing {
        say!(io.out, "  check never failing: {n}");
    }
}

fn toml_to_json(value: &toml::Value) -> Json {
    match value {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(items) => Json::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Json::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

fn run_file(io: &mut Io, source: &Source, file: &Path, verbose: bool, coverage: &mut Coverage) -> Result<(usize, usize), String> {
    let shown = file.display().to_string();
    let text = source.read(file)?;
    let spec: TestFile = toml::from_str(&text).map_err(|e| format!("{shown}: {}", e.to_string().trim_end()))?;
    let dir = file.parent().unwrap_or(Path::new(""));
    let pack_path = normalize(&dir.join(&spec.pack));
    let pack_name = pack_path.display().to_string();
    let pack_source = source.read(&pack_path)?;
    let modules = match source {
        Source::Disk(limits) => RuleFiles::for_file(&pack_path, None, limits.max_rule_bytes),
        Source::Bundled => RuleFiles::bundled(),
    };
    let pack = cavra_engine::compile_with(&pack_name, &pack_source, &modules).map_err(|d| format!("{}the pack does not check", d.render(false)))?;
    let entry = coverage.declared.entry(pack_name.clone()).or_default();
    entry.0 = pack.decisions().iter().flat_map(|(d, arms)| arms.iter().map(move |a| format!("{d}/{a}"))).collect();
    entry.1 = pack.gates().iter().flat_map(|(g, checks)| checks.iter().map(move |c| format!("{g}/{c}"))).collect();

    let read_doc = |name: &str, rel: &str| source.document(dir, name, rel);
    let shared = file_inputs(&spec, &read_doc)?;

    let (mut passed, mut failed) = (0, 0);
    for case in &spec.cases {
        let result = run_case(&pack, &spec, case, &shared, &read_doc, &pack_name, coverage);
        match result {
            Ok(()) => {
                passed += 1;
                if verbose {
                    say!(io.out, "ok   {shown}: {}", case.name);
                }
            }
            Err(diffs) => {
                failed += 1;
                say!(io.out, "FAIL {shown}: {}", case.name);
                for d in diffs {
                    say!(io.out, "    {d}");
                }
            }
        }
    }
    if spec.cases.is_empty() {
        return Err(format!("{shown}: no [[case]] entries"));
    }
    Ok((passed, failed))
}

fn run_case(
    pack: &cavra_engine::Pack,
    spec: &TestFile,
    case: &Case,
    shared: &serde_json::Map<String, Json>,
    read_doc: &dyn Fn(&str, &str) -> Result<Json, String>,
    pack_name: &str,
    coverage: &mut Coverage,
) -> Result<(), Vec<String>> {
    let docs: HashMap<String, Json> = case_inputs(shared, case, read_doc).map_err(|e| vec![e])?.into_iter().collect();
    let now = cavra_app::documents::clock(case.at.as_deref().or(spec.at.as_deref())).map_err(|e| vec![crate::render_error(&e)])?;
    let expect = &case.expect;
    let bound = bind(pack, docs, &now, &HashMap::new());
    let (program, inputs) = match (bound, &expect.error) {
        (Ok(b), _) => b,
        (Err(e), Some(want)) if e.contains(want.as_str()) => return Ok(()),
        (Err(e), _) => return Err(vec![format!("inputs: {e}")]),
    };
    let readiness = case.readiness.as_ref().or(if case.decision.is_some() { None } else { spec.readiness.as_ref() });
    let mut diffs = Vec::new();
    for (name, want) in expect.lets.iter().flatten() {
        let want = toml_to_json(want);
        match program.let_value(name, &inputs) {
            Ok(got) if got.to_json() == want => {}
            Ok(got) => diffs.push(format!("let {name}: expected {want}, got {}", got.to_json())),
            Err(e) => diffs.push(format!("let {name}: {}", program.render_error(&e))),
        }
    }
    // A case that names no decision or gate and expects lets only (a module's test) decides nothing.
    let lets_only = expect.lets.is_some() && case.decision.is_none() && spec.decision.is_none();
    if let Some(gate) = readiness {
        let report = match (program.readiness(gate, &inputs), &expect.error) {
            (Ok(r), _) => r,
            (Err(e), Some(want)) if program.render_error(&e).contains(want.as_str()) => return Ok(()),
            (Err(e), _) => return Err(vec![format!("error: {}", program.render_error(&e))]),
        };
        for c in report.checks.iter().filter(|c| !c.passed) {
            coverage.failed_checks.insert((pack_name.to_string(), format!("{gate}/{}", c.id)));
        }
        compare(&mut diffs, "status", expect.status.as_deref(), Some(report.status.as_str()));
        if let Some(want) = &expect.failed {
            let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
            let got: BTreeSet<&str> = report.checks.iter().filter(|c| !c.passed).map(|c| c.id.as_str()).collect();
            if want != got {
                diffs.push(format!("failed checks: expected {want:?}, got {got:?}"));
            }
        }
        for id in expect.passed.iter().flatten() {
            match report.checks.iter().find(|c| &c.id == id) {
                Some(c) if c.passed => {}
                Some(c) => diffs.push(format!("check {id}: expected pass, got fail: {}", c.message)),
                None => diffs.push(format!("check {id}: not in the report")),
            }
        }
        for (id, want) in expect.messages.iter().flatten() {
            let got = report.checks.iter().find(|c| &c.id == id).map(|c| c.message.as_str());
            compare(&mut diffs, &format!("message of {id}"), Some(want), got);
        }
    } else if !lets_only {
        let decision = match case.decision.as_ref().or(spec.decision.as_ref()) {
            Some(d) => d.clone(),
            None => match pack.decisions().as_slice() {
                [(only, _)] => only.to_string(),
                _ => return Err(vec!["name the decision: `decision = \"...\"` in the file or the case".into()]),
            },
        };
        let outcome = match (program.decide(&decision, &inputs), &expect.error) {
            (Ok(o), None) => o,
            (Ok(o), Some(want)) => return Err(vec![format!("expected an error containing {want:?}, got {} {}", o.action, o.category)]),
            (Err(e), Some(want)) if program.render_error(&e).contains(want.as_str()) => return Ok(()),
            (Err(e), _) => return Err(vec![format!("error: {}", program.render_error(&e))]),
        };
        coverage.reached_arms.insert((pack_name.to_string(), format!("{decision}/{}", outcome.arm)));
        compare(&mut diffs, "action", expect.action.as_deref(), Some(outcome.action));
        compare(&mut diffs, "category", expect.category.as_deref(), Some(outcome.category));
        compare(&mut diffs, "arm", expect.arm.as_deref(), Some(outcome.arm));
        let reason = outcome.reason().map(|r| r.to_string());
        compare(&mut diffs, "reason", expect.reason.as_deref(), reason.as_deref());
        if let Some(fields) = &expect.fields {
            let got: serde_json::Map<String, Json> = outcome.fields().map(|(k, v)| (k.to_string(), v.to_json())).collect();
            for (k, want) in fields {
                let want = toml_to_json(want);
                match got.get(k) {
                    Some(v) if *v == want => {}
                    Some(v) => diffs.push(format!("field {k}: expected {want}, got {v}")),
                    None => diffs.push(format!("field {k}: expected {want}, but the outcome has no such field")),
                }
            }
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs)
    }
}

fn compare(diffs: &mut Vec<String>, what: &str, want: Option<&str>, got: Option<&str>) {
    if let Some(want) = want {
        if Some(want) != got {
            let got = got.map(|g| format!("{g:?}")).unwrap_or_else(|| "nothing".into());
            diffs.push(format!("{what}: expected {want:?}, got {got}"));
        }
    }
}

/// The decision cases of a rule-test file as `cavra diff` examines them:
/// each case's name, instant, decision and inputs (the file's `[files]` and
/// `[inputs]`, then the case's own). Cases of a readiness gate are left out:
/// the diff compares decisions. The file's `pack` is not read; the packs
/// compared are the command's.
pub(crate) fn diff_cases(file: &Path, limits: RuleLimits) -> Result<Vec<cavra_app::diff::DiffCase>, String> {
    let source = Source::Disk(limits);
    let shown = file.display().to_string();
    let spec: TestFile = toml::from_str(&source.read(file)?).map_err(|e| format!("{shown}: {}", e.to_string().trim_end()))?;
    let dir = file.parent().unwrap_or(Path::new(""));
    let read_doc = |name: &str, rel: &str| source.document(dir, name, rel).map_err(|e| format!("{shown}: {e}"));
    let shared = file_inputs(&spec, &read_doc)?;
    let mut cases = Vec::new();
    for case in &spec.cases {
        let gate = case.readiness.is_some() || (case.decision.is_none() && spec.readiness.is_some());
        if gate {
            continue;
        }
        cases.push(cavra_app::diff::DiffCase {
            name: case.name.clone(),
            at: case.at.clone().or_else(|| spec.at.clone()),
            decision: case.decision.clone().or_else(|| spec.decision.clone()),
            inputs: case_inputs(&shared, case, &read_doc)?,
        });
    }
    if cases.is_empty() {
        return Err(format!("{shown}: no decision cases ([[case]] entries of a decision) to examine"));
    }
    Ok(cases)
}
