//! Reading input documents at the edge, with errors that name the file and
//! the JSON position; the clock; the instants a document names.

use std::path::Path;

/// Reads a JSON document; the error names the file and, for bad JSON, the line and column.
/// The largest input document read, in bytes, unless told otherwise
/// (`--max-document-bytes`, `CAVRA_MAX_DOCUMENT_BYTES`).
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 8 * 1024 * 1024;
/// The most route decisions one plan may have (`--max-routes-per-plan`, `CAVRA_MAX_ROUTES_PER_PLAN`).
pub const DEFAULT_MAX_ROUTES_PER_PLAN: usize = 10_000;

/// How much input one request may bring: checked before parsing or planning,
/// so an oversized document costs neither memory nor a stored plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_document_bytes: u64,
    pub max_routes_per_plan: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES, max_routes_per_plan: DEFAULT_MAX_ROUTES_PER_PLAN }
    }
}

/// Reads a JSON document of at most [`DEFAULT_MAX_DOCUMENT_BYTES`].
pub fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    read_json_limited(path, DEFAULT_MAX_DOCUMENT_BYTES)
}

/// Reads a JSON document from a regular file of at most `max_bytes`; errors name the file.
pub fn read_json_limited(path: &Path, max_bytes: u64) -> Result<serde_json::Value, String> {
    use std::io::Read;
    let shown = path.display();
    let io_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown}: no such file"),
        std::io::ErrorKind::InvalidData => format!("{shown}: not UTF-8 text"),
        _ => format!("{shown}: cannot read: {e}"),
    };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if metadata.is_dir() {
        return Err(format!("{shown}: is a directory, expected a JSON file"));
    }
    // A FIFO or a device would block or never end: only regular files are read.
    if !metadata.is_file() {
        return Err(format!("{shown}: not a regular file, expected a JSON file"));
    }
    let too_big = |size: u64| format!("{shown}: {size} bytes is over the limit of {max_bytes} bytes (--max-document-bytes, CAVRA_MAX_DOCUMENT_BYTES)");
    if metadata.len() > max_bytes {
        return Err(too_big(metadata.len()));
    }
    // The file may grow while it is read: never read more than the limit allows.
    let mut text = String::new();
    std::fs::File::open(path).and_then(|f| f.take(max_bytes.saturating_add(1)).read_to_string(&mut text)).map_err(io_error)?;
    if text.len() as u64 > max_bytes {
        return Err(too_big(text.len() as u64));
    }
    parse_json(&shown.to_string(), &text)
}

pub fn parse_json(name: &str, text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{name}:{}:{}: invalid JSON: {}", e.line(), e.column(), strip_position(&e.to_string())))
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The clock: `--at TIME` (RFC 3339 with an offset) or the current time, as RFC 3339 UTC.
pub fn clock(at: Option<&str>) -> Result<String, crate::AppError> {
    match at {
        Some(text) => {
            cavra_engine::time::parse_time(text).map(cavra_engine::time::format_time).map_err(|e| crate::AppError::field(crate::Field::named("at"), e))
        }
        None => Ok(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }
}

/// Expands folders into the files below them whose names end with `suffix`, sorted.
pub fn expand(paths: &[std::path::PathBuf], suffix: &str) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, suffix, &mut out).map_err(|e| format!("{}: {e}", path.display()))?;
        } else if path.exists() {
            out.push(path.clone());
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, suffix: &str, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, suffix, out)?;
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
    Ok(())
}

/// The instant of an "as of" view (`--at`, `?at=`), in microseconds; `None`
/// (or empty) is no bound. A text that is not a time is an error naming `at`.
pub(crate) fn as_of(at: Option<&str>) -> Result<Option<i64>, crate::AppError> {
    match at.map(str::trim).filter(|a| !a.is_empty()) {
        Some(text) => cavra_engine::time::parse_time(text).map(Some).map_err(|e| crate::AppError::field(crate::Field::named("at"), e)),
        None => Ok(None),
    }
}

/// Adds every instant in `[from, to]` that `document` names to `instants`:
/// each RFC 3339 timestamp string, and the start and end of each occurrence
/// in `[from, to)` of each recurrence (an object with a `time_zone`; see
/// `cavra_engine::recurrence`). A decision that compares the clock with a
/// document's times can change only at these instants (and the period's
/// ends), so deciding once between each two of them misses nothing.
pub(crate) fn document_instants(document: &serde_json::Value, from: i64, to: i64, instants: &mut std::collections::BTreeSet<i64>) {
    use serde_json::Value as Json;
    let mut add = |t: i64| {
        if (from..=to).contains(&t) {
            instants.insert(t);
        }
    };
    match document {
        // Only text shaped like a timestamp (a date, then `T`) is tried, so prose never parses.
        Json::String(text) if text.len() >= 20 && text.as_bytes().get(10).is_some_and(|b| matches!(b, b'T' | b't')) => {
            if let Ok(t) = cavra_engine::time::parse_time(text) {
                add(t);
            }
        }
        Json::Array(items) => items.iter().for_each(|item| document_instants(item, from, to, instants)),
        Json::Object(fields) => {
            if fields.contains_key("time_zone") {
                // A recurrence that does not read was refused when its pack was bound.
                if let Ok(rule) = cavra_engine::recurrence::Recurrence::from_json(document) {
                    for (start, end) in rule.occurrences(from, to) {
                        add(start);
                        add(end);
                    }
                }
            }
            fields.values().for_each(|value| document_instants(value, from, to, instants));
        }
        _ => {}
    }
}
