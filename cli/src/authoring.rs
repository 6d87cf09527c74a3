//! The pack-authoring commands: `check` (with `--rules DIR`, a rules folder
//! against the runtime commands' pack contracts), `eval` and `fmt`.
//!
//! Rule files are read within a byte limit (`--max-rule-bytes`,
//! `CAVRA_MAX_RULE_BYTES`; [`RuleLimits`]) and only when they are regular
//! files, so `/dev/zero` or a FIFO named `*.cavra` is refused, not read or
//! waited on. `eval`'s `--input` documents are public documents, screened as
//! the runtime commands screen theirs before anything is bound.

use crate::{exit, ErrorFormat, Io};
use cavra_app::contracts;
use cavra_app::documents::{clock, expand, read_json};
use cavra_app::evaluation::{evaluate, ItemResult};
use cavra_app::modules::{slash_path, RuleFiles};
use cavra_app::{AppError, PackSource, Refusal};
use cavra_engine::{Diagnostic, Diagnostics, Program, Span};
use cavra_grammar::{ReadError, ReadErrorKind};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

macro_rules! say {
    ($w:expr, $($arg:tt)*) => {{ let _ = writeln!($w, $($arg)*); }};
}
pub(crate) use say;

/// How much rule text the authoring commands read: meant to be flattened
/// into `check`, `eval`, `test` and `fmt` (`#[command(flatten)]`).
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RuleLimits {
    /// The largest rule file read, in bytes; a larger one is refused before it is read.
    #[arg(
        long = "max-rule-bytes",
        env = "CAVRA_MAX_RULE_BYTES",
        value_name = "BYTES",
        default_value_t = cavra_grammar::DEFAULT_MAX_RULE_BYTES,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_rule_bytes: u64,
}

/// A rule file's text within `limits`, or the error as printed: the file
/// and why, with the flag that raises the limit when it is the size.
pub(crate) fn read_rule_source(path: &Path, limits: RuleLimits) -> Result<String, String> {
    cavra_grammar::read_rule_file(path, limits.max_rule_bytes).map_err(|e: ReadError| match e.kind {
        ReadErrorKind::TooLarge { .. } => format!("{e} (--max-rule-bytes, CAVRA_MAX_RULE_BYTES)"),
        _ => e.to_string(),
    })
}

fn read_source(io: &mut Io, path: &Path, limits: RuleLimits) -> Option<String> {
    match read_rule_source(path, limits) {
        Ok(s) => Some(s),
        Err(e) => {
            say!(io.err, "error: {e}");
            None
        }
    }
}

pub(crate) fn check(io: &mut Io, paths: &[PathBuf], rules: Option<&Path>, format: ErrorFormat, deny_warnings: bool, limits: RuleLimits) -> i32 {
    let mut given = paths.to_vec();
    given.extend(rules.map(Path::to_path_buf));
    let files = match expand(&given, ".cavra") {
        Ok(f) if f.is_empty() && rules.is_none() => {
            say!(io.err, "error: no .cavra files found");
            return exit::USAGE;
        }
        Ok(mut f) => {
            // A pack named twice (a file and its folder) is checked once.
            f.sort();
            f.dedup();
            f
        }
        Err(e) => {
            say!(io.err, "error: {e}");
            return exit::USAGE;
        }
    };
    let mut tally = Tally::default();
    let mut modules = 0;
    for file in &files {
        let Some(source) = read_source(io, file, limits) else {
            tally.errors += 1;
            continue;
        };
        if starts_as_module(&source) {
            modules += 1;
        }
        let name = file.display().to_string();
        // Checked against its contract under --rules. Elsewhere, a pack at a
        // contract's path (`.../readiness/rollback.cavra`) is spared W0405
        // for the inputs its contract requires, used or not.
        let enforced = rules.and_then(|dir| contract_in(dir, file));
        let spared = enforced.clone().or_else(|| contracts::contract_at(file));
        let modules = RuleFiles::for_file(file, rules, limits.max_rule_bytes);
        let diagnostics = match cavra_engine::compile_with(&name, &source, &modules) {
            Ok(pack) => {
                let mut items = warnings_to_show(&pack, spared.as_ref());
                items.extend(enforced.map(|c| contracts::check(&c, &pack)).unwrap_or_default());
                Diagnostics::new(&name, source.as_str(), items)
            }
            Err(d) => d,
        };
        tally.add(io, format, diagnostics);
    }
    // A pack the runtime needs that the folder lacks: the command would fail on it.
    if let Some(dir) = rules {
        for contract in contracts::contracts() {
            let path = dir.join(contract.file);
            if path.is_file() {
                continue;
            }
            let message = format!("the rules folder has no `{}`, needed by {}", contract.file, contract.used_by);
            let help = "copy it from the bundled rules/ and change what you need (a rules folder replaces every bundled pack)";
            if format == ErrorFormat::Human {
                // No source to show: the file and the help, without a snippet.
                say!(io.err, "error[E0800]: {message}\n  --> {}\n  = help: {help}\n", path.display());
                tally.errors += 1;
            } else {
                let missing = Diagnostic::error("E0800", Span::default(), message).with_help(help);
                tally.add(io, format, Diagnostics::new(path.display().to_string(), "", vec![missing]));
            }
        }
    }
    let Tally { errors, warnings, json } = tally;
    match format {
        ErrorFormat::Human => {
            let packs = files.len() - modules;
            let checked = match modules {
                0 => format!("{packs} pack{}", plural(packs)),
                _ => format!("{packs} pack{} and {modules} module{}", plural(packs), plural(modules)),
            };
            say!(io.err, "checked {checked}: {errors} error{}, {warnings} warning{}", plural(errors), plural(warnings))
        }
        ErrorFormat::Json => say!(io.out, "{}", serde_json::to_string_pretty(&json).unwrap_or_default()),
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Whether a rule file's first word is `module` (counted apart from packs,
/// whether or not it checks).
fn starts_as_module(source: &str) -> bool {
    let first = source.lines().map(str::trim_start).find(|l| !l.is_empty() && !l.starts_with('#'));
    first.is_some_and(|l| l.strip_prefix("module").is_some_and(|rest| rest.starts_with(char::is_whitespace)))
}

/// What `check` found across its packs.
#[derive(Default)]
struct Tally {
    errors: usize,
    warnings: usize,
    json: Vec<cavra_grammar::JsonDiagnostic>,
}

impl Tally {
    /// Counts one pack's diagnostics and prints them (human) or keeps them (JSON, printed at the end).
    fn add(&mut self, io: &mut Io, format: ErrorFormat, diagnostics: Diagnostics) {
        self.errors += diagnostics.error_count();
        self.warnings += diagnostics.warning_count();
        match format {
            ErrorFormat::Human => {
                let _ = write!(io.err, "{}", diagnostics.render(io.color));
            }
            ErrorFormat::Json => self.json.extend(diagnostics.to_json()),
        }
    }
}

/// A pack's warnings, but for W0405 on the inputs its contract requires
/// (used or not: the runtime sets them).
fn warnings_to_show(pack: &cavra_engine::Pack, contract: Option<&contracts::Contract>) -> Vec<Diagnostic> {
    let required: Vec<Span> = contract.iter().flat_map(|c| c.inputs.iter()).filter_map(|input| pack.input_span(&input.name)).collect();
    pack.warnings().items.iter().filter(|d| !(d.code == "W0405" && required.contains(&d.span))).cloned().collect()
}

/// The contract of `file` if it is a pack of the rules folder `dir`.
fn contract_in(dir: &Path, file: &Path) -> Option<contracts::Contract> {
    let relative = file.strip_prefix(dir).ok()?;
    contracts::contract_for(&slash_path(relative))
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

pub(crate) struct EvalArgs {
    pub pack: PathBuf,
    pub inputs: Vec<String>,
    pub sets: Vec<String>,
    pub decision: Option<String>,
    pub at: Option<String>,
    pub json: bool,
    pub explain: bool,
}

/// Compiles a pack file, printing its diagnostics (errors, or warnings to stderr).
pub(crate) fn load_pack(io: &mut Io, path: &Path, limits: RuleLimits) -> Result<cavra_engine::Pack, i32> {
    let source = read_source(io, path, limits).ok_or(exit::USAGE)?;
    let modules = RuleFiles::for_file(path, None, limits.max_rule_bytes);
    match cavra_engine::compile_with(&path.display().to_string(), &source, &modules) {
        Ok(pack) if pack.is_module() => {
            say!(
                io.err,
                "error: {}: is a module (`module {}`): it declares types and lets for packs to import, and has no decision to run",
                path.display(),
                pack.name()
            );
            Err(exit::USAGE)
        }
        Ok(pack) => {
            let spared = contracts::contract_at(path);
            let warnings = Diagnostics::new(pack.file(), pack.source(), warnings_to_show(&pack, spared.as_ref()));
            let _ = write!(io.err, "{}", warnings.render(io.color));
            Ok(pack)
        }
        Err(d) => {
            render_failure(io, &d);
            Err(exit::FAILED)
        }
    }
}

/// A value's JSON in at most 160 characters (`…` where it is cut).
fn shortened(json: &str) -> String {
    const MAX: usize = 160;
    if json.chars().count() <= MAX {
        return json.to_string();
    }
    let cut: String = json.chars().take(MAX).collect();
    format!("{cut}…")
}

fn render_failure(io: &mut Io, d: &Diagnostics) {
    let _ = write!(io.err, "{}", d.render(io.color));
    say!(io.err, "error: the pack has {} error{}; nothing was evaluated", d.error_count(), plural(d.error_count()));
}

/// Binds static inputs and sets dynamic ones (and the clock) from named JSON
/// documents. `origins` names where each document came from (a file path),
/// so that an error points at the file and the JSON path inside it.
pub(crate) fn bind(
    pack: &cavra_engine::Pack,
    mut documents: HashMap<String, Json>,
    now: &str,
    origins: &HashMap<String, String>,
) -> Result<(Program, cavra_engine::Inputs), String> {
    let declared = pack.inputs();
    for name in documents.keys() {
        if !declared.iter().any(|i| &i.name == name) {
            let names: Vec<&str> = declared.iter().map(|i| i.name.as_str()).collect();
            let hint = cavra_grammar::diagnostic::did_you_mean(name, names.iter().copied()).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            return Err(format!("the pack `{}` has no input `{name}`{hint}; its inputs are: {}", pack.name(), names.join(", ")));
        }
    }
    if declared.iter().any(|i| i.name == "now" && !i.is_static) {
        documents.entry("now".to_string()).or_insert_with(|| Json::String(now.to_string()));
    }
    let explain = |e: cavra_engine::BindError| match e {
        cavra_engine::BindError::Input { input, source } => match origins.get(&input) {
            Some(file) => format!("{file}: {}: {} (input `{input}`)", source.path, source.message),
            None => format!("input `{input}`: {}: {}", source.path, source.message),
        },
        cavra_engine::BindError::Missing(name) => {
            format!("the static input `{name}` was not given\n  help: give it with --input {name}=FILE.json")
        }
        other => other.to_string(),
    };
    let program = pack.bind(&documents).map_err(explain)?;
    let mut inputs = program.inputs();
    for info in declared.iter().filter(|i| !i.is_static) {
        if let Some(doc) = documents.get(&info.name) {
            program.set_input(&mut inputs, &info.name, doc).map_err(explain)?;
        }
    }
    Ok((program, inputs))
}

pub(crate) fn eval(io: &mut Io, args: EvalArgs, limits: RuleLimits) -> i32 {
    let pack = match load_pack(io, &args.pack, limits) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut documents = HashMap::new();
    let mut origins = HashMap::new();
    // In the order given, so that refusals are listed in that order.
    let mut read = Vec::new();
    for arg in &args.inputs {
        let parsed = split_assignment(arg, "--input").and_then(|(name, file)| Ok((name.to_string(), file, read_json(Path::new(file))?)));
        match parsed {
            Ok((name, file, doc)) => read.push((name, file.to_string(), doc)),
            Err(e) => {
                say!(io.err, "error: {e}");
                return exit::USAGE;
            }
        }
    }
    if let Err(e) = screen_inputs(&read) {
        return crate::fail(io, &e);
    }
    for (name, file, doc) in read {
        origins.insert(name.clone(), file);
        documents.insert(name, doc);
    }
    for arg in &args.sets {
        match parse_set(arg) {
            Ok((name, value)) => {
                documents.insert(name, value);
            }
            Err(e) => {
                say!(io.err, "error: {e}");
                return exit::USAGE;
            }
        }
    }
    let now = match clock(args.at.as_deref()) {
        Ok(n) => n,
        Err(e) => return crate::fail(io, &e),
    };
    let (program, inputs) = match bind(&pack, documents, &now, &origins) {
        Ok(x) => x,
        Err(e) => {
            say!(io.err, "error: {e}");
            return exit::USAGE;
        }
    };
    let evaluation = match evaluate(&program, &inputs, args.decision.as_deref(), args.explain) {
        Ok(e) => e,
        Err(message) => {
            say!(io.err, "error: {message}");
            return exit::USAGE;
        }
    };
    for item in &evaluation.items {
        match &item.result {
            Ok(ItemResult::Outcome(o)) if !args.json => print_outcome(io, o),
            Ok(ItemResult::Explanation(e)) => {
                if let Some(err) = &e.error {
                    say!(io.err, "error: {}:{}:{}: {} (at `{}`)", program.pack().file(), err.line, err.column, err.message, err.text);
                    if err.message.contains("was not given") {
                        say!(io.err, "  help: give it with --set NAME=VALUE or --input NAME=FILE.json");
                    }
                }
                if !args.json {
                    print_explanation(io, e);
                }
            }
            Ok(ItemResult::Report(r)) if !args.json => print_report(io, r),
            Ok(_) => {}
            Err(message) => {
                say!(io.err, "error: {} `{}`: {message}", item.kind(), item.name);
                if message.contains("was not given") {
                    say!(io.err, "  help: give it with --set NAME=VALUE or --input NAME=FILE.json");
                }
            }
        }
    }
    if args.json {
        say!(io.out, "{}", serde_json::to_string_pretty(&evaluation.to_json(&now)).unwrap_or_default());
    }
    // A required input left out is the caller's mistake, as an unknown one
    // is (README, "Exit codes"); other failures are the pack's.
    if !program.missing_inputs(&inputs).is_empty() {
        exit::USAGE
    } else if evaluation.failed() {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// Refuses `--input` documents that are not public-safe, as the runtime
/// commands refuse theirs (`rules/public_safety.cavra`, bundled): every
/// refused value by file and JSON path, never the value, before anything is
/// bound, so no error message can quote it.
fn screen_inputs(documents: &[(String, String, Json)]) -> Result<(), AppError> {
    if documents.is_empty() {
        return Ok(());
    }
    let screen = cavra_app::safety::Screen::load(&PackSource::Bundled)?;
    let mut refusals: Vec<Refusal> = Vec::new();
    for (_, file, doc) in documents {
        refusals.extend(screen.refusals(doc)?.iter().map(|r| r.located(file)));
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(AppError::NotPublicSafe { head: "the input documents are not public-safe; nothing was evaluated".into(), refusals })
    }
}

fn print_outcome(io: &mut Io, o: &cavra_engine::Outcome) {
    let category = if o.category == o.action { String::new() } else { format!(" {}", o.category) };
    match o.reason() {
        Some(r) => say!(io.out, "{}: {}{category}: {r}", o.decision, o.action),
        None => say!(io.out, "{}: {}{category}", o.decision, o.action),
    }
    for (k, v) in o.fields() {
        say!(io.out, "  {k}: {v}");
    }
}

fn print_explanation(io: &mut Io, e: &cavra_engine::Explanation) {
    use cavra_engine::TraceValue;
    let word = |v: &TraceValue| match v {
        TraceValue::True => "true ",
        TraceValue::False => "false",
        TraceValue::Error(_) => "error",
        TraceValue::Skipped => "-    ",
    };
    say!(io.out, "decision {}", e.decision);
    for arm in &e.arms {
        let mark = match arm.result {
            TraceValue::True => "=> matched",
            TraceValue::Error(_) => "=> error",
            _ => "",
        };
        say!(io.out, "{}", format!("  arm {} (line {}) {mark}", arm.arm, arm.line).trim_end());
        for c in &arm.conditions {
            say!(io.out, "    {} {}  [{}:{}]", word(&c.value), c.text, c.line, c.column);
            if let TraceValue::Error(m) = &c.value {
                say!(io.out, "          {m}");
            }
            for l in &c.lets {
                say!(io.out, "          {} = {}", l.name, shortened(&l.value.to_string()));
            }
            for el in &c.elements {
                let settled = match (el.quantifier.as_str(), el.index) {
                    ("all", Some(i)) => format!("fails on element {i}"),
                    ("all", None) => "holds for every element".to_string(),
                    ("any", None) => "no element matches".to_string(),
                    ("first", None) => "finds no element".to_string(),
                    (_, Some(i)) => format!("picks element {i}"),
                    (_, None) => String::new(),
                };
                let element = el.element.as_ref().map(|e| format!(" {}", shortened(&e.to_string()))).unwrap_or_default();
                say!(io.out, "          {} in {} {settled}{element}", el.quantifier, el.text);
            }
        }
    }
    if let Some(o) = &e.outcome {
        let reason = o.get("reason").and_then(Json::as_str).map(|r| format!(": {r}")).unwrap_or_default();
        say!(io.out, "  outcome: {} {}{reason}", o["action"].as_str().unwrap_or(""), o["category"].as_str().unwrap_or(""));
    }
}

pub(crate) fn print_report(io: &mut Io, report: &cavra_engine::Report) {
    say!(io.out, "{}: {}", report.gate, report.status);
    for c in &report.checks {
        say!(io.out, "  [{}] {}: {}", if c.passed { "pass" } else { "FAIL" }, c.id, c.message);
    }
}

pub(crate) fn fmt(io: &mut Io, paths: &[PathBuf], check_only: bool, limits: RuleLimits) -> i32 {
    let files = match expand(paths, ".cavra") {
        Ok(f) => f,
        Err(e) => {
            say!(io.err, "error: {e}");
            return exit::USAGE;
        }
    };
    let mut status = exit::OK;
    let mut changed = 0;
    for file in &files {
        let Some(source) = read_source(io, file, limits) else {
            status = exit::FAILED;
            continue;
        };
        let name = file.display().to_string();
        let ast = match cavra_grammar::parse(&name, &source) {
            Ok(ast) => ast,
            Err(d) => {
                let _ = write!(io.err, "{}", d.render(io.color));
                status = exit::FAILED;
                continue;
            }
        };
        let formatted = cavra_grammar::format(&ast, &source);
        if formatted == source {
            continue;
        }
        changed += 1;
        if check_only {
            say!(io.out, "would reformat {name}");
            status = exit::FAILED;
        } else if let Err(e) = std::fs::write(file, formatted) {
            say!(io.err, "error: {name}: cannot write: {e}");
            status = exit::FAILED;
        } else {
            say!(io.out, "formatted {name}");
        }
    }
    let verb = if check_only { "would be reformatted" } else { "reformatted" };
    say!(io.err, "{} file{} checked, {changed} {verb}", files.len(), plural(files.len()));
    status
}

/// `NAME=VALUE` where VALUE is JSON, or plain text when it does not parse as JSON.
pub(crate) fn parse_set(arg: &str) -> Result<(String, Json), String> {
    let (name, value) = split_assignment(arg, "--set")?;
    let json = serde_json::from_str(value).unwrap_or_else(|_| Json::String(value.to_string()));
    Ok((name.to_string(), json))
}

pub(crate) fn split_assignment<'a>(arg: &'a str, flag: &str) -> Result<(&'a str, &'a str), String> {
    match arg.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim(), value)),
        _ => Err(format!("{flag} expects NAME=VALUE, got {arg:?}")),
    }
}
