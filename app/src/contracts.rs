//! Pack contracts: what a pack in a `--rules` folder must declare for the
//! runtime commands to use it (docs/language.md §18), and the check of a
//! pack against its contract (`cavra check --rules DIR`), with the usual
//! positioned diagnostics.
//!
//! A contract names the inputs an operation sets (and their types), the
//! decision or readiness gate it asks for, and the `with` fields it reads.
//! The names come from the constants the operations themselves use, so a
//! contract cannot drift from what the runtime does; only the types are
//! stated here. A pack may declare more than its contract (its own inputs
//! are then left unset: null). Codes:
//!
//! | code | what |
//! |---|---|
//! | E0800 | a pack the runtime commands need is missing from the folder |
//! | E0801 | an input the runtime sets is not declared |
//! | E0802 | an input is declared with a type the runtime cannot give |
//! | E0803 | the decision or readiness gate the runtime asks for is not declared |
//! | W0804 | a `with` field the runtime does not read (a typo?) |

use crate::evaluate::{ACTIONS_INPUTS, ACTIONS_PACK, ACTION_DECISION};
use crate::lifecycle::{ESCALATION_DECISION, ESCALATION_INPUTS, ESCALATION_PACK};
use crate::policy::ROUTING_PACK;
use crate::readiness::{GATES, PRODUCTION_PACK, REPORT_INPUTS, REPORT_SETTINGS};
use crate::routing::{ROUTE_DECISION, ROUTE_FIELDS, ROUTING_INPUTS};
use crate::safety::{SAFETY_DECISION, SAFETY_INPUTS, SAFETY_PACK};
use cavra_engine::{Diagnostic, Pack};
use serde::Serialize;

/// The kind of value the runtime gives an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Text,
    Time,
    Bool,
    Number,
    /// A JSON document converted to the declared type: any record type.
    Document,
}

impl Kind {
    fn shown(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Time => "time",
            Kind::Bool => "bool",
            Kind::Number => "number",
            Kind::Document => "a record type",
        }
    }

    /// Whether a declared type (as the engine shows it, e.g. `text?`) takes this kind of value.
    fn accepts(self, declared: &str) -> bool {
        let base = declared.strip_suffix('?').unwrap_or(declared);
        match self {
            Kind::Document => !matches!(base, "text" | "time" | "bool" | "number" | "duration" | "recurrence" | "null" | "unknown"),
            kind => base == kind.shown(),
        }
    }
}

/// One input the runtime sets.
#[derive(Clone, Debug, Serialize)]
pub struct Input {
    pub name: String,
    pub kind: Kind,
    /// The runtime may give null: the type must be optional (`T?`).
    pub nullable: bool,
    /// Set only when the pack declares it (a setting the pack may use or not).
    pub optional: bool,
    /// A static input, bound once from a document (`static input`).
    pub is_static: bool,
}

impl Input {
    fn new(name: &str, kind: Kind) -> Input {
        Input { name: name.to_string(), kind, nullable: false, optional: false, is_static: false }
    }
    fn nullable(mut self) -> Input {
        self.nullable = true;
        self
    }
    fn optional(mut self) -> Input {
        self.optional = true;
        self
    }
    fn fixed(mut self) -> Input {
        self.is_static = true;
        self
    }

    /// The declaration the contract asks for, e.g. `input history: DrillHistory?`
    /// (`record`: the record type the pack gives a document, if any).
    pub fn declaration(&self, record: Option<&str>) -> String {
        let ty = match self.kind {
            Kind::Document => record.map(|r| r.trim_end_matches('?')).filter(|r| self.kind.accepts(r)).unwrap_or("RecordType").to_string(),
            kind => kind.shown().to_string(),
        };
        let keyword = if self.is_static { "static input" } else { "input" };
        format!("{keyword} {}: {ty}{}", self.name, if self.nullable { "?" } else { "" })
    }
}

/// What the runtime asks a pack for.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Asks {
    /// A decision, and the `with` fields of its outcome that are read (`None`: every field is shown as it is).
    Decision { name: &'static str, reads: Option<Vec<&'static str>> },
    /// A readiness gate named like the pack (`pack NAME` ... `readiness NAME`).
    Gate,
}

/// The contract of one pack of a rules folder.
#[derive(Clone, Debug, Serialize)]
pub struct Contract {
    /// The pack's path in the folder, e.g. `routing.cavra`.
    pub file: &'static str,
    /// The commands that use it.
    pub used_by: &'static str,
    pub inputs: Vec<Input>,
    pub asks: Asks,
}

/// Every pack a rules folder must hold, with its contract.
pub fn contracts() -> Vec<Contract> {
    let mut all = Vec::new();
    for (_, _, kind) in GATES {
        let mut inputs: Vec<Input> = REPORT_INPUTS.iter().zip([Kind::Time, Kind::Text, Kind::Bool]).map(|(name, kind)| Input::new(name, kind)).collect();
        for (document, _) in kind.documents {
            inputs.push(Input::new(document, Kind::Document).nullable());
            inputs.push(Input::new(&format!("{document}_path"), Kind::Text).nullable());
            inputs.push(Input::new(&format!("{document}_error"), Kind::Text).nullable());
        }
        inputs.extend(REPORT_SETTINGS.iter().map(|name| Input::new(name, Kind::Number).optional()));
        all.push(Contract {
            file: kind.pack,
            used_by: "the readiness reports (go-rollback-readiness and the like), production-readiness and go-pilot-evaluate",
            inputs,
            asks: Asks::Gate,
        });
    }
    let mut production: Vec<Input> =
        REPORT_INPUTS.iter().zip([Kind::Time, Kind::Text, Kind::Bool]).map(|(name, kind)| Input::new(name, kind).optional()).collect();
    production.extend(GATES.iter().map(|(_, input, _)| Input::new(input, Kind::Text)));
    all.push(Contract { file: PRODUCTION_PACK, used_by: "production-readiness, go-pilot-evaluate", inputs: production, asks: Asks::Gate });
    let mut routing = vec![Input::new("policy", Kind::Document).fixed()];
    routing.extend(ROUTING_INPUTS.iter().zip([Kind::Time, Kind::Text, Kind::Text, Kind::Text, Kind::Text]).map(|(name, kind)| Input::new(name, kind)));
    all.push(Contract {
        file: ROUTING_PACK,
        used_by: "the notification commands (plan, deliver, escalation plan, simulate; the API's plan and deliver)",
        inputs: routing,
        asks: Asks::Decision { name: ROUTE_DECISION, reads: Some(ROUTE_FIELDS.to_vec()) },
    });
    let kinds = [
        (Kind::Time, false),
        (Kind::Text, false),
        (Kind::Text, false),
        (Kind::Time, true),
        (Kind::Time, true),
        (Kind::Bool, false),
        (Kind::Text, true),
        (Kind::Time, true),
        (Kind::Bool, false),
        (Kind::Bool, false),
        (Kind::Bool, false),
        (Kind::Number, false),
        (Kind::Text, false),
        (Kind::Text, false),
    ];
    let escalation = ESCALATION_INPUTS
        .iter()
        .zip(kinds)
        .map(|(name, (kind, nullable))| if nullable { Input::new(name, kind).nullable() } else { Input::new(name, kind) })
        .collect();
    all.push(Contract {
        file: ESCALATION_PACK,
        used_by: "the notification lifecycle (deliver, escalation plan, approved retries, a plan's pending and failed counts)",
        inputs: escalation,
        asks: Asks::Decision { name: ESCALATION_DECISION, reads: Some(vec!["outstanding", "breached"]) },
    });
    all.push(Contract {
        file: ACTIONS_PACK,
        used_by: "go-pilot-evaluate",
        inputs: ACTIONS_INPUTS.iter().map(|name| Input::new(name, Kind::Text)).collect(),
        asks: Asks::Decision { name: ACTION_DECISION, reads: Some(vec!["severity"]) },
    });
    all.push(Contract {
        file: SAFETY_PACK,
        used_by: "every command that reads a public document (the public-safety screen)",
        inputs: SAFETY_INPUTS.iter().map(|name| Input::new(name, Kind::Text)).collect(),
        asks: Asks::Decision { name: SAFETY_DECISION, reads: Some(Vec::new()) },
    });
    all
}

/// The contract of the pack at `file` (relative to the rules folder), if the runtime uses it.
pub fn contract_for(file: &str) -> Option<Contract> {
    contracts().into_iter().find(|c| c.file == file)
}

/// The contract of a pack at `path`, by its place in a rules folder (a path
/// ending in `readiness/rollback.cavra`), wherever that folder is.
pub fn contract_at(path: &std::path::Path) -> Option<Contract> {
    contracts().into_iter().find(|c| path.ends_with(c.file))
}

/// Where `pack` breaks `contract`: errors for what the runtime needs,
/// warnings for `with` fields it never reads.
pub fn check(contract: &Contract, pack: &Pack) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let at_pack = pack.name_span();
    let declared = pack.inputs();
    for need in &contract.inputs {
        let Some(input) = declared.iter().find(|i| i.name == need.name) else {
            if !need.optional {
                found.push(
                    Diagnostic::error("E0801", at_pack, format!("the pack does not declare input `{}`, which the runtime sets", need.name))
                        .with_label(format!("needed by {}", contract.used_by))
                        .with_help(format!("declare `{}`", need.declaration(None))),
                );
            }
            continue;
        };
        let span = pack.input_span(&need.name).unwrap_or(at_pack);
        let optional_type = input.ty.ends_with('?');
        let fits = need.kind.accepts(&input.ty) && (optional_type || !need.nullable) && input.is_static == need.is_static;
        if !fits {
            let given = if input.is_static { "static input" } else { "input" };
            let why = if need.nullable && !optional_type && need.kind.accepts(&input.ty) {
                "the runtime gives null when it has no value, so the type must be optional".to_string()
            } else if input.is_static != need.is_static {
                format!("the runtime sets it {}", if need.is_static { "once, from a document (static)" } else { "per evaluation (not static)" })
            } else {
                format!("the runtime gives {}", need.kind.shown())
            };
            found.push(
                Diagnostic::error("E0802", span, format!("{given} `{}` is declared as `{}`: {why}", need.name, input.ty))
                    .with_label("declared here")
                    .with_help(format!("declare `{}`", need.declaration(Some(&input.ty)))),
            );
        }
    }
    match &contract.asks {
        Asks::Gate => {
            if !pack.gates().iter().any(|(name, _)| *name == pack.name()) {
                found.push(
                    Diagnostic::error(
                        "E0803",
                        at_pack,
                        format!("the pack declares no readiness gate `{}` (named like the pack), which the runtime asks for", pack.name()),
                    )
                    .with_label(format!("needed by {}", contract.used_by))
                    .with_help(format!("add `readiness {} {{ ... }}`", pack.name())),
                );
            }
        }
        Asks::Decision { name, reads } => match pack.with_fields(name) {
            None => found.push(
                Diagnostic::error("E0803", at_pack, format!("the pack declares no decision `{name}`, which the runtime asks for"))
                    .with_label(format!("needed by {}", contract.used_by))
                    .with_help(format!("add `decision {name} {{ ... otherwise => ... }}`")),
            ),
            Some(fields) => {
                for (field, span) in fields.into_iter().filter(|(field, _)| reads.as_ref().is_some_and(|reads| !reads.contains(field))) {
                    let read = reads.as_deref().unwrap_or_default();
                    let help = if read.is_empty() { "the runtime reads no field of this decision".to_string() } else { format!("it reads {}", quoted(read)) };
                    found.push(
                        Diagnostic::warning("W0804", span, format!("the runtime does not read `with` field `{field}` of decision `{name}`"))
                            .with_label("never read")
                            .with_help(help),
                    );
                }
            }
        },
    }
    found
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_pack_keeps_its_contract() {
        for contract in contracts() {
            let key = format!("rules/{}", contract.file);
            let source = crate::bundled::get(&key).unwrap_or_else(|| panic!("{key} is bundled"));
            let pack = cavra_engine::compile_with(&key, source, &crate::modules::RuleFiles::bundled()).unwrap_or_else(|d| panic!("{}", d.render(false)));
            let found = check(&contract, &pack);
            assert!(found.is_empty(), "{key}: {}", cavra_engine::Diagnostics::new(&key, source, found).render(false));
        }
    }

    #[test]
    fn the_language_guide_states_every_contract() {
        let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md")).expect("docs/language.md");
        let section = guide.split("## 18. Pack contracts").nth(1).expect("docs/language.md §18");
        for contract in contracts() {
            assert!(section.contains(&format!("`{}`", contract.file)), "§18 does not name {}", contract.file);
            let named = contract.inputs.iter().filter(|i| !i.name.ends_with("_path") && !i.name.ends_with("_error"));
            for input in named {
                let stated = section.contains(&format!("`{}", input.name)) || section.contains(&format!("input {}:", input.name));
                assert!(stated, "§18 does not name input {} of {}", input.name, contract.file);
            }
            if let Asks::Decision { name, reads } = &contract.asks {
                assert!(section.contains(&format!("`decision {name}`")), "§18 does not name decision {name}");
                for field in reads.iter().flatten() {
                    assert!(section.contains(&format!("`{field}`")), "§18 does not name field {field} of {name}");
                }
            }
        }
    }

    #[test]
    fn a_pack_that_breaks_its_contract_is_told_where() {
        let source = "pack routing\n\ninput now: time\ninput owner: text\ninput provider: number\ninput schedule_id: text\n\ndecision route {\n  when owner == \"x\" => skip nobody with { acknowledgment_minutes: 5 }\n  otherwise => deliver deliver\n}\n";
        let pack = cavra_engine::compile("routing.cavra", source).unwrap_or_else(|d| panic!("{}", d.render(false)));
        let contract = contract_for("routing.cavra").expect("the routing contract");
        let rendered = cavra_engine::Diagnostics::new("routing.cavra", source, check(&contract, &pack)).render(false);
        for expected in [
            "error[E0801]: the pack does not declare input `policy`, which the runtime sets",
            "error[E0801]: the pack does not declare input `schedule_status`, which the runtime sets",
            "= help: declare `static input policy: RecordType`",
            "error[E0802]: input `provider` is declared as `number`: the runtime gives text",
            "--> routing.cavra:5:",
            "warning[W0804]: the runtime does not read `with` field `acknowledgment_minutes` of decision `route`",
        ] {
            assert!(rendered.contains(expected), "missing {expected:?} in:\n{rendered}");
        }
    }
}
