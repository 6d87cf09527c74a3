//! Deterministic ids (README, "Architecture"): a prefix plus the first 16 hex digits of
//! SHA-256 over the canonical JSON of a record's content (sorted keys, no
//! spaces), so a record is never overwritten: history is append-only.

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// The first 16 hex digits of SHA-256 over canonical JSON (sorted keys, no spaces).
pub fn content_hash(value: &Json) -> String {
    text_hash(&canonical_text(value))
}

/// The first 16 hex digits of SHA-256 over a text.
fn text_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(16);
    for b in digest.iter().take(8) {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// [`content_hash`] of a flat object of text (or null) fields given with
/// their keys in sorted order, without building the JSON value: ids of
/// notifications are made for every route of every plan.
pub fn fields_hash(sorted_fields: &[(&str, Option<&str>)]) -> String {
    debug_assert!(sorted_fields.windows(2).all(|w| w[0].0 < w[1].0), "keys in sorted order");
    let mut text = String::with_capacity(192);
    text.push('{');
    for (i, (key, value)) in sorted_fields.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        quoted(key, &mut text);
        text.push(':');
        match value {
            Some(v) => quoted(v, &mut text),
            None => text.push_str("null"),
        }
    }
    text.push('}');
    text_hash(&text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_object_hashes_as_its_canonical_json() {
        let fields = [("alert_level", Some("warning")), ("episode", None), ("owner", Some("a \"quoted\" owner")), ("provider", Some("teams"))];
        let value = serde_json::json!({"provider": "teams", "owner": "a \"quoted\" owner", "episode": null, "alert_level": "warning"});
        assert_eq!(fields_hash(&fields), content_hash(&value));
    }
}
