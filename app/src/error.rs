//! The application's one error type. Each front end maps it once: the CLI to
//! an exit code and an `error: ...` line, the API to a status and a JSON
//! error body. Field names are neutral (`limit`); each front end renders them
//! its own way (`--limit` on the CLI, `query.limit` or `$.limit` over HTTP).

use crate::store::StoreError;
use std::borrow::Cow;

/// A request field, named neutrally (`limit`, `routing_policy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// snake_case, as in JSON bodies and query strings.
    pub name: Cow<'static, str>,
    /// A positional argument on the command line (`SCHEDULE_ID`) rather than an option.
    pub positional: bool,
}

impl Field {
    /// An option-like field (`--limit`, `query.limit`, `$.limit`).
    pub const fn named(name: &'static str) -> Field {
        Field { name: Cow::Borrowed(name), positional: false }
    }

    /// A field the CLI takes as a positional argument (`SCHEDULE_ID`).
    pub const fn positional(name: &'static str) -> Field {
        Field { name: Cow::Borrowed(name), positional: true }
    }
}

/// One reason a document is not public-safe. `reason` is the full text
/// (`$.notes: looks like an IP address`); `path` is the JSON path alone.
/// Neither ever holds the refused value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub path: String,
    pub reason: String,
}

impl Refusal {
    /// The refusal placed in its document: a file's name before it, or, for a
    /// document inside a request (`$.routing_policy`), one JSON path from the
    /// request's root.
    pub fn located(&self, label: &str) -> Refusal {
        match (label.strip_prefix('$'), self.reason.strip_prefix('$'), self.path.strip_prefix('$')) {
            (Some(_), Some(rest), Some(path)) => Refusal { path: format!("{label}{path}"), reason: format!("{label}{rest}") },
            _ => Refusal { path: self.path.clone(), reason: format!("{label}: {}", self.reason) },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The caller's input is wrong: a request field, or a value inside a
    /// document (`path`, a JSON path). `message` does not repeat the field.
    #[error("{}", neutral(.field.as_ref(), .message))]
    Input { field: Option<Field>, path: Option<String>, message: String },
    /// A document or value that is not public-safe; nothing was used or stored.
    #[error("{head}:\n  {}", refusals.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>().join("\n  "))]
    NotPublicSafe { head: String, refusals: Vec<Refusal> },
    /// A rule pack that is missing, does not check, or lacks what the operation needs.
    #[error("{0}")]
    Pack(String),
    /// A pack failed while deciding (rendered with its position in the pack).
    #[error("{0}")]
    Evaluation(String),
    /// The store cannot be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Connector plugins or their configuration stop the operation.
    #[error("{0}")]
    Plugin(String),
}

impl AppError {
    /// An error in one request field.
    pub fn field(field: Field, message: impl Into<String>) -> AppError {
        AppError::Input { field: Some(field), path: None, message: message.into() }
    }

    /// An error in the input that names no single field.
    pub fn input(message: impl Into<String>) -> AppError {
        AppError::Input { field: None, path: None, message: message.into() }
    }

    /// An error at a JSON path inside a document; the message names the path too.
    pub fn at_path(path: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Input { field: None, path: Some(path.into()), message: message.into() }
    }

    /// The message with its fields rendered by `render` (the front end's
    /// way): the error's own field before the message, and each `{@name}`
    /// in the message (a message that names two fields).
    pub fn render(&self, render: impl Fn(&Field) -> String) -> String {
        match self {
            AppError::Input { field: Some(field), message, .. } => format!("{}: {}", render(field), fill(message, &render)),
            AppError::Input { field: None, message, .. } => fill(message, &render),
            other => other.to_string(),
        }
    }
}

/// The message with neutral field names (`limit: expected ...`).
fn neutral(field: Option<&Field>, message: &str) -> String {
    let name = |f: &Field| f.name.to_string();
    match field {
        Some(f) => format!("{}: {}", f.name, fill(message, &name)),
        None => fill(message, &name),
    }
}

/// Replaces each `{@name}` in `message` with the rendered field `name`.
fn fill(message: &str, render: &impl Fn(&Field) -> String) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("{@") {
        let Some(len) = rest[start..].find('}') else { break };
        out.push_str(&rest[..start]);
        let name = &rest[start + 2..start + len];
        out.push_str(&render(&Field { name: Cow::Owned(name.to_string()), positional: false }));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// A pack file's name and an error, for [`AppError::Pack`].
pub(crate) fn pack_error(file: &str, error: impl std::fmt::Display) -> AppError {
    AppError::Pack(format!("{file}: {error}"))
}

/// A JSON value as an error quotes it: at most 60 characters, then `…`, so
/// a huge or secret-looking value is never echoed whole.
pub(crate) fn shown(value: &serde_json::Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_neutral_until_a_front_end_renders_them() {
        let e = AppError::field(Field::named("limit"), "expected 1 to 1000, got 5000");
        assert_eq!(e.to_string(), "limit: expected 1 to 1000, got 5000");
        assert_eq!(e.render(|f| format!("--{}", f.name)), "--limit: expected 1 to 1000, got 5000");
        let two = AppError::input("{@to} (b) must be after {@from} (a)");
        assert_eq!(two.to_string(), "to (b) must be after from (a)");
        assert_eq!(two.render(|f| format!("query.{}", f.name)), "query.to (b) must be after query.from (a)");
    }

    #[test]
    fn refusals_are_placed_in_their_document() {
        let r = Refusal { path: "$.windows[0].reason".into(), reason: "$.windows[0].reason: looks like a URL".into() };
        let inside = r.located("$.routing_policy");
        assert_eq!(inside.path, "$.routing_policy.windows[0].reason");
        assert_eq!(inside.reason, "$.routing_policy.windows[0].reason: looks like a URL");
        let file = r.located("policy.json");
        assert_eq!((file.path.as_str(), file.reason.as_str()), ("$.windows[0].reason", "policy.json: $.windows[0].reason: looks like a URL"));
    }
}
