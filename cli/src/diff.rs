//! `cavra diff`: what a change to a pack or to its input documents would do.
//! The arguments become a [`DiffRequest`] at the edge (packs compiled, files
//! read, rule-test cases loaded); `cavra_app::diff` compares the decisions;
//! the report is printed as a table or JSON, and the exit code says whether
//! anything changes (3), so a CI job can require a review.

use crate::authoring::{load_pack, parse_set, split_assignment, RuleLimits};
use crate::{exit, Io};
use cavra_app::diff::{DiffOver, DiffRequest, Given, Source};
use cavra_app::documents::read_json;
use cavra_app::records::{DecidedOutcome, DiffReport};
use cavra_app::{AppError, Field, PackSource};
use std::path::{Path, PathBuf};

pub(crate) const DIFF_HELP: &str = "\
Compares two packs (OLD and NEW, on the same inputs), or one pack on two sets of input documents
(--input for the old side, --against replacing them on the new side), and lists every decision that
changes: the key, the interval, and both outcomes with their reasons.

Keys: for a pack that reads a routing policy (input `policy`), every owner, provider and schedule
either side's policy names, unless given with --set. Every other per-decision input takes the values
given with --set (repeat --set to examine several), else every constant the packs compare it with (for
a number, also the values between and beyond them), plus null when it is optional, or * (any other
text) when it is required text.

Instants: the times the input documents name (recurring windows expanded), the time constants of either
pack and the period's ends, so no change between them is missed. The period is [--from, --to), by
default the 7 days from --at (else from now), at most 366 days; --tests FILE examines the cases of a
rule-test file instead, each at its own instant.

Exit status: 0 when no decision changes, 3 when one does, 2 on a usage error.

Examples:
  cavra diff rules/routing.cavra --input policy=examples/routing-policy.json \\
      --against policy=new-policy.json --from 2026-05-21T00:00:00Z --to 2026-05-23T00:00:00Z
  cavra diff rules/routing.cavra routing-v2.cavra --input policy=examples/routing-policy.json \\
      --set schedule_status=due_soon --at 2026-05-21T00:00:00Z --json
  cavra diff rules/routing.cavra routing-v2.cavra --tests rules/routing.test.toml";

/// `cavra diff OLD [NEW] ...`.
#[derive(clap::Args, Debug)]
pub(crate) struct DiffArgs {
    /// The pack before the change.
    #[arg(value_name = "OLD")]
    old: PathBuf,
    /// The pack after the change (default: OLD, with --against documents).
    #[arg(value_name = "NEW", required_unless_present = "against")]
    new: Option<PathBuf>,
    /// An input document of both sides: NAME=FILE.json.
    #[arg(long = "input", value_name = "NAME=FILE")]
    inputs: Vec<String>,
    /// A document replacing the input of the same name on the new side: NAME=FILE.json.
    #[arg(long = "against", value_name = "NAME=FILE")]
    against: Vec<String>,
    /// A value to examine: NAME=VALUE (JSON, or plain text); repeat a name to examine several values.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    sets: Vec<String>,
    /// The decision to compare (needed when the packs have more than one).
    #[arg(long)]
    decision: Option<String>,
    /// Start of the period (RFC 3339, inclusive); default: --at, else now.
    #[arg(long, value_name = "TIME", conflicts_with = "tests")]
    from: Option<String>,
    /// End of the period (RFC 3339, exclusive); default: 7 days after --from.
    #[arg(long, value_name = "TIME", conflicts_with = "tests")]
    to: Option<String>,
    /// The clock: where the period starts by default, and the instant of test cases without `at`.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Examine the cases of a rule-test file (*.test.toml) instead of a period.
    #[arg(long, value_name = "FILE")]
    tests: Option<PathBuf>,
    /// Print JSON: {"changes": [...], "change_count": N}.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: RuleLimits,
}

pub(crate) fn run(io: &mut Io, args: DiffArgs) -> i32 {
    let old_pack = match load_pack(io, &args.old, args.limits) {
        Ok(pack) => pack,
        Err(code) => return code,
    };
    let new_pack = match &args.new {
        Some(path) => match load_pack(io, path, args.limits) {
            Ok(pack) => pack,
            Err(code) => return code,
        },
        None => old_pack.clone(),
    };
    let request = match request(&args, old_pack, new_pack) {
        Ok(request) => request,
        Err(e) => return crate::fail(io, &e),
    };
    let result = cavra_app::diff::diff(&PackSource::Bundled, &request);
    crate::output::finish_with(io, args.json, result, print_diff, |report| if report.change_count > 0 { exit::NEEDS_ATTENTION } else { exit::OK })
}

/// The arguments as the application's request: files read, values parsed.
fn request(args: &DiffArgs, old_pack: cavra_engine::Pack, new_pack: cavra_engine::Pack) -> Result<DiffRequest, AppError> {
    let documents = |flag: &'static str, given: &[String]| -> Result<Vec<Given>, AppError> {
        let field = Field::named(flag);
        given
            .iter()
            .map(|arg| {
                let (name, file) = split_assignment(arg, &format!("--{flag}")).map_err(|e| AppError::field(field.clone(), e))?;
                let value = read_json(Path::new(file)).map_err(|e| AppError::field(field.clone(), e))?;
                Ok(Given { input: name.to_string(), value, source: Source::File { field: field.clone(), file: file.to_string() } })
            })
            .collect()
    };
    let set = args
        .sets
        .iter()
        .map(|arg| {
            let (input, value) = parse_set(arg).map_err(|e| AppError::field(Field::named("set"), e))?;
            Ok(Given { input, value, source: Source::Flag(Field::named("set")) })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let over = match &args.tests {
        Some(file) => {
            let cases = crate::rule_tests::diff_cases(file, args.limits).map_err(|e| AppError::field(Field::named("tests"), e))?;
            DiffOver::Cases(cases.into_iter().map(|c| cavra_app::diff::DiffCase { at: c.at.or_else(|| args.at.clone()), ..c }).collect())
        }
        None => DiffOver::Period { from: args.from.clone(), to: args.to.clone(), at: args.at.clone() },
    };
    Ok(DiffRequest {
        old_pack,
        new_pack,
        inputs: documents("input", &args.inputs)?,
        against: documents("against", &args.against)?,
        set,
        decision: args.decision.clone(),
        over,
    })
}

/// KEY, FROM, TO, OLD, NEW per change, then `N changes` (or `no decision changes`).
pub(crate) fn print_diff(io: &mut Io, report: &DiffReport) {
    if !report.changes.is_empty() {
        let rows: Vec<Vec<String>> = report
            .changes
            .iter()
            .map(|c| {
                let key: Vec<String> = c.key.0.iter().map(|(name, value)| format!("{name}={}", key_value(value))).collect();
                vec![key.join(" "), c.from.clone(), c.to.clone(), shown(&c.old), shown(&c.new)]
            })
            .collect();
        crate::output::print_columns(io, &["KEY", "FROM", "TO", "OLD", "NEW"], &rows);
    }
    let count = report.change_count;
    let _ = match count {
        0 => writeln!(io.out, "no decision changes"),
        1 => writeln!(io.out, "1 change"),
        n => writeln!(io.out, "{n} changes"),
    };
}

/// A key's value as the table shows it: plain text when it reads as one
/// word, else JSON (quoted text, numbers, null), so keys never run together.
fn key_value(value: &serde_json::Value) -> String {
    match value.as_str() {
        Some(text) if !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || c == '=' || c == '"') => text.to_string(),
        _ => value.to_string(),
    }
}

/// `suppress maintenance_window: production change freeze` (the category
/// only when it differs from the action, as `cavra eval` prints an outcome).
fn shown(outcome: &DecidedOutcome) -> String {
    let category = if outcome.category == outcome.action { String::new() } else { format!(" {}", outcome.category) };
    match &outcome.reason {
        Some(reason) => format!("{}{category}: {reason}", outcome.action),
        None => format!("{}{category}", outcome.action),
    }
}
