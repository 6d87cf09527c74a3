//! Conversion of JSON input documents to typed values at the edge. A value of
//! the wrong shape is an [`InputError`] naming its JSON path, e.g.
//! `$.maintenance_windows[2].start_at: expected an RFC 3339 timestamp, got "tomorrow"`.

use crate::recurrence::Recurrence;
use crate::time::{parse_duration, parse_time, MICROS_PER_SECOND};
use crate::types::{Schema, Ty};
use crate::value::{MapValue, Record, Value};
use serde_json::Value as Json;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct InputError {
    /// JSON path of the offending value, `$` for the document itself.
    pub path: String,
    pub message: String,
}

pub fn convert(json: &Json, ty: &Ty, schema: &Schema) -> Result<Value, InputError> {
    let mut path = String::from("$");
    convert_at(json, ty, schema, &mut path)
}

fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) if s.chars().count() > 40 => format!("{:?}...", s.chars().take(40).collect::<String>()),
        Json::String(s) => format!("{s:?}"),
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "an object".into(),
    }
}

fn convert_at(json: &Json, ty: &Ty, schema: &Schema, path: &mut String) -> Result<Value, InputError> {
    let err = |path: &String, message: String| InputError { path: path.clone(), message };
    let expected = |path: &String, what: &str| err(path, format!("expected {what}, got {}", describe(json)));
    match (ty, json) {
        (Ty::Any, j) => Ok(untyped(j)),
        (Ty::Optional(_) | Ty::Null, Json::Null) => Ok(Value::Null),
        (Ty::Optional(inner), j) => convert_at(j, inner, schema, path),
        (Ty::Null, _) => Err(expected(path, "null")),
        (_, Json::Null) => Err(err(path, format!("expected {}, got null", ty.display(schema)))),
        (Ty::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
        (Ty::Bool, _) => Err(expected(path, "true or false")),
        (Ty::Number, Json::Number(n)) => Ok(Value::Number(n.as_f64().unwrap_or(f64::NAN))),
        (Ty::Number, _) => Err(expected(path, "a number")),
        (Ty::Text, Json::String(s)) => Ok(Value::text(s)),
        (Ty::Text, _) => Err(expected(path, "text")),
        (Ty::Time, Json::String(s)) => parse_time(s).map(Value::Time).map_err(|m| err(path, m)),
        (Ty::Time, _) => Err(expected(path, "an RFC 3339 timestamp")),
        (Ty::Duration, Json::String(s)) => parse_duration(s).map(Value::Duration).map_err(|m| err(path, m)),
        (Ty::Duration, Json::Number(n)) => match n.as_f64() {
            Some(secs) if secs.is_finite() && secs.abs() < 9.0e12 => Ok(Value::Duration((secs * MICROS_PER_SECOND as f64) as i64)),
            _ => Err(expected(path, "a duration in seconds")),
        },
        (Ty::Duration, _) => Err(expected(path, "a duration such as \"90d\"")),
        (Ty::Recurrence, j) => match Recurrence::from_json(j) {
            Ok(r) => Ok(Value::Recurrence(Arc::new(r))),
            Err(e) => {
                if !e.field.is_empty() {
                    push_key(path, e.field);
                }
                if let Some(i) = e.item {
                    path.push_str(&format!("[{i}]"));
                }
                Err(err(path, e.message))
            }
        },
        (Ty::List(elem), Json::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(convert_at(item, elem, schema, path)?);
                path.truncate(len);
            }
            Ok(Value::List(Arc::from(out)))
        }
        (Ty::List(_), _) => Err(expected(path, "a list")),
        (Ty::Map(elem), Json::Object(obj)) => {
            let mut out = Vec::with_capacity(obj.len());
            for (k, v) in obj {
                let len = path.len();
                push_key(path, k);
                out.push((Arc::from(k.as_str()), convert_at(v, elem, schema, path)?));
                path.truncate(len);
            }
            Ok(Value::Map(Arc::new(MapValue::new(out))))
        }
        (Ty::Map(_), _) => Err(expected(path, "an object")),
        (Ty::Record(id), Json::Object(obj)) => {
            let rec = schema.record(*id);
            let mut values = Vec::with_capacity(rec.fields.len());
            for f in &rec.fields {
                let len = path.len();
                push_key(path, &f.name);
                let v = match obj.get(&f.name) {
                    Some(Json::Null) | None if f.default.is_some() => f.default.clone().unwrap_or_default(),
                    None if f.ty.is_optional() => Value::Null,
                    None => return Err(err(path, format!("missing required field `{}`", f.name))),
                    Some(j) => convert_at(j, &f.ty, schema, path)?,
                };
                path.truncate(len);
                values.push(v);
            }
            Ok(Value::Record(Arc::new(Record { names: rec.names.clone(), values: values.into_boxed_slice() })))
        }
        (Ty::Record(id), _) => Err(expected(path, &format!("an object ({})", schema.record(*id).name))),
    }
}

fn push_key(path: &mut String, key: &str) {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str(&format!("[{key:?}]"));
    }
}

/// JSON without a declared type (only reachable after a type error).
fn untyped(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Value::text(s),
        Json::Array(items) => Value::List(items.iter().map(untyped).collect()),
        Json::Object(obj) => Value::Map(Arc::new(MapValue::new(obj.iter().map(|(k, v)| (Arc::from(k.as_str()), untyped(v))).collect()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FieldDef, RecordDef};
    use serde_json::json;

    fn window_schema() -> (Schema, Ty) {
        let fields = vec![
            FieldDef { name: "start_at".into(), ty: Ty::Time, default: None },
            FieldDef { name: "owners".into(), ty: Ty::List(Box::new(Ty::Text)), default: Some(Value::List(Arc::from(vec![]))) },
        ];
        let rec = RecordDef {
            name: "Window".into(),
            names: fields.iter().map(|f| Arc::from(f.name.as_str())).collect(),
            by_name: [("start_at".to_string(), 0), ("owners".to_string(), 1)].into_iter().collect(),
            fields,
        };
        (Schema { records: vec![rec] }, Ty::List(Box::new(Ty::Record(0))))
    }

    #[test]
    fn errors_name_the_json_path() {
        let (schema, ty) = window_schema();
        let doc = json!([{"start_at": "2026-05-21T18:00:00Z"}, {"start_at": "tomorrow"}]);
        let e = convert(&doc, &ty, &schema).unwrap_err();
        assert_eq!(e.to_string(), "$[1].start_at: expected an RFC 3339 timestamp, got \"tomorrow\"");
        let e = convert(&json!([{}]), &ty, &schema).unwrap_err();
        assert_eq!(e.to_string(), "$[0].start_at: missing required field `start_at`");
        let e = convert(&json!([{"start_at": "2026-05-21T18:00:00Z", "owners": [1]}]), &ty, &schema).unwrap_err();
        assert_eq!(e.to_string(), "$[0].owners[0]: expected text, got 1");
    }

    #[test]
    fn defaults_fill_absent_fields() {
        let (schema, ty) = window_schema();
        let v = convert(&json!([{"start_at": "2026-05-21T20:00:00+02:00"}]), &ty, &schema).unwrap();
        assert_eq!(v.to_json(), json!([{"start_at": "2026-05-21T18:00:00Z", "owners": []}]));
    }
}
