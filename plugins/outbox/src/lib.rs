//! The `outbox` connector: appends each notification as one JSON line to a
//! local file. It needs no network, so it is the default connector for
//! development, demos and air-gapped runs, and the easiest to inspect.
//!
//! Configuration (`CAVRA_CONNECTOR_CONFIG`): `{"connectors": {"outbox": {"path": "FILE"}}}`.
//! The file is created if missing; its directory must exist.
//!
//! Each line is `{"schema_version": "cavra.connector-outbox.v1", "idempotency_key": …,
//! "notification": {…}, "text": …}`. The connector honours the idempotency
//! key: a notification whose key is already in the file is reported as
//! delivered without being written again, so retries and re-runs never
//! duplicate a line.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};

use cavra_connector_api::serde::Deserialize;
use cavra_connector_api::serde_json::{self, json};
use cavra_connector_api::{connector_module, CallContext, ConfigError, Connector, ConnectorModuleRef, Notification, Outcome};

/// The schema string of every line.
pub const LINE_SCHEMA: &str = "cavra.connector-outbox.v1";

/// `{"path": FILE}`.
#[derive(Deserialize)]
#[serde(crate = "cavra_connector_api::serde", deny_unknown_fields)]
pub struct OutboxConfig {
    /// The JSON-lines file to append to.
    pub path: PathBuf,
}

/// The outbox connector.
#[derive(Debug, Default)]
pub struct Outbox;

impl Connector for Outbox {
    type Config = OutboxConfig;

    fn name(&self) -> &str {
        "outbox"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn providers(&self) -> Vec<String> {
        vec!["outbox".to_owned()]
    }

    fn validate_config(&self, config: &OutboxConfig) -> Result<(), ConfigError> {
        if config.path.as_os_str().is_empty() {
            return Err(ConfigError::invalid("path", "must not be empty"));
        }
        if config.path.is_dir() {
            return Err(ConfigError::invalid("path", "names a directory, not a file"));
        }
        Ok(())
    }

    fn target(&self, config: &OutboxConfig) -> String {
        // The file name only: the directory may say more than an operator wants logged.
        let name = config.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        format!("file:{name}")
    }

    fn deliver(&self, notification: &Notification, config: &OutboxConfig, _ctx: &CallContext) -> Outcome {
        match append(&config.path, notification) {
            Ok(()) => Outcome::delivered(None),
            Err(e) => {
                // The error kind only: io::Error's text can quote the path.
                let message = format!("cannot append to the outbox file: {}", describe(&e));
                match e.kind() {
                    ErrorKind::NotFound | ErrorKind::PermissionDenied | ErrorKind::InvalidInput | ErrorKind::IsADirectory => Outcome::permanent(None, message),
                    _ => Outcome::retryable(None, message),
                }
            }
        }
    }
}

fn describe(e: &io::Error) -> &'static str {
    match e.kind() {
        ErrorKind::NotFound => "its directory does not exist",
        ErrorKind::PermissionDenied => "permission denied",
        ErrorKind::IsADirectory => "the path is a directory",
        ErrorKind::StorageFull => "the disk is full",
        ErrorKind::InvalidInput => "invalid path",
        _ => "I/O error",
    }
}

fn append(path: &Path, notification: &Notification) -> io::Result<()> {
    let key = &notification.idempotency_key;
    if already_written(path, key)? {
        return Ok(());
    }
    let line = json!({
        "schema_version": LINE_SCHEMA,
        "idempotency_key": key,
        "notification": notification,
        "text": notification.render_text(),
    });
    let mut bytes = serde_json::to_vec(&line).map_err(io::Error::other)?;
    bytes.push(b'\n');
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // One write of the whole line: with O_APPEND, concurrent writers cannot interleave inside it.
    file.write_all(&bytes)?;
    file.flush()
}

/// Whether a line with this idempotency key is already in the file.
fn already_written(path: &Path, key: &str) -> io::Result<bool> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let needle = format!("\"idempotency_key\":{}", serde_json::Value::from(key));
    for line in BufReader::new(file).lines() {
        if line?.contains(&needle) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The connector's module, as a host that links it calls it (cavra's
/// built-in `outbox` connector); `cavra-plugin-outbox` exports the same connector
/// as a plugin library.
pub fn module() -> ConnectorModuleRef {
    connector_module!(Outbox)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn notification(key: &str) -> Notification {
        serde_json::from_value(json!({
            "route_id": "route_1", "plan_id": "plan_1", "schedule_id": "drill", "owner": "ops",
            "escalation_owner": "lead", "provider": "outbox", "alert_level": "warning", "status": "due_soon",
            "reason": "due soon", "acknowledgement_minutes": 60, "idempotency_key": key,
            "created_at": "2026-05-21T19:00:00Z"
        }))
        .expect("valid notification")
    }

    #[test]
    fn appends_one_line_per_key_and_skips_repeats() {
        let dir = std::env::temp_dir().join(format!("cavra-outbox-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("outbox.jsonl");
        let _ = std::fs::remove_file(&path);
        let config = OutboxConfig { path: path.clone() };
        let ctx = CallContext { attempt: 1, timeout: Duration::from_secs(1) };
        for key in ["k1", "k2", "k1"] {
            assert_eq!(Outbox.deliver(&notification(key), &config, &ctx), Outcome::delivered(None));
        }
        let text = std::fs::read_to_string(&path).expect("outbox written");
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["schema_version"], LINE_SCHEMA);
        assert_eq!(lines[1]["notification"]["idempotency_key"], "k2");
        assert_eq!(Outbox.target(&config), "file:outbox.jsonl");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_directory_is_permanent_and_names_no_path() {
        let config = OutboxConfig { path: PathBuf::from("/nonexistent-cavra-dir/CANARY/outbox.jsonl") };
        let ctx = CallContext { attempt: 1, timeout: Duration::from_secs(1) };
        match Outbox.deliver(&notification("k"), &config, &ctx) {
            Outcome::PermanentFailure { message, .. } => {
                assert!(!message.contains("CANARY"), "{message}")
            }
            other => panic!("expected a permanent failure, got {other:?}"),
        }
    }
}
