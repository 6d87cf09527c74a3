//! The HTTP edge: JSON error bodies with their status codes, request bodies
//! read under a size limit and parsed as JSON objects with typed fields, and
//! query strings. Every error names what was wrong and, where it can, the
//! JSON path (`$.field`) or query parameter (`query.name`).

use bytes::Bytes;
use cavra_app::store::StoreError;
use cavra_app::{AppError, Field};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value as Json};

pub(crate) type Reply = Response<Full<Bytes>>;

/// An error answered as `{"error": {"code", "message", "path"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub path: Option<String>,
    /// For 405: the methods the route allows.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), path: None, allow: None }
    }

    pub(crate) fn at(mut self, path: impl Into<String>) -> ApiError {
        self.path = Some(path.into());
        self
    }

    /// Valid JSON that fails validation (422), at a JSON path.
    pub(crate) fn invalid(path: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message).at(path)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub(crate) fn reply(&self) -> Reply {
        let body = json!({"error": {"code": self.code, "message": self.message, "path": self.path}});
        let mut reply = json_reply(self.status, &body);
        if let Some(allow) = self.allow {
            reply.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            reply.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"cavra\""));
        }
        reply
    }
}

/// Where a request's fields came from, so an error names them as the caller wrote them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// `query.limit`
    Query,
    /// `$.limit`
    Body,
}

impl ApiError {
    /// The one place where application errors become statuses: the
    /// caller's mistakes are 422, a store that cannot be opened, read or
    /// written is 503 `store_unavailable`, one with a newer schema 503
    /// `store_schema_newer`.
    pub(crate) fn from_app(e: AppError, source: Source) -> ApiError {
        let field = |f: &Field| match (f.positional, source) {
            (true, _) => format!("path.{}", f.name),
            (false, Source::Query) => format!("query.{}", f.name),
            (false, Source::Body) => format!("$.{}", f.name),
        };
        let message = e.render(field);
        let (status, code, path) = match &e {
            AppError::Input { field: Some(f), .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", Some(field(f))),
            AppError::Input { field: None, path, .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", path.clone()),
            AppError::NotPublicSafe { refusals, .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "not_public_safe", refusals.first().map(|r| r.path.clone()).filter(|p| p.starts_with('$')))
            }
            AppError::Pack(_) => (StatusCode::UNPROCESSABLE_ENTITY, "pack_error", None),
            AppError::Evaluation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "evaluation_failed", None),
            AppError::Plugin(_) => (StatusCode::UNPROCESSABLE_ENTITY, "plugin_error", None),
            AppError::Store(e) => (StatusCode::SERVICE_UNAVAILABLE, store_problem(e).1, None),
        };
        ApiError { path, ..ApiError::new(status, code, message) }
    }
}

/// What is wrong with the store, as `/readyz` says it and as an error code:
/// a schema newer than this build knows (the store is left untouched), or
/// a store that cannot be opened, read or written.
pub(crate) fn store_problem(e: &StoreError) -> (&'static str, &'static str) {
    match e {
        StoreError::TooNew { .. } => ("schema_newer", "store_schema_newer"),
        _ => ("unavailable", "store_unavailable"),
    }
}

/// Application errors of a POST: fields are body fields (`$.at`).
impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        ApiError::from_app(e, Source::Body)
    }
}

/// Application errors of a GET: fields are query parameters (`query.limit`).
pub(crate) fn in_query(e: AppError) -> ApiError {
    ApiError::from_app(e, Source::Query)
}

pub(crate) fn json_reply(status: StatusCode, body: &impl serde::Serialize) -> Reply {
    let mut text = serde_json::to_vec_pretty(body).unwrap_or_default();
    text.push(b'\n');
    typed_reply(status, "application/json", text)
}

pub(crate) fn typed_reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut reply = Response::new(Full::new(body.into()));
    *reply.status_mut() = status;
    reply.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// Accepts a body declared as JSON (`application/json`, `*/*+json`) or
/// undeclared, and `application/x-www-form-urlencoded` because that is what
/// `curl -d '{...}'` declares; the body must still parse as JSON. Anything
/// else (text, XML, multipart) is 415.
pub(crate) fn check_content_type(header: Option<&HeaderValue>) -> Result<(), ApiError> {
    let Some(value) = header else { return Ok(()) };
    let media = value.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") || media == "application/x-www-form-urlencoded" {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("the body must be JSON: send Content-Type: application/json, not {media:?}"),
    ))
}

/// The body as a JSON object; an empty body is `{}`.
pub(crate) fn parse_object(body: &[u8]) -> Result<Fields, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Fields::new(Map::new()));
    }
    let value: Json = serde_json::from_slice(body).map_err(|e| {
        let what = e.to_string();
        let what = what.rfind(" at line ").map(|i| &what[..i]).unwrap_or(&what).to_string();
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("invalid JSON at line {} column {}: {what}", e.line(), e.column()))
    })?;
    match value {
        Json::Object(map) => Ok(Fields::new(map)),
        other => Err(ApiError::invalid("$", format!("expected a JSON object, got {}", kind(&other)))),
    }
}

fn kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The fields of a request object, taken one by one with their types
/// checked; [`Fields::finish`] refuses any field left over, so a misspelt
/// field is an error rather than silently ignored.
pub(crate) struct Fields {
    map: Map<String, Json>,
}

impl Fields {
    pub(crate) fn new(map: Map<String, Json>) -> Fields {
        Fields { map }
    }

    fn take(&mut self, key: &str) -> Option<Json> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    pub(crate) fn text(&mut self, key: &str) -> Result<Option<String>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(ApiError::invalid(format!("$.{key}"), format!("expected a string, got {}", kind(&other)))),
        }
    }

    pub(crate) fn required_text(&mut self, key: &str) -> Result<String, ApiError> {
        self.text(key)?.filter(|s| !s.trim().is_empty()).ok_or_else(|| ApiError::invalid(format!("$.{key}"), format!("`{key}` is required")))
    }

    pub(crate) fn flag(&mut self, key: &str) -> Result<bool, ApiError> {
        match self.take(key) {
            None => Ok(false),
            Some(Json::Bool(b)) => Ok(b),
            Some(other) => Err(ApiError::invalid(format!("$.{key}"), format!("expected true or false, got {}", kind(&other)))),
        }
    }

    pub(crate) fn number(&mut self, key: &str) -> Result<Option<f64>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(ApiError::invalid(format!("$.{key}"), format!("expected a number, got {}", kind(&other)))),
        }
    }

    pub(crate) fn object(&mut self, key: &str) -> Result<Option<Json>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(value @ Json::Object(_)) => Ok(Some(value)),
            Some(other) => Err(ApiError::invalid(format!("$.{key}"), format!("expected an object, got {}", kind(&other)))),
        }
    }

    /// `provider`: `"all"`, `"slack,teams"` or `["slack", "teams"]`, as the CLI's `--provider`.
    pub(crate) fn list(&mut self, key: &str) -> Result<Option<Vec<Json>>, ApiError> {
        match self.take(key) {
            None => Ok(None),
            Some(Json::Array(items)) => Ok(Some(items)),
            Some(other) => Err(ApiError::invalid(format!("$.{key}"), format!("expected a list, got {}", kind(&other)))),
        }
    }

    pub(crate) fn providers(&mut self) -> Result<String, ApiError> {
        match self.take("provider") {
            None => Ok("all".into()),
            Some(Json::String(s)) => Ok(s),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_str().map(String::from).ok_or_else(|| ApiError::invalid(format!("$.provider[{i}]"), "expected a provider name")))
                .collect::<Result<Vec<_>, _>>()
                .map(|names| names.join(",")),
            Some(other) => Err(ApiError::invalid("$.provider", format!("expected \"all\", a name or a list of names, got {}", kind(&other)))),
        }
    }

    /// Refuses the fields nobody took.
    pub(crate) fn finish(self, expected: &[&str]) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::invalid(
                format!("$.{key}"),
                format!("unknown field `{key}`; expected {}", expected.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")),
            )),
        }
    }
}

/// A query string's parameters, percent-decoded; repeated names keep the last.
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut pairs = Vec::new();
        for part in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let decode = |s: &str| {
                percent_decode(s).ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", format!("query parameter {name:?}: bad percent-encoding")))
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Query { pairs })
    }

    /// The value of `name`; an empty value is "not given".
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.pairs.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    }

    pub(crate) fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                // A whole number too large for any range says so, rather than that it is no number.
                let whole = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                let expected = if whole { "a smaller whole number" } else { "a whole number" };
                ApiError::invalid(format!("query.{name}"), format!("query.{name}: expected {expected}, got {:?}", shown_query(&v)))
            }),
        }
    }

    /// Refuses parameters outside `known`.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.pairs.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            None => Ok(()),
            Some((name, _)) => Err(ApiError::invalid(
                format!("query.{name}"),
                format!("unknown query parameter `{name}`; expected {}", if known.is_empty() { "none".into() } else { known.join(", ") }),
            )),
        }
    }
}

/// `%XX` escapes (and `+` as a space) decoded; `None` when malformed or not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A query value as an error quotes it: at most 40 characters.
pub(crate) fn shown_query(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let q = Query::parse(Some("owner=release%2Dgovernance&since=2026-05-21T19%3A00%3A00Z&x=a+b")).ok().unwrap_or(Query { pairs: vec![] });
        assert_eq!(q.get("owner").as_deref(), Some("release-governance"));
        assert_eq!(q.get("since").as_deref(), Some("2026-05-21T19:00:00Z"));
        assert_eq!(q.get("x").as_deref(), Some("a b"));
        assert!(Query::parse(Some("a=%zz")).is_err());
    }

    #[test]
    fn application_errors_name_fields_the_http_way() {
        let limit = || AppError::field(Field::named("limit"), "expected 1 to 1000, got 5000");
        let e = in_query(limit());
        assert_eq!((e.status, e.code, e.path.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", Some("query.limit")));
        assert_eq!(e.message, "query.limit: expected 1 to 1000, got 5000");
        assert_eq!(ApiError::from(limit()).path.as_deref(), Some("$.limit"));
        let two = in_query(AppError::input("{@since} is later than {@until}"));
        assert_eq!(two.message, "query.since is later than query.until");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let mut f = parse_object(br#"{"force": true, "forse": true}"#).ok().unwrap_or(Fields::new(Map::new()));
        assert_eq!(f.flag("force").ok(), Some(true));
        let e = f.finish(&["force"]).err().map(|e| (e.status, e.path));
        assert_eq!(e, Some((StatusCode::UNPROCESSABLE_ENTITY, Some("$.forse".to_string()))));
        let e = parse_object(b"{\"a\": ").err().map(|e| e.status);
        assert_eq!(e, Some(StatusCode::BAD_REQUEST));
    }
}
