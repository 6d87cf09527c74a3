//! Runtime values. Cheap to clone (reference-counted), `Send + Sync`, and
//! convertible to JSON for outputs.

use crate::recurrence::Recurrence;
use crate::time::{format_duration, format_time};
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(f64),
    Text(Arc<str>),
    /// Microseconds since the Unix epoch, UTC.
    Time(i64),
    /// Microseconds.
    Duration(i64),
    Recurrence(Arc<Recurrence>),
    List(Arc<[Value]>),
    Map(Arc<MapValue>),
    Record(Arc<Record>),
}

/// Text equality, inline for the short texts that keys and names usually
/// are (a call to `memcmp` costs more than the comparison itself).
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| s.get(at..at + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()).map(u64::from_ne_bytes);
    let half = |s: &[u8], at: usize| s.get(at..at + 4).and_then(|w| <[u8; 4]>::try_from(w).ok()).map(u32::from_ne_bytes);
    // Two overlapping words cover 4..=7 and 8..=16 bytes.
    match n {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// A map with text keys: sorted entries for deterministic output, hashed for lookup.
#[derive(Debug, Default)]
pub struct MapValue {
    entries: Vec<(Arc<str>, Value)>,
    index: FxHashMap<Arc<str>, u32>,
}

impl MapValue {
    pub fn new(mut entries: Vec<(Arc<str>, Value)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        let index = entries.iter().enumerate().map(|(i, (k, _))| (k.clone(), i as u32)).collect();
        MapValue { entries, index }
    }
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i as usize].1)
    }
    pub fn entries(&self) -> &[(Arc<str>, Value)] {
        &self.entries
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A record: field values by the declared field order.
#[derive(Debug)]
pub struct Record {
    pub names: Arc<[Arc<str>]>,
    pub values: Box<[Value]>,
}

impl Value {
    pub fn text(s: &str) -> Value {
        Value::Text(Arc::from(s))
    }

    /// What tells two values apart without reading them: the kind, and the
    /// bits of a scalar or the address of a shared value. Equal identities
    /// mean equal values while both are alive (equal values may still have
    /// different identities).
    pub(crate) fn identity(&self) -> (u8, u64) {
        match self {
            Value::Null => (0, 0),
            Value::Bool(b) => (1, *b as u64),
            Value::Number(n) => (2, n.to_bits()),
            Value::Text(t) => Value::text_identity(t),
            Value::Time(t) => (4, *t as u64),
            Value::Duration(d) => (5, *d as u64),
            Value::Recurrence(r) => (6, Arc::as_ptr(r) as u64),
            Value::List(l) => (7, Arc::as_ptr(l) as *const Value as u64),
            Value::Map(m) => (8, Arc::as_ptr(m) as u64),
            Value::Record(r) => (9, Arc::as_ptr(r) as u64),
        }
    }

    /// [`Value::identity`] of `Value::Text(text)`, without making the value.
    #[inline]
    pub(crate) fn text_identity(text: &Arc<str>) -> (u8, u64) {
        (3, Arc::as_ptr(text) as *const u8 as u64)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::Text(_) => "text",
            Value::Time(_) => "time",
            Value::Duration(_) => "duration",
            Value::Recurrence(_) => "recurrence",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Record(_) => "record",
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Ordering between two values of the same comparable type.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Time(a), Value::Time(b)) | (Value::Duration(a), Value::Duration(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// JSON form: times as RFC 3339 UTC with `Z`, durations like `1h30m`,
    /// integral numbers without a fraction.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => number_json(*n),
            Value::Text(t) => J::String(t.to_string()),
            Value::Time(t) => J::String(format_time(*t)),
            Value::Duration(d) => J::String(format_duration(*d)),
            Value::Recurrence(r) => r.to_json(),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.entries.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect()),
            Value::Record(r) => J::Object(r.names.iter().zip(r.values.iter()).map(|(k, v)| (k.to_string(), v.to_json())).collect()),
        }
    }
}

pub(crate) fn number_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Number(a), Value::Number(b)) => a == b,
            (Value::Text(a), Value::Text(b)) => Arc::ptr_eq(a, b) || same_text(a, b),
            (Value::Time(a), Value::Time(b)) | (Value::Duration(a), Value::Duration(b)) => a == b,
            (Value::Recurrence(a), Value::Recurrence(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a.entries == b.entries,
            (Value::Record(a), Value::Record(b)) => a.values == b.values,
            _ => false,
        }
    }
}

/// The display form used by text interpolation.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => write!(f, "{}", *n as i64),
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(t) => f.write_str(t),
            Value::Time(t) => f.write_str(&format_time(*t)),
            Value::Duration(d) => f.write_str(&format_duration(*d)),
            Value::Recurrence(r) => write!(f, "{r}"),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
            Value::Map(_) | Value::Record(_) => write!(f, "{}", self.to_json()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_text;

    /// `same_text` agrees with `==` at every length its word comparisons
    /// treat differently, for a difference at each position.
    #[test]
    fn same_text_is_equality() {
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same_text(&a, &a.clone()), "length {n}");
            assert!(!same_text(&a, &format!("{a}x")), "length {n} against {}", n + 1);
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'#';
                let b = String::from_utf8(b).expect("ascii");
                assert!(!same_text(&a, &b), "length {n}, differing at {at}");
            }
        }
    }
}
