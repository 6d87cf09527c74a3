//! Reading input documents at the edge, with errors that name the file and
//! the JSON position; the clock.

use std::path::Path;

/// Reads a JSON document; the error names the file and, for bad JSON, the line and column.
pub fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let shown = path.display();
    if path.is_dir() {
        return Err(format!("{shown}: is a directory, expected a JSON file"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown}: no such file"),
        std::io::ErrorKind::InvalidData => format!("{shown}: not UTF-8 text"),
        _ => format!("{shown}: cannot read: {e}"),
    })?;
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
