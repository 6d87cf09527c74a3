//! Public-safety screening of input documents (README, "Public-safe by construction"). A document is
//! flattened into (JSON path, key, value) triples and each is decided by
//! `rules/public_safety.cavra`; any refusal refuses the whole document.
//! Reasons name the path, never the value, and a key that is itself unsafe is
//! reported at its parent without being spelled out.

use crate::error::{AppError, Refusal};
use crate::packs::{BoundPack, PackSource};
use cavra_engine::{InputSlot, Inputs, Value};
use serde_json::Value as Json;

pub(crate) const SAFETY_PACK: &str = "public_safety.cavra";
/// The inputs the screen sets per JSON value, and the decision it asks for (`accept`, else refused).
pub(crate) const SAFETY_INPUTS: [&str; 3] = ["path", "key", "value"];
pub(crate) const SAFETY_DECISION: &str = "value";
/// How a refused object key's path is marked, so that the key is not spelled out.
const KEY_MARK: &str = " (an object key)";

pub struct Screen {
    pack: BoundPack,
    slots: [InputSlot; 3],
}

impl Screen {
    pub fn load(packs: &PackSource) -> Result<Screen, AppError> {
        let pack = packs.bind(SAFETY_PACK)?;
        let slots = pack.slots(SAFETY_INPUTS)?;
        Ok(Screen { pack, slots })
    }

    /// Why `document` may not be used, one reason per unsafe value; empty when it is public-safe.
    pub fn refusals(&self, document: &Json) -> Result<Vec<Refusal>, AppError> {
        let mut inputs = self.pack.inputs();
        let mut reasons = Vec::new();
        let mut path = String::from("$");
        self.walk(document, "", &mut path, &mut inputs, &mut reasons)?;
        Ok(reasons)
    }

    /// Refuses the whole document unless it is public-safe, with `head` saying what was not done.
    pub fn require_safe(&self, document: &Json, head: impl FnOnce() -> String) -> Result<(), AppError> {
        let refusals = self.refusals(document)?;
        if refusals.is_empty() {
            Ok(())
        } else {
            Err(AppError::NotPublicSafe { head: head(), refusals })
        }
    }

    fn decide(&self, inputs: &mut Inputs, path: &str, key: &str, value: &str) -> Result<Option<Refusal>, AppError> {
        inputs.set(self.slots[0], Value::text(path));
        inputs.set(self.slots[1], Value::text(key));
        inputs.set(self.slots[2], Value::text(value));
        let outcome = self.pack.decide(SAFETY_DECISION, inputs)?;
        Ok((outcome.action != "accept").then(|| Refusal {
            path: path.strip_suffix(KEY_MARK).unwrap_or(path).to_string(),
            reason: outcome.reason().map(|r| r.to_string()).unwrap_or_else(|| format!("{path}: refused")),
        }))
    }

    fn walk(&self, value: &Json, key: &str, path: &mut String, inputs: &mut Inputs, out: &mut Vec<Refusal>) -> Result<(), AppError> {
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
                    let parent = format!("{path}{KEY_MARK}");
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
