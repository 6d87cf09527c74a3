//! Deterministic ids (README, "Architecture"): a prefix plus the first 16 hex digits of
//! SHA-256 over the canonical JSON of a record's content (sorted keys, no
//! spaces), so a record is never overwritten: history is append-only.

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The first 16 hex digits of SHA-256 over canonical JSON (sorted keys, no spaces).
pub fn content_hash(value: &Json) -> String {
    let text = canonical_text(value);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Canonical JSON text: sorted keys, no spaces.
pub fn canonical_text(value: &Json) -> String {
    let mut text = String::with_capacity(1024);
    canonical(value, &mut text);
    text
}

fn canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quoted(k, out);
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Json::String(text) => quoted(text, out),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string literal, escaped as serde_json escapes it.
fn quoted(text: &str, out: &mut String) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&Json::from(text).to_string());
    }
}
