//! `cavra-engine`: type checking, compilation and evaluation of cavra packs.
//!
//! Data flows one way: text -> [`cavra_grammar::ast`] -> checked IR ->
//! bound [`Program`] -> [`Outcome`] / [`Report`]. The engine knows nothing of
//! files, HTTP or plugins: a pack's `use` lines are resolved through the
//! [`ModuleResolver`] its caller gives ([`compile_with`]; [`MemoryModules`]
//! for modules held in memory), and [`analysis`] keeps what editors need.
//!
//! ```
//! use std::collections::HashMap;
//! use serde_json::json;
//!
//! let source = r#"
//! pack routing
//! type Window { start_at: time, end_at: time, owners: list<text> = [], reason: text }
//! type Policy { windows: list<Window> = [] }
//! static input policy: Policy
//! input now: time
//! input owner: text
//!
//! let window = first w in policy.windows
//!   where w.start_at <= now < w.end_at and (w.owners is empty or owner in w.owners)
//!
//! decision route {
//!   when window exists => suppress maintenance_window reason window.reason
//!   otherwise => deliver
//! }
//! "#;
//! let pack = cavra_engine::compile("routing.cavra", source).expect("the pack checks");
//! let policy = json!({"windows": [{"start_at": "2026-05-21T18:00:00Z", "end_at": "2026-05-21T20:00:00Z",
//!                                   "owners": ["release-governance"], "reason": "change freeze"}]});
//! let program = pack.bind(&HashMap::from([("policy".to_string(), policy)])).expect("the policy is valid");
//!
//! let mut inputs = program.inputs();
//! program.set_input(&mut inputs, "owner", &json!("release-governance")).unwrap();
//! program.set_input(&mut inputs, "now", &json!("2026-05-21T19:00:00Z")).unwrap();
//! let outcome = program.decide("route", &inputs).unwrap();
//! assert_eq!((outcome.action, outcome.category), ("suppress", "maintenance_window"));
//!
//! program.set_input(&mut inputs, "now", &json!("2026-05-21T20:00:00Z")).unwrap(); // end is exclusive
//! assert_eq!(program.decide("route", &inputs).unwrap().action, "deliver");
//!
//! // For many calls: the decision looked up once, the outcome lent in place,
//! // and a request's keys resolved once for deciding it at other instants.
//! let route = program.decider("route").unwrap();
//! assert_eq!(route.decide_with(&inputs, |o| o.category()).unwrap(), "deliver");
//! let keys = route.keys(&inputs);
//! let at = |t: &str| cavra_engine::time::parse_time(t).unwrap();
//! assert_eq!(route.decide_at_with(&keys, at("2026-05-21T18:30:00Z"), |o| o.category()).unwrap(), "maintenance_window");
//!
//! // Many related decisions in a session; an outcome kept beyond the call
//! // (a plan keeps one per route) is borrowed from the program or shared
//! // with the session, not copied, and outlives the session.
//! let mut session = program.session();
//! session.set(program.input_slot("owner").unwrap(), cavra_engine::Value::text("release-governance"));
//! session.set(program.input_slot("now").unwrap(), cavra_engine::Value::Time(at("2026-05-21T18:30:00Z")));
//! let kept = session.decide_with("route", |o| o.keep()).unwrap();
//! // One decision per text of one input, the others as set (a plan asks
//! // this for every provider of an owner); the input is left unset.
//! let owners: Vec<std::sync::Arc<str>> = vec!["release-governance".into(), "payments".into()];
//! let mut categories = vec![""; owners.len()];
//! session.decide_each("route", program.input_slot("owner").unwrap(), &owners, |i, o| categories[i] = o.category()).unwrap();
//! assert_eq!(categories, ["maintenance_window", "deliver"]);
//! drop(session);
//! assert_eq!((kept.category(), kept.reason().and_then(|r| r.as_text())), ("maintenance_window", Some("change freeze")));
//! ```

// A library must not panic on input it did not expect: outside tests, every
// `unwrap` is either real handling or an `expect` naming its invariant.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod analysis;
mod builtins;
mod check;
mod compile;
mod convert;
mod error;
mod eval;
mod fold;
mod index;
mod ir;
mod modules;
mod outcome;
mod probes;
mod program;
pub mod recurrence;
mod scan_index;
mod table;
pub mod time;
mod types;
mod value;

pub use convert::InputError;
pub use eval::EvalError;
pub use modules::{MemoryModules, ModuleFile, ModuleResolver, NoModules, SourceFile};
pub use program::*;
pub use value::{MapValue, Record, Value};

pub use cavra_grammar::{ast::Span, Diagnostic, Diagnostics, Severity};
