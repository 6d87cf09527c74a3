//! The go-backend readiness reports (README, "Readiness reports"). The decisions live in the
//! readiness packs (`rules/readiness/`); this module only finds the
//! documents, converts them to the packs' declared types, binds the inputs,
//! runs the gate and shapes the typed report.

use crate::documents::{clock, read_json_limited};
use crate::error::{AppError, Field};
use crate::packs::{BoundPack, PackSource};
use crate::records::{Check, CheckStatus, Ordered, ReadinessReport, ReadinessStatus, Summary};
use crate::safety::Screen;
use cavra_engine::{BindError, Pack, Report, Value};
use std::path::{Path, PathBuf};

/// The backend modes, in order of trust.
pub const MODES: &[&str] = &["disabled", "shadow", "enforce", "promoted"];

/// Which readiness report to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportName {
    RollbackReadiness,
    PromotionReadiness,
    RollbackRehearsal,
    RollbackDrills,
    RollbackDrillSchedule,
    ProductionReadiness,
}

impl ReportName {
    /// The report an API path names: `rollback-readiness`, ..., `production-readiness`.
    pub fn from_path(name: &str) -> Option<ReportName> {
        Some(match name {
            "rollback-readiness" => ReportName::RollbackReadiness,
            "promotion-readiness" => ReportName::PromotionReadiness,
            "rollback-rehearsal" => ReportName::RollbackRehearsal,
            "rollback-drills" => ReportName::RollbackDrills,
            "rollback-drill-schedule" => ReportName::RollbackDrillSchedule,
            "production-readiness" => ReportName::ProductionReadiness,
            _ => return None,
        })
    }

    fn kind(self) -> Option<&'static ReportKind> {
        Some(match self {
            ReportName::RollbackReadiness => &ROLLBACK,
            ReportName::PromotionReadiness => &PROMOTION,
            ReportName::RollbackRehearsal => &REHEARSAL,
            ReportName::RollbackDrills => &DRILLS,
            ReportName::RollbackDrillSchedule => &SCHEDULE,
            ReportName::ProductionReadiness => return None,
        })
    }
}

/// The evidence documents and settings every readiness report reads (README, "Readiness reports").
#[derive(Clone, Debug)]
pub struct Evidence {
    /// disabled, shadow, enforce or promoted (trimmed, any case); `None` is disabled.
    pub mode: Option<String>,
    /// The clock (RFC 3339 with an offset); `None` is now.
    pub at: Option<String>,
    pub rollback_plan: Option<PathBuf>,
    pub promotion_evidence: Option<PathBuf>,
    pub rollback_rehearsal: Option<PathBuf>,
    pub rollback_drill_history: Option<PathBuf>,
    pub rollback_drill_schedule: Option<PathBuf>,
    /// Maximum age of the latest drill, in days.
    pub max_age_days: f64,
    /// A schedule is due soon within this many days of its next due time.
    pub due_soon_days: f64,
    /// Document size and plan size limits.
    pub limits: crate::documents::Limits,
}

pub const DEFAULT_MAX_AGE_DAYS: f64 = 90.0;
pub const DEFAULT_DUE_SOON_DAYS: f64 = 14.0;

impl Default for Evidence {
    fn default() -> Self {
        Evidence {
            mode: None,
            at: None,
            rollback_plan: None,
            promotion_evidence: None,
            rollback_rehearsal: None,
            rollback_drill_history: None,
            rollback_drill_schedule: None,
            max_age_days: DEFAULT_MAX_AGE_DAYS,
            due_soon_days: DEFAULT_DUE_SOON_DAYS,
            limits: crate::documents::Limits::default(),
        }
    }
}

impl Evidence {
    /// These settings with a request's clock and mode, where it gives them.
    pub fn with_request(&self, at: Option<String>, mode: Option<String>) -> Evidence {
        Evidence { at: at.or_else(|| self.at.clone()), mode: mode.or_else(|| self.mode.clone()), ..self.clone() }
    }

    fn path(&self, doc: Doc) -> Option<&Path> {
        let path = match doc {
            Doc::Plan => &self.rollback_plan,
            Doc::Promotion => &self.promotion_evidence,
            Doc::Rehearsal => &self.rollback_rehearsal,
            Doc::History => &self.rollback_drill_history,
            Doc::Schedule => &self.rollback_drill_schedule,
        };
        // An empty environment variable means "not set".
        path.as_deref().filter(|p| !p.as_os_str().is_empty())
    }

    /// The drill schedule document, which planning needs.
    pub fn schedule_path(&self) -> Result<&Path, AppError> {
        self.path(Doc::Schedule).ok_or_else(schedule_needed)
    }

    /// The mode, checked.
    pub fn mode(&self) -> Result<String, AppError> {
        parse_mode(self.mode.as_deref())
    }
}

/// The error of an operation that needs the drill schedule document and has none.
pub(crate) fn schedule_needed() -> AppError {
    AppError::input("a drill schedule is needed: give --rollback-drill-schedule-path or CAVRA_GO_ROLLBACK_DRILL_SCHEDULE")
}

/// A mode as given (trimmed, any case; empty is disabled), or an error naming the modes.
pub fn parse_mode(raw: Option<&str>) -> Result<String, AppError> {
    let raw = raw.unwrap_or("disabled");
    let mode = raw.trim().to_lowercase();
    if mode.is_empty() {
        return Ok("disabled".into());
    }
    if MODES.contains(&mode.as_str()) {
        Ok(mode)
    } else {
        Err(AppError::field(Field::named("mode"), format!("expected one of {}, got {raw:?}", MODES.join(", "))))
    }
}

/// One readiness report to compute.
#[derive(Clone, Debug)]
pub struct ReadinessRequest {
    pub report: ReportName,
    pub evidence: Evidence,
}

/// One readiness report: its pack, output schema and documents.
pub(crate) struct ReportKind {
    pub(crate) pack: &'static str,
    schema_version: &'static str,
    /// (pack input name, which path), the first one making the report explicit.
    pub(crate) documents: &'static [(&'static str, Doc)],
}

#[derive(Clone, Copy)]
pub(crate) enum Doc {
    Plan,
    Promotion,
    Rehearsal,
    History,
    Schedule,
}

pub(crate) const ROLLBACK: ReportKind =
    ReportKind { pack: "readiness/rollback.cavra", schema_version: "cavra.go-backend-pilot.rollback-readiness.v1", documents: &[("plan", Doc::Plan)] };
pub(crate) const PROMOTION: ReportKind = ReportKind {
    pack: "readiness/promotion.cavra",
    schema_version: "cavra.go-backend-pilot.promotion-readiness.v1",
    documents: &[("evidence", Doc::Promotion)],
};
pub(crate) const REHEARSAL: ReportKind = ReportKind {
    pack: "readiness/rehearsal.cavra",
    schema_version: "cavra.go-backend-pilot.rollback-rehearsal.v1",
    documents: &[("rehearsal", Doc::Rehearsal), ("plan", Doc::Plan)],
};
pub(crate) const DRILLS: ReportKind = ReportKind {
    pack: "readiness/drill_history.cavra",
    schema_version: "cavra.go-backend-pilot.rollback-drill-history.v1",
    documents: &[("history", Doc::History)],
};
pub(crate) const SCHEDULE: ReportKind = ReportKind {
    pack: "readiness/drill_schedule.cavra",
    schema_version: "cavra.go-backend-pilot.rollback-drill-schedule.v1",
    documents: &[("schedule", Doc::Schedule), ("history", Doc::History)],
};
/// The inputs every report sets on its pack (`now`: time, `mode`: text,
/// `explicit`: bool), beside three per document: `NAME` (the document),
/// `NAME_path` and `NAME_error` (text).
pub(crate) const REPORT_INPUTS: [&str; 3] = ["now", "mode", "explicit"];
/// Settings a report pack may declare (numbers), set when it does.
pub(crate) const REPORT_SETTINGS: [&str; 2] = ["max_age_days", "due_soon_days"];
pub(crate) const PRODUCTION_PACK: &str = "readiness/production.cavra";
const PRODUCTION_SCHEMA: &str = "cavra.deployment.production_readiness.v1";

/// The go-backend gates in the order reports and evaluations list them:
/// (section, the production pack's input, the report).
pub(crate) const GATES: [(&str, &str, &ReportKind); 5] = [
    ("go_backend_promotion", "promotion_status", &PROMOTION),
    ("go_backend_rollback", "rollback_status", &ROLLBACK),
    ("go_backend_rollback_rehearsal", "rehearsal_status", &REHEARSAL),
    ("go_backend_rollback_drill_history", "drill_history_status", &DRILLS),
    ("go_backend_rollback_drill_schedule", "drill_schedule_status", &SCHEDULE),
];

/// The clock and mode of one operation, checked once.
pub(crate) struct Session {
    pub now: String,
    pub mode: String,
}

impl Session {
    pub(crate) fn new(evidence: &Evidence) -> Result<Session, AppError> {
        Ok(Session { now: clock(evidence.at.as_deref())?, mode: evidence.mode()? })
    }
}

/// Computes one readiness report.
pub fn readiness(packs: &PackSource, request: &ReadinessRequest) -> Result<ReadinessReport, AppError> {
    let session = Session::new(&request.evidence)?;
    match request.report.kind() {
        Some(kind) => run_report(packs, &request.evidence, kind, &session),
        None => production_report(packs, &request.evidence, &session),
    }
}

/// The drill schedule report, for the notification plan.
pub(crate) fn schedule_report(packs: &PackSource, evidence: &Evidence) -> Result<(Session, ReadinessReport), AppError> {
    let session = Session::new(evidence)?;
    let report = run_report(packs, evidence, &SCHEDULE, &session)?;
    Ok((session, report))
}

/// Runs one report's gate and shapes its record.
pub(crate) fn run_report(packs: &PackSource, evidence: &Evidence, kind: &ReportKind, session: &Session) -> Result<ReadinessReport, AppError> {
    let bound = packs.bind(kind.pack)?;
    let gate = bound.program.pack().name().to_string();
    let mut inputs = bound.inputs();
    let [now, mode, explicit_input] = REPORT_INPUTS;
    bound.set(&mut inputs, now, time_value(&session.now))?;
    bound.set(&mut inputs, mode, Value::text(&session.mode))?;
    let explicit = kind.documents.first().is_some_and(|(_, doc)| evidence.path(*doc).is_some());
    bound.set(&mut inputs, explicit_input, Value::Bool(explicit))?;
    let screen = Screen::load(packs)?;
    for (name, doc) in kind.documents {
        let loaded = load_document(bound.program.pack(), name, evidence.path(*doc), &screen, evidence.limits.max_document_bytes);
        bound.set(&mut inputs, name, loaded.value)?;
        bound.set(&mut inputs, &format!("{name}_path"), loaded.path.map(|p| Value::text(&p)).unwrap_or_default())?;
        bound.set(&mut inputs, &format!("{name}_error"), loaded.error.map(|e| Value::text(&e)).unwrap_or_default())?;
    }
    let [max_age_days, due_soon_days] = REPORT_SETTINGS;
    bound.set_if_declared(&mut inputs, max_age_days, Value::Number(evidence.max_age_days));
    bound.set_if_declared(&mut inputs, due_soon_days, Value::Number(evidence.due_soon_days));
    let report = bound.readiness(&gate, &inputs)?;
    Ok(report_record(kind.schema_version, session, &report))
}

fn time_value(rfc3339: &str) -> Value {
    cavra_engine::time::parse_time(rfc3339).map(Value::Time).unwrap_or_default()
}

struct Loaded {
    value: Value,
    path: Option<String>,
    error: Option<String>,
}

/// Reads and converts one document. Problems are not errors here: the pack
/// reports them as a failing check (`X_error`), naming the file and JSON path.
fn load_document(pack: &Pack, input: &str, path: Option<&Path>, screen: &Screen, max_document_bytes: u64) -> Loaded {
    let Some(path) = path else { return Loaded { value: Value::Null, path: None, error: None } };
    let shown = path.display().to_string();
    let error = |e: String| Loaded { value: Value::Null, path: Some(shown.clone()), error: Some(e) };
    let json = match read_json_limited(path, max_document_bytes) {
        Ok(j) => j,
        Err(e) => return error(e),
    };
    // Public documents only: anything that looks private refuses the document.
    match screen.refusals(&json) {
        Ok(refusals) if refusals.is_empty() => {}
        Ok(refusals) => {
            let reasons: Vec<&str> = refusals.iter().map(|r| r.reason.as_str()).collect();
            return error(format!("{shown} is not public-safe, so it was not used: {}", reasons.join("; ")));
        }
        Err(e) => return error(e.to_string()),
    }
    match pack.input_value(input, &json) {
        Ok(value) => Loaded { value, path: Some(shown.clone()), error: None },
        Err(BindError::Input { source, .. }) => error(format!("{shown}: {}: {}", source.path, source.message)),
        Err(e) => error(format!("{shown}: {e}")),
    }
}

fn report_record(schema_version: &str, session: &Session, report: &Report) -> ReadinessReport {
    let checks: Vec<Check> = report
        .checks
        .iter()
        .map(|c| Check {
            id: c.id.clone(),
            status: if c.passed { CheckStatus::Pass } else { CheckStatus::Fail },
            message: c.message.clone(),
            extra: c.fields.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
        })
        .collect();
    let failed: Vec<String> = checks.iter().filter(|c| !c.passed()).map(|c| c.id.clone()).collect();
    let status = ReadinessStatus::parse(&report.status);
    ReadinessReport {
        schema_version: schema_version.to_string(),
        mode: session.mode.clone(),
        summary: Summary {
            generated_at: session.now.clone(),
            requested: status != ReadinessStatus::NotRequested,
            check_count: checks.len(),
            passed_count: checks.len() - failed.len(),
            failed_count: failed.len(),
            failed_checks: failed,
        },
        status,
        checks,
        sections: Ordered::default(),
    }
}

/// The production report: every go-backend report, then the production gate
/// over their statuses.
fn production_report(packs: &PackSource, evidence: &Evidence, session: &Session) -> Result<ReadinessReport, AppError> {
    let bound: BoundPack = packs.bind(PRODUCTION_PACK)?;
    let mut inputs = bound.inputs();
    bound.set_if_declared(&mut inputs, "now", time_value(&session.now));
    bound.set_if_declared(&mut inputs, "mode", Value::text(&session.mode));
    bound.set_if_declared(&mut inputs, "explicit", Value::Bool(false));
    let mut sections = Vec::new();
    for (section, input, kind) in GATES {
        let report = run_report(packs, evidence, kind, session)?;
        bound.set(&mut inputs, input, Value::text(report.status.as_str()))?;
        sections.push((section.to_string(), report));
    }
    let gate = bound.program.pack().name().to_string();
    let report = bound.readiness(&gate, &inputs)?;
    let mut record = report_record(PRODUCTION_SCHEMA, session, &report);
    record.sections = Ordered(sections);
    Ok(record)
}
