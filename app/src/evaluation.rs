//! Evaluating any pack on one set of inputs: each decision (or its
//! explanation) and each readiness gate. Shared by `cavra eval` and the
//! API's `POST /v1/packs/{pack}/evaluate`; the result is rendered as JSON at
//! the edge (`{"pack", "at", "decisions", "readiness"}`).

use crate::error::AppError;
use cavra_engine::Program;
use serde_json::{json, Value as Json};

/// Everything a pack decides on one set of inputs: each decision (or its
/// explanation) and each readiness gate. Shared by `cavra eval` and the API.
pub struct Evaluation<'p> {
    pub pack: &'p str,
    pub items: Vec<Item<'p>>,
}

pub struct Item<'p> {
    pub name: String,
    /// A readiness gate rather than a decision.
    pub gate: bool,
    pub result: Result<ItemResult<'p>, String>,
}

pub enum ItemResult<'p> {
    Outcome(cavra_engine::Outcome<'p>),
    Explanation(cavra_engine::Explanation),
    Report(cavra_engine::Report),
}

impl Item<'_> {
    pub fn kind(&self) -> &'static str {
        if self.gate {
            "readiness"
        } else {
            "decision"
        }
    }
}

impl Evaluation<'_> {
    /// True when an item failed, or an explanation stopped on an error.
    pub fn failed(&self) -> bool {
        self.items.iter().any(|i| match &i.result {
            Err(_) => true,
            Ok(ItemResult::Explanation(e)) => e.error.is_some(),
            Ok(_) => false,
        })
    }

    /// `{"pack", "at", "decisions": {name: outcome}, "readiness": {name: report}}`;
    /// a failed item is `{"error": message}`.
    pub fn to_json(&self, now: &str) -> Json {
        let mut decisions = serde_json::Map::new();
        let mut readiness = serde_json::Map::new();
        for item in &self.items {
            let value = match &item.result {
                Ok(ItemResult::Outcome(o)) => o.to_json(),
                Ok(ItemResult::Explanation(e)) => json!({"outcome": e.outcome, "explain": e}),
                Ok(ItemResult::Report(r)) => r.to_json(),
                Err(message) => json!({"error": message}),
            };
            let section = if item.gate { &mut readiness } else { &mut decisions };
            section.insert(item.name.clone(), value);
        }
        json!({"pack": self.pack, "at": now, "decisions": decisions, "readiness": readiness})
    }
}

/// Runs every decision and readiness gate of the program (or only `only`).
/// Errs when `only` names neither.
pub fn evaluate<'p>(program: &'p Program, inputs: &cavra_engine::Inputs, only: Option<&str>, explain: bool) -> Result<Evaluation<'p>, String> {
    let pack = program.pack();
    let decisions: Vec<&str> = pack.decisions().iter().map(|(d, _)| *d).collect();
    let gates: Vec<&str> = pack.gates().iter().map(|(g, _)| *g).collect();
    if let Some(only) = only {
        if !decisions.contains(&only) && !gates.contains(&only) {
            let list = |items: &[&str]| list_or_none(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            return Err(format!(
                "the pack `{}` has no decision or readiness gate `{only}`\n  decisions: {}; readiness gates: {}",
                pack.name(),
                list(&decisions),
                list(&gates)
            ));
        }
    }
    let wanted = |name: &&str| only.is_none_or(|d| d == *name);
    let mut items = Vec::new();
    for name in decisions.into_iter().filter(wanted) {
        let result = if explain { program.explain(name, inputs).map(ItemResult::Explanation) } else { program.decide(name, inputs).map(ItemResult::Outcome) };
        items.push(Item { name: name.to_string(), gate: false, result: result.map_err(|e| program.render_error(&e)) });
    }
    for name in gates.into_iter().filter(wanted) {
        let result = program.readiness(name, inputs).map(ItemResult::Report).map_err(|e| program.render_error(&e));
        items.push(Item { name: name.to_string(), gate: true, result });
    }
    Ok(Evaluation { pack: pack.name(), items })
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// One evaluation of a loaded pack, as a long-running front end receives it:
/// the inputs by name (static ones are documents, bound once per distinct
/// content and reused), optionally one decision, and the clock.
#[derive(Clone, Debug, Default)]
pub struct PackEvaluationRequest {
    pub inputs: serde_json::Map<String, Json>,
    pub decision: Option<String>,
    pub explain: bool,
    pub at: Option<String>,
}

/// A pack's evaluation as a JSON document (`{"pack", "at", "decisions",
/// "readiness"}`), and the (action, category) of each decision made, for counting.
pub struct PackEvaluation {
    pub document: Json,
    pub decisions: Vec<(String, String)>,
}

/// `Some(" (did you mean `x`?)")` when a known name is close to `given`.
pub fn did_you_mean<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    cavra_grammar::diagnostic::did_you_mean(given, known).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
}

/// Evaluates `pack` from the compiled set. Errors name the JSON path of the
/// input at fault (`$.inputs.policy.maintenance_windows[0].start_at`); a
/// static document that is not public-safe is refused before it is bound.
pub fn evaluate_pack(
    packs: &std::sync::Arc<crate::packs::CompiledPacks>,
    pack: &cavra_engine::Pack,
    request: &PackEvaluationRequest,
) -> Result<PackEvaluation, AppError> {
    let name = pack.name();
    let now = crate::documents::clock(request.at.as_deref())?;
    let declared = pack.inputs();
    let mut statics = std::collections::HashMap::new();
    let mut dynamics = Vec::new();
    for (input, value) in &request.inputs {
        let Some(info) = declared.iter().find(|i| i.name == *input) else {
            let names: Vec<&str> = declared.iter().map(|i| i.name.as_str()).collect();
            let hint = did_you_mean(input, names.iter().copied());
            return Err(AppError::at_path(
                format!("$.inputs.{input}"),
                format!("the pack `{name}` has no input `{input}`{hint}; its inputs are: {}", names.join(", ")),
            ));
        };
        if info.is_static {
            statics.insert(input.clone(), value.clone());
        } else {
            dynamics.push((input.clone(), value.clone()));
        }
    }
    let key = statics_key(&statics);
    let program = match packs.cached(pack, &key) {
        Some(program) => program,
        None => {
            // Static inputs are documents (policies): public-safe ones only, checked once per distinct document.
            let screen = crate::safety::Screen::load(&crate::packs::PackSource::Compiled(packs.clone()))?;
            for (input, doc) in &statics {
                let refusals: Vec<_> = screen.refusals(doc)?.iter().map(|r| r.located(&format!("$.inputs.{input}"))).collect();
                if !refusals.is_empty() {
                    return Err(AppError::NotPublicSafe { head: format!("input `{input}` is not public-safe; nothing was decided"), refusals });
                }
            }
            packs.bind(pack, key, &statics).map_err(|e| bind_error(name, e))?
        }
    };
    let mut values = program.inputs();
    if declared.iter().any(|i| i.name == "now" && !i.is_static) && !dynamics.iter().any(|(n, _)| n == "now") {
        dynamics.push(("now".into(), Json::String(now.clone())));
    }
    for (input, value) in &dynamics {
        program.set_input(&mut values, input, value).map_err(|e| bind_error(name, e))?;
    }
    let evaluation =
        evaluate(&program, &values, request.decision.as_deref(), request.explain).map_err(|e| AppError::field(crate::Field::named("decision"), e))?;
    if let Some((item, message)) = evaluation.items.iter().find_map(|i| i.result.as_ref().err().map(|e| (i.name.clone(), e.clone()))) {
        return Err(AppError::Evaluation(format!("`{item}`: {message}")));
    }
    let decisions = evaluation
        .items
        .iter()
        .filter_map(|item| match &item.result {
            Ok(ItemResult::Outcome(o)) => Some((o.action.to_string(), o.category.to_string())),
            _ => None,
        })
        .collect();
    Ok(PackEvaluation { document: evaluation.to_json(&now), decisions })
}

/// Names a set of static inputs by content, without copying the documents.
fn statics_key(statics: &std::collections::HashMap<String, Json>) -> String {
    let mut parts: Vec<(&String, String)> = statics.iter().map(|(name, doc)| (name, crate::hash::content_hash(doc))).collect();
    parts.sort();
    parts.iter().map(|(name, hash)| format!("{name}={hash}")).collect::<Vec<_>>().join(";")
}

fn bind_error(pack: &str, e: cavra_engine::BindError) -> AppError {
    match e {
        cavra_engine::BindError::Input { input, source } => {
            let inner = source.path.strip_prefix('$').unwrap_or(&source.path);
            AppError::at_path(format!("$.inputs.{input}{inner}"), format!("input `{input}`: {}", source.message))
        }
        cavra_engine::BindError::Missing(input) => {
            AppError::at_path(format!("$.inputs.{input}"), format!("the pack `{pack}` needs the static input `{input}`"))
        }
        other => AppError::at_path("$.inputs", other.to_string()),
    }
}
