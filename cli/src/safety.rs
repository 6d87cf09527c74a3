//! Public-safety screening of input documents (DOMAIN §6). A document is
//! flattened into (JSON path, key, value) triples and each is decided by
//! `rules/public_safety.cavra`; any refusal refuses the whole document.
//! Reasons name the path, never the value, and a key that is itself unsafe is
//! reported at its parent without being spelled out.

use crate::runtime::{load_pack, ReportArgs, UsageError};
use cavra_engine::{Inputs, Program, Value};
use serde_json::Value as Json;
use std::collections::HashMap;

const SAFETY_PACK: &str = "public_safety.cavra";

pub(crate) struct Screen {
    program: Program,
    slots: [usize; 3],
}

impl Screen {
    pub(crate) fn load(args: &ReportArgs) -> Result<Screen, UsageError> {
        let pack = load_pack(args, SAFETY_PACK)?;
        let program = pack.bind(&HashMap::new()).map_err(|e| UsageError(format!("{SAFETY_PACK}: {e}")))?;
        let slot = |name: &str| program.input_slot(name).ok_or_else(|| UsageError(format!("{SAFETY_PACK}: the pack has no input `{name}`")));
        let slots = [slot("path")?, slot("key")?, slot("value")?];
        Ok(Screen { program, slots })
    }

    /// Why `document` may not be used, one reason per unsafe value; empty when it is public-safe.
    pub(crate) fn refusals(&self, document: &Json) -> Result<Vec<String>, UsageError> {
        let mut inputs = self.program.inputs();
        let mut reasons = Vec::new();
        let mut path = String::from("$");
        self.walk(document, "", &mut path, &mut inputs, &mut reasons)?;
        Ok(reasons)
    }

    fn decide(&self, inputs: &mut Inputs, path: &str, key: &str, value: &str) -> Result<Option<String>, UsageError> {
        inputs.set(self.slots[0], Value::text(path));
        inputs.set(self.slots[1], Value::text(key));
        inputs.set(self.slots[2], Value::text(value));
        let outcome = self.program.decide("value", inputs).map_err(|e| UsageError(self.program.render_error(&e)))?;
        Ok((outcome.action != "accept").then(|| outcome.reason().map(|r| r.to_string()).unwrap_or_else(|| format!("{path}: refused"))))
    }

    fn walk(&self, value: &Json, key: &str, path: &mut String, inputs: &mut Inputs, out: &mut Vec<String>) -> Result<(), UsageError> {
        match value {
            Json::String(text) => out.extend(self.decide(inputs, path, key, text)?),
            // A secret-named key is refused whatever it holds.
            Json::Null | Json::Bool(_) | Json::Number(_) => out.extend(self.decide(inputs, path, key, "")?),
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.walk(item, "", path, inputs, out)?;
                    path.truncate(len);
                }
            }
            Json::Object(map) => {
                for (k, v) in map {
                    // The key itself is text too; if it is unsafe, say where
                    // without spelling it out, and do not descend below it.
                    let parent = format!("{path} (an object key)");
                    if let Some(reason) = self.decide(inputs, &parent, "", k)? {
                        out.push(reason);
                        continue;
                    }
                    let len = path.len();
                    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        path.push('.');
                        path.push_str(k);
                    } else {
                        path.push_str(&format!("[{k:?}]"));
                    }
                    self.walk(v, k, path, inputs, out)?;
                    path.truncate(len);
                }
            }
        }
        Ok(())
    }
}
