//! Reading input documents at the edge, with errors that name the file and
//! the JSON position; the clock.

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
