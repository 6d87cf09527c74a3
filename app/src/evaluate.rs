//! `go-pilot-evaluate` (README, "Readiness reports"): the built-in action decision from the
//! action pack (`rules/actions/`), and an external runtime that may be
//! compared (shadow) or selected (enforce, promoted) when the gates allow.
//! A runtime that fails, times out or disagrees falls back to the built-in
//! decision; that is never an error for the caller. The files the runtime
//! runs with (`policy_path`, `package_dir`) must exist and be public-safe
//! to show: those are the caller's errors.

use crate::error::{AppError, Field};
use crate::packs::PackSource;
use crate::readiness::{run_report, Evidence, Session, GATES};
use crate::records::{ActionDecision, BackendEvaluation, Ordered, ReadinessStatus};
use crate::safety::Screen;
use cavra_engine::Value;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const ACTIONS_PACK: &str = "actions/actions.cavra";
/// The inputs evaluate sets on the action pack, and the decision it asks for (its `severity` field is read).
pub(crate) const ACTIONS_INPUTS: [&str; 2] = ["action_type", "target"];
pub(crate) const ACTION_DECISION: &str = "action";
const EVALUATION_SCHEMA: &str = "cavra.go-backend-pilot.evaluation.v1";
const DECISIONS: &[&str] = &["allow", "deny", "requires_approval"];
/// How long an external runtime may take unless told otherwise.
pub const DEFAULT_RUNTIME_TIMEOUT: Duration = Duration::from_millis(5000);

/// One agent action to decide.
#[derive(Clone, Debug)]
pub struct EvaluateRequest {
    /// read_file, write_file, execute_command, git_operation or mcp_tool_call.
    pub action_type: String,
    /// The file path, command line, git command or MCP tool name.
    pub target: String,
    /// An external runtime program (request JSON on stdin, decision JSON on stdout).
    pub runtime: Option<PathBuf>,
    pub runtime_timeout: Duration,
    /// The files the external runtime runs with.
    pub files: RuntimeFiles,
    pub evidence: Evidence,
}

/// The files an external runtime runs with (the product's documented
/// `--policy-path FILE --package-dir DIR`): passed to it in its request as
/// `policy_path` and `package_dir`, and shown in the evaluation. Either may
/// be absent.
#[derive(Clone, Debug, Default)]
pub struct RuntimeFiles {
    /// The compiled policy the runtime enforces: an existing file.
    pub policy_path: Option<PathBuf>,
    /// The runtime's release package: an existing folder.
    pub package_dir: Option<PathBuf>,
}

/// [`RuntimeFiles`] checked, as text: what the runtime receives and the evaluation shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShownFiles {
    pub policy_path: Option<String>,
    pub package_dir: Option<String>,
}

impl RuntimeFiles {
    /// Checks that each given path exists as what it must be (a file, a
    /// folder) and that its text is public-safe: it is printed, logged and
    /// kept in evaluation documents, so like every document shown it must
    /// hold no hostname, address or credential. Errors name the field.
    pub fn checked(&self, packs: &PackSource) -> Result<ShownFiles, AppError> {
        if self.policy_path.is_none() && self.package_dir.is_none() {
            return Ok(ShownFiles::default());
        }
        let screen = Screen::load(packs)?;
        let policy_path = self.policy_path.as_deref().map(|p| shown_path(&screen, Field::named("policy_path"), p, Kind::File)).transpose()?;
        let package_dir = self.package_dir.as_deref().map(|p| shown_path(&screen, Field::named("package_dir"), p, Kind::Folder)).transpose()?;
        Ok(ShownFiles { policy_path, package_dir })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Folder,
}

/// One runtime path as text, once it is known to be public-safe and to exist.
/// Public safety is checked first, so that an error never quotes a path that
/// must not be shown.
fn shown_path(screen: &Screen, field: Field, path: &Path, kind: Kind) -> Result<String, AppError> {
    let text = path.display().to_string();
    if let Some(refusal) = screen.refusals(&Json::String(text.clone()))?.first() {
        // The reason names the root (`$: looks like ...`); the field names it here.
        let reason = refusal.reason.strip_prefix("$: ").unwrap_or(&refusal.reason);
        return Err(AppError::field(field, format!("the path is not public-safe (the evaluation would show it), so nothing was evaluated: {reason}")));
    }
    let (wanted, found) = match (kind, std::fs::metadata(path)) {
        (Kind::File, Ok(m)) => ("a file", m.is_file()),
        (Kind::Folder, Ok(m)) => ("a folder", m.is_dir()),
        (_, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err(AppError::field(field, format!("{text}: no such file or folder"))),
        (_, Err(e)) => return Err(AppError::field(field, format!("{text}: cannot be read: {e}"))),
    };
    if !found {
        return Err(AppError::field(field, format!("{text}: not {wanted}")));
    }
    Ok(text)
}

pub fn evaluate(packs: &PackSource, request: &EvaluateRequest) -> Result<BackendEvaluation, AppError> {
    let session = Session::new(&request.evidence)?;
    let files = request.files.checked(packs)?;
    let builtin = builtin_decision(packs, &request.action_type, &request.target)?;

    // In promoted mode the external runtime needs every gate to pass.
    let mut gates = Vec::new();
    let mut failing_gate = None;
    if session.mode == "promoted" {
        for (section, _, kind) in GATES {
            let report = run_report(packs, &request.evidence, kind, &session)?;
            let accepted = matches!(report.status, ReadinessStatus::Ready)
                || (section == "go_backend_rollback_drill_schedule" && report.status == ReadinessStatus::DueSoon);
            if failing_gate.is_none() && !accepted {
                failing_gate = Some(format!("the {section} gate is {}", report.status));
            }
            gates.push((section.to_string(), report));
        }
    }

    let external_allowed = matches!(session.mode.as_str(), "enforce" | "promoted");
    let consult = request.runtime.is_some() && session.mode != "disabled" && failing_gate.is_none();
    let external = match (&request.runtime, consult) {
        (Some(path), true) => {
            let call = json!({
                "action_type": request.action_type, "target": request.target, "mode": session.mode, "at": session.now,
                "policy_path": files.policy_path, "package_dir": files.package_dir,
            });
            Some(run_external(path, &call, request.runtime_timeout))
        }
        _ => None,
    };
    let parity_match = match &external {
        Some(Ok(decision)) => Some(decision.decision == builtin.decision),
        _ => None,
    };
    let (selected, fallback_reason) = match (&request.runtime, &external) {
        (None, _) => ("builtin", None),
        (Some(_), _) if !external_allowed => ("builtin", None),
        (Some(_), None) => ("builtin", failing_gate.clone()),
        (Some(_), Some(Err(reason))) => ("builtin", Some(reason.clone())),
        (Some(_), Some(Ok(decision))) if decision.decision != builtin.decision => {
            ("builtin", Some(format!("the external runtime decided {:?} but the built-in decision is {:?}", decision.decision, builtin.decision)))
        }
        (Some(_), Some(Ok(_))) => ("external", None),
    };
    let effective = match (&external, selected) {
        (Some(Ok(decision)), "external") => decision.clone(),
        _ => builtin.clone(),
    };
    Ok(BackendEvaluation {
        schema_version: EVALUATION_SCHEMA.to_string(),
        action_type: request.action_type.clone(),
        target: request.target.clone(),
        policy_path: files.policy_path,
        package_dir: files.package_dir,
        backend_mode: session.mode.clone(),
        selected_backend: selected.to_string(),
        fallback_used: fallback_reason.is_some(),
        fallback_reason,
        parity_match,
        builtin_decision: builtin,
        external_decision: external.and_then(Result::ok),
        effective_decision: effective,
        generated_at: session.now,
        gates: Ordered(gates),
    })
}

/// The action pack's decision.
fn builtin_decision(packs: &PackSource, action_type: &str, target: &str) -> Result<ActionDecision, AppError> {
    let bound = packs.bind(ACTIONS_PACK)?;
    let mut inputs = bound.inputs();
    let [action_type_input, target_input] = ACTIONS_INPUTS;
    bound.set(&mut inputs, action_type_input, Value::text(action_type))?;
    bound.set(&mut inputs, target_input, Value::text(target))?;
    let outcome = bound.decide(ACTION_DECISION, &inputs)?;
    Ok(ActionDecision {
        decision: outcome.action.to_string(),
        rule_id: Some(outcome.category.to_string()),
        severity: outcome.field("severity").and_then(Value::as_text).map(String::from),
        reason: outcome.reason().and_then(Value::as_text).map(String::from),
    })
}

/// Runs the external runtime: the request on stdin, one decision JSON on
/// stdout, within `timeout`. Every problem is a reason to fall back.
fn run_external(program: &Path, request: &Json, timeout: Duration) -> Result<ActionDecision, String> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("the external runtime could not be started: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A runtime that exits without reading is judged by its answer below.
        let _ = stdin.write_all(request.to_string().as_bytes());
    }
    let mut stdout = child.stdout.take().ok_or("the external runtime has no output")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.by_ref().take(1 << 20).read_to_string(&mut text).map(|_| text)
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the external runtime did not answer within {} ms", timeout.as_millis()));
            }
            Err(e) => return Err(format!("the external runtime could not be watched: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("the external runtime failed ({status})"));
    }
    let text = reader.join().map_err(|_| "the external runtime's output could not be read".to_string())?;
    let text = text.map_err(|e| format!("the external runtime's output could not be read: {e}"))?;
    let decision: Json = serde_json::from_str(text.trim()).map_err(|e| format!("the external runtime did not answer JSON: {e}"))?;
    // The decision's other fields are text; anything else is not used.
    let text = |key: &str| decision.get(key).and_then(Json::as_str).map(String::from);
    match decision["decision"].as_str() {
        Some(d) if DECISIONS.contains(&d) => {
            Ok(ActionDecision { decision: d.to_string(), rule_id: text("rule_id"), severity: text("severity"), reason: text("reason") })
        }
        _ => Err(format!("the external runtime answered no valid decision (expected one of {})", DECISIONS.join(", "))),
    }
}
