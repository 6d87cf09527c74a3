//! The registry of built-in functions: one entry per builtin with its name,
//! its signature (how the checker types a call, and the text diagnostics
//! show) and its implementation (what the evaluator runs). The checker and
//! the evaluator read only this table, so adding a builtin touches this file:
//! a variant of [`Builtin`] and its entry at the same position in
//! [`BUILTINS`] (a test holds the two in step); then document it in
//! `docs/language.md`.
//!
//! The IR names a builtin by its [`Builtin`] variant; the evaluator finds the
//! entry by indexing [`BUILTINS`] with it (no lookup by name at run time).
//! The public-safety detectors behind the `looks_like_*` builtins live in
//! [`safety`], which knows nothing of the engine.

mod safety;

use crate::error::{fail, Result};
use crate::time::{format_duration, MICROS_PER_SECOND};
use crate::types::Ty;
use crate::value::Value;
use cavra_grammar::ast::Span;
use std::cmp::Ordering;
use std::sync::Arc;

/// A builtin as the IR names it; the discriminant is its position in [`BUILTINS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Len,
    Lower,
    Upper,
    Trim,
    StartsWith,
    EndsWith,
    Contains,
    Join,
    Sort,
    Keys,
    Days,
    Hours,
    Minutes,
    Seconds,
    Floor,
    Ceil,
    Round,
    Abs,
    Min,
    Max,
    ToText,
    DurationDays,
    LooksLikeUrl,
    LooksLikeHostname,
    LooksLikeIp,
    LooksLikeEmail,
    LooksLikeSecret,
    LooksLikeSecretKey,
    /// `active(window, t)`, lowered by the checker to
    /// `(start_at, end_at, recurrence, t)`; any of the first three may be null.
    Active,
    /// `active_until(w, t)`: the end of the open period of `w` that contains `t`, else null.
    ActiveUntil,
}

/// One builtin: everything the checker and the evaluator know of it.
pub struct Def {
    /// What a pack calls it.
    pub name: &'static str,
    /// How diagnostics show its signature (a group of alike builtins shares one text).
    pub signature: &'static str,
    pub arity: usize,
    pub typing: Typing,
    pub run: Run,
}

/// How the checker types a call.
pub enum Typing {
    /// The result type for the arguments' types (each without its optional
    /// mark, none `Any`); `None` is a type mismatch.
    Args(fn(&[Ty]) -> Option<Ty>),
    /// `active`/`active_until` stay special: the checker lowers the window
    /// argument to its `start_at`, `end_at` and `recurrence` fields
    /// (`check/calls.rs`) so that the compiler's index and the decision
    /// tables can see which fields of a scanned element bound the window.
    Window,
}

/// What the evaluator runs.
pub enum Run {
    /// On the values of the (at most two) arguments, evaluated left to right;
    /// a null argument is an error naming the builtin unless `takes_null`.
    /// The span is the call's, for errors.
    Values { takes_null: bool, run: fn(Value, Value, Span) -> Result<Value> },
    /// `active` (`until: false`) and `active_until` on the lowered window:
    /// the evaluator reads the window's fields in place (`eval.rs`, `active`).
    Window { until: bool },
}

impl Builtin {
    /// The registry entry (an index, not a search: the evaluator calls this per call).
    #[inline]
    pub fn def(self) -> &'static Def {
        &BUILTINS[self as usize].1
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    pub fn lookup(name: &str) -> Option<Builtin> {
        BUILTINS.iter().find(|(_, def)| def.name == name).map(|(b, _)| *b)
    }

    /// Every builtin's name, in registry order (for "did you mean").
    pub fn names() -> impl Iterator<Item = &'static str> {
        BUILTINS.iter().map(|(_, def)| def.name)
    }
}

/// A builtin given values it does not apply to (only reachable where the
/// checker saw `any`).
fn mismatch(b: Builtin, x: Value, span: Span) -> Result<Value> {
    fail(span, format!("`{}` cannot be applied to {}", b.name(), x.type_name()))
}

/// A builtin that takes values and never null.
const fn values(run: fn(Value, Value, Span) -> Result<Value>) -> Run {
    Run::Values { takes_null: false, run }
}

const PER_DAY: f64 = 86_400.0 * MICROS_PER_SECOND as f64;

fn min_max(b: Builtin, x: Value, y: Value, span: Span) -> Result<Value> {
    match x.compare(&y) {
        Some(ord) => {
            let take_x = (b == Builtin::Min) == (ord != Ordering::Greater);
            Ok(if take_x { x } else { y })
        }
        None => fail(span, format!("cannot compare {} with {}", x.type_name(), y.type_name())),
    }
}

fn min_max_typing(args: &[Ty]) -> Option<Ty> {
    match args {
        [a, b] if a == b && matches!(a, Ty::Number | Ty::Time | Ty::Duration) => Some(a.clone()),
        _ => None,
    }
}

fn text_to_bool(args: &[Ty]) -> Option<Ty> {
    matches!(args, [Ty::Text]).then_some(Ty::Bool)
}

fn texts_to_bool(args: &[Ty]) -> Option<Ty> {
    matches!(args, [Ty::Text, Ty::Text]).then_some(Ty::Bool)
}

fn text_to_text(args: &[Ty]) -> Option<Ty> {
    matches!(args, [Ty::Text]).then_some(Ty::Text)
}

fn duration_to_number(args: &[Ty]) -> Option<Ty> {
    matches!(args, [Ty::Duration]).then_some(Ty::Number)
}

fn number_to_number(args: &[Ty]) -> Option<Ty> {
    matches!(args, [Ty::Number]).then_some(Ty::Number)
}

/// A public-safety detector as a builtin: text -> bool.
fn detector(b: Builtin, detects: fn(&str) -> bool, x: Value, span: Span) -> Result<Value> {
    match x {
        Value::Text(t) => Ok(Value::Bool(detects(&t))),
        x => mismatch(b, x, span),
    }
}

const CASE: &str = "lower/upper/trim(text) -> text";
const AFFIX: &str = "starts_with/ends_with/contains(text, text) -> bool";
const UNITS: &str = "days/hours/minutes/seconds(duration) -> number";
const ROUNDING: &str = "floor/ceil/round/abs(number) -> number";
const MIN_MAX: &str = "min/max(a, b) for numbers, times or durations";
const DETECTORS: &str = "looks_like_url/looks_like_hostname/looks_like_ip/looks_like_email/looks_like_secret(text) -> bool";

/// Every builtin, in the order of [`Builtin`]'s variants (a test holds them together).
pub static BUILTINS: &[(Builtin, Def)] = &[
    (
        Builtin::Len,
        Def {
            name: "len",
            signature: "len(text | list | map) -> number",
            arity: 1,
            typing: Typing::Args(|args| matches!(args, [Ty::Text | Ty::List(_) | Ty::Map(_)]).then_some(Ty::Number)),
            run: values(|a, _, span| match a {
                Value::Text(t) => Ok(Value::Number(t.chars().count() as f64)),
                Value::List(l) => Ok(Value::Number(l.len() as f64)),
                Value::Map(m) => Ok(Value::Number(m.len() as f64)),
                x => mismatch(Builtin::Len, x, span),
            }),
        },
    ),
    (
        Builtin::Lower,
        Def {
            name: "lower",
            signature: CASE,
            arity: 1,
            typing: Typing::Args(text_to_text),
            run: values(|a, _, span| match a {
                Value::Text(t) => Ok(Value::text(&t.to_lowercase())),
                x => mismatch(Builtin::Lower, x, span),
            }),
        },
    ),
    (
        Builtin::Upper,
        Def {
            name: "upper",
            signature: CASE,
            arity: 1,
            typing: Typing::Args(text_to_text),
            run: values(|a, _, span| match a {
                Value::Text(t) => Ok(Value::text(&t.to_uppercase())),
                x => mismatch(Builtin::Upper, x, span),
            }),
        },
    ),
    (
        Builtin::Trim,
        Def {
            name: "trim",
            signature: CASE,
            arity: 1,
            typing: Typing::Args(text_to_text),
            run: values(|a, _, span| match a {
                Value::Text(t) => Ok(Value::text(t.trim())),
                x => mismatch(Builtin::Trim, x, span),
            }),
        },
    ),
    (
        Builtin::StartsWith,
        Def {
            name: "starts_with",
            signature: AFFIX,
            arity: 2,
            typing: Typing::Args(texts_to_bool),
            run: values(|a, b, span| match (a, b) {
                (Value::Text(t), Value::Text(p)) => Ok(Value::Bool(t.starts_with(&*p))),
                (x, _) => mismatch(Builtin::StartsWith, x, span),
            }),
        },
    ),
    (
        Builtin::EndsWith,
        Def {
            name: "ends_with",
            signature: AFFIX,
            arity: 2,
            typing: Typing::Args(texts_to_bool),
            run: values(|a, b, span| match (a, b) {
                (Value::Text(t), Value::Text(p)) => Ok(Value::Bool(t.ends_with(&*p))),
                (x, _) => mismatch(Builtin::EndsWith, x, span),
            }),
        },
    ),
    (
        Builtin::Contains,
        Def {
            name: "contains",
            signature: AFFIX,
            arity: 2,
            typing: Typing::Args(texts_to_bool),
            run: values(|a, b, span| match (a, b) {
                (Value::Text(t), Value::Text(p)) => Ok(Value::Bool(t.contains(&*p))),
                (x, _) => mismatch(Builtin::Contains, x, span),
            }),
        },
    ),
    (
        Builtin::Join,
        Def {
            name: "join",
            signature: "join(list<text>, text) -> text",
            arity: 2,
            typing: Typing::Args(|args| match args {
                [Ty::List(e), Ty::Text] if matches!(**e, Ty::Text | Ty::Any) => Some(Ty::Text),
                _ => None,
            }),
            run: values(|a, b, span| match (a, b) {
                (Value::List(items), Value::Text(sep)) => {
                    let parts: Vec<String> = items.iter().map(|v| v.to_string()).collect();
                    Ok(Value::text(&parts.join(&sep)))
                }
                (x, _) => mismatch(Builtin::Join, x, span),
            }),
        },
    ),
    (
        Builtin::Sort,
        Def {
            name: "sort",
            signature: "sort(list<T>) -> list<T>",
            arity: 1,
            typing: Typing::Args(|args| match args {
                [Ty::List(e)] if matches!(e.base(), Ty::Text | Ty::Number | Ty::Time | Ty::Duration | Ty::Any) => Some(Ty::List(e.clone())),
                _ => None,
            }),
            run: values(|a, _, span| match a {
                Value::List(items) => {
                    let mut sorted: Vec<Value> = items.to_vec();
                    let mut bad = None;
                    sorted.sort_by(|x, y| {
                        x.compare(y).unwrap_or_else(|| {
                            bad = Some(format!("cannot sort {} with {}", x.type_name(), y.type_name()));
                            Ordering::Equal
                        })
                    });
                    if let Some(msg) = bad {
                        return fail(span, msg);
                    }
                    Ok(Value::List(Arc::from(sorted)))
                }
                x => mismatch(Builtin::Sort, x, span),
            }),
        },
    ),
    (
        Builtin::Keys,
        Def {
            name: "keys",
            signature: "keys(map<T>) -> list<text>",
            arity: 1,
            typing: Typing::Args(|args| matches!(args, [Ty::Map(_)]).then(|| Ty::List(Box::new(Ty::Text)))),
            run: values(|a, _, span| match a {
                Value::Map(m) => Ok(Value::List(m.entries().iter().map(|(k, _)| Value::Text(k.clone())).collect())),
                x => mismatch(Builtin::Keys, x, span),
            }),
        },
    ),
    (
        Builtin::Days,
        Def {
            name: "days",
            signature: UNITS,
            arity: 1,
            typing: Typing::Args(duration_to_number),
            run: values(|a, _, span| match a {
                Value::Duration(d) => Ok(Value::Number(d as f64 / PER_DAY)),
                x => mismatch(Builtin::Days, x, span),
            }),
        },
    ),
    (
        Builtin::Hours,
        Def {
            name: "hours",
            signature: UNITS,
            arity: 1,
            typing: Typing::Args(duration_to_number),
            run: values(|a, _, span| match a {
                Value::Duration(d) => Ok(Value::Number(d as f64 / (3_600.0 * MICROS_PER_SECOND as f64))),
                x => mismatch(Builtin::Hours, x, span),
            }),
        },
    ),
    (
        Builtin::Minutes,
        Def {
            name: "minutes",
            signature: UNITS,
            arity: 1,
            typing: Typing::Args(duration_to_number),
            run: values(|a, _, span| match a {
                Value::Duration(d) => Ok(Value::Number(d as f64 / (60.0 * MICROS_PER_SECOND as f64))),
                x => mismatch(Builtin::Minutes, x, span),
            }),
        },
    ),
    (
        Builtin::Seconds,
        Def {
            name: "seconds",
            signature: UNITS,
            arity: 1,
            typing: Typing::Args(duration_to_number),
            run: values(|a, _, span| match a {
                Value::Duration(d) => Ok(Value::Number(d as f64 / MICROS_PER_SECOND as f64)),
                x => mismatch(Builtin::Seconds, x, span),
            }),
        },
    ),
    (
        Builtin::Floor,
        Def {
            name: "floor",
            signature: ROUNDING,
            arity: 1,
            typing: Typing::Args(number_to_number),
            run: values(|a, _, span| match a {
                Value::Number(n) => Ok(Value::Number(n.floor())),
                x => mismatch(Builtin::Floor, x, span),
            }),
        },
    ),
    (
        Builtin::Ceil,
        Def {
            name: "ceil",
            signature: ROUNDING,
            arity: 1,
            typing: Typing::Args(number_to_number),
            run: values(|a, _, span| match a {
                Value::Number(n) => Ok(Value::Number(n.ceil())),
                x => mismatch(Builtin::Ceil, x, span),
            }),
        },
    ),
    (
        Builtin::Round,
        Def {
            name: "round",
            signature: ROUNDING,
            arity: 1,
            typing: Typing::Args(number_to_number),
            run: values(|a, _, span| match a {
                Value::Number(n) => Ok(Value::Number(n.round())),
                x => mismatch(Builtin::Round, x, span),
            }),
        },
    ),
    (
        Builtin::Abs,
        Def {
            name: "abs",
            signature: ROUNDING,
            arity: 1,
            typing: Typing::Args(number_to_number),
            run: values(|a, _, span| match a {
                Value::Number(n) => Ok(Value::Number(n.abs())),
                x => mismatch(Builtin::Abs, x, span),
            }),
        },
    ),
    (
        Builtin::Min,
        Def { name: "min", signature: MIN_MAX, arity: 2, typing: Typing::Args(min_max_typing), run: values(|a, b, span| min_max(Builtin::Min, a, b, span)) },
    ),
    (
        Builtin::Max,
        Def { name: "max", signature: MIN_MAX, arity: 2, typing: Typing::Args(min_max_typing), run: values(|a, b, span| min_max(Builtin::Max, a, b, span)) },
    ),
    (
        Builtin::ToText,
        Def {
            name: "text",
            signature: "text(any) -> text",
            arity: 1,
            typing: Typing::Args(|args| matches!(args, [_]).then_some(Ty::Text)),
            // The one builtin that takes null: `text(null)` is "null".
            run: Run::Values {
                takes_null: true,
                run: |a, _, _| {
                    Ok(match a {
                        Value::Duration(d) => Value::text(&format_duration(d)),
                        Value::Text(t) => Value::Text(t),
                        v => Value::text(&v.to_string()),
                    })
                },
            },
        },
    ),
    (
        Builtin::DurationDays,
        Def {
            name: "duration_days",
            signature: "duration_days(number) -> duration",
            arity: 1,
            typing: Typing::Args(|args| matches!(args, [Ty::Number]).then_some(Ty::Duration)),
            run: values(|a, _, span| match a {
                Value::Number(n) => {
                    let micros = n * PER_DAY;
                    if !micros.is_finite() || micros.abs() > i64::MAX as f64 {
                        return fail(span, "the duration is out of range");
                    }
                    Ok(Value::Duration(micros as i64))
                }
                x => mismatch(Builtin::DurationDays, x, span),
            }),
        },
    ),
    (
        Builtin::LooksLikeUrl,
        Def {
            name: "looks_like_url",
            signature: DETECTORS,
            arity: 1,
            typing: Typing::Args(text_to_bool),
            run: values(|a, _, span| detector(Builtin::LooksLikeUrl, safety::looks_like_url, a, span)),
        },
    ),
    (
        Builtin::LooksLikeHostname,
        Def {
            name: "looks_like_hostname",
            signature: DETECTORS,
            arity: 1,
            typing: Typing::Args(text_to_bool),
            run: values(|a, _, span| detector(Builtin::LooksLikeHostname, safety::looks_like_hostname, a, span)),
        },
    ),
    (
        Builtin::LooksLikeIp,
        Def {
            name: "looks_like_ip",
            signature: DETECTORS,
            arity: 1,
            typing: Typing::Args(text_to_bool),
            run: values(|a, _, span| detector(Builtin::LooksLikeIp, safety::looks_like_ip, a, span)),
        },
    ),
    (
        Builtin::LooksLikeEmail,
        Def {
            name: "looks_like_email",
            signature: DETECTORS,
            arity: 1,
            typing: Typing::Args(text_to_bool),
            run: values(|a, _, span| detector(Builtin::LooksLikeEmail, safety::looks_like_email, a, span)),
        },
    ),
    (
        Builtin::LooksLikeSecret,
        Def {
            name: "looks_like_secret",
            signature: DETECTORS,
            arity: 1,
            typing: Typing::Args(text_to_bool),
            run: values(|a, _, span| detector(Builtin::LooksLikeSecret, safety::looks_like_secret, a, span)),
        },
    ),
    (
        Builtin::LooksLikeSecretKey,
        Def {
            name: "looks_like_secret_key",
            signature: "looks_like_secret_key(text) -> bool",
            arity: 1,
            typing: Typing::Args(text_to_bool),
            run: values(|a, _, span| detector(Builtin::LooksLikeSecretKey, safety::looks_like_secret_key, a, span)),
        },
    ),
    (
        Builtin::Active,
        Def {
            name: "active",
            signature: "active(window, time) -> bool, where window is a recurrence or a record with start_at/end_at (time?) and/or recurrence (recurrence?)",
            arity: 2,
            typing: Typing::Window,
            run: Run::Window { until: false },
        },
    ),
    (
        Builtin::ActiveUntil,
        Def {
            name: "active_until",
            signature: "active_until(window, time) -> time?, the end of the window's open period that contains the time (null when it is not open)",
            arity: 2,
            typing: Typing::Window,
            run: Run::Window { until: true },
        },
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_stands_at_its_variants_position_under_its_own_name() {
        for (i, (b, def)) in BUILTINS.iter().enumerate() {
            assert_eq!(*b as usize, i, "{} is out of place", def.name);
            assert_eq!(Builtin::lookup(def.name), Some(*b));
        }
    }
}
