//! Evaluating any pack on one set of inputs: each decision (or its
//! explanation) and each readiness gate. Shared by `cavra eval` and the
//! API's `POST /v1/packs/{pack}/evaluate`; the result is rendered as JSON at
//! the edge (`{"pack", "at", "decisions", "readiness"}`).

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
