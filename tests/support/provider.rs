//! A provider for delivery tests: an HTTP/1.1 server on 127.0.0.1 that
//! records every request it receives and answers each with the next status
//! of its script (the last one repeats), which a test may change at any time
//! (a connector that fails, then recovers), or [`STALL`]: record it and never
//! answer. And the `cavra` binary run as a child process, with its own
//! environment (connector configuration).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A script entry: the request is recorded (with status 0) and never
/// answered; its connection stays open until the test process ends, so the
/// sender waits until its own timeout (or until it dies).
pub const STALL: u16 = 0;

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// The status it was answered with.
    pub status: u16,
}

impl Request {
    /// The `Idempotency-Key` header.
    pub fn key(&self) -> &str {
        self.headers.get("idempotency-key").map_or("", String::as_str)
    }
}

#[derive(Default)]
struct Shared {
    script: Vec<u16>,
    answered: usize,
    requests: Vec<Request>,
    /// The connections of requests answered with [`STALL`], kept open.
    stalled: Vec<TcpStream>,
}

pub struct Provider {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl Provider {
    /// Answers every request with `status` until told otherwise.
    pub fn start(status: u16) -> Provider {
        Provider::scripted(&[status])
    }

    /// Answers the n-th request with `script[n]`; the last status repeats.
    pub fn scripted(script: &[u16]) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let shared = Arc::new(Mutex::new(Shared { script: script.to_vec(), ..Shared::default() }));
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let Some(mut request) = read_request(&stream) else { continue };
                let status = {
                    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
                    let status = s.script.get(s.answered).or(s.script.last()).copied().unwrap_or(200);
                    s.answered += 1;
                    request.status = status;
                    s.requests.push(request);
                    status
                };
                if status == STALL {
                    state.lock().unwrap_or_else(|p| p.into_inner()).stalled.push(stream);
                    continue;
                }
                let mut out = stream;
                let _ = write!(out, "HTTP/1.1 {status} Scripted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            }
        });
        Provider { port, shared }
    }

    /// From now on, answer every request with `status` ([`STALL`]: never answer).
    pub fn set_status(&self, status: u16) {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        s.script = vec![status];
        s.answered = 0;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).requests.clone()
    }

    /// The idempotency keys received, in order.
    pub fn keys(&self) -> Vec<String> {
        self.requests().iter().map(|r| r.key().to_string()).collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Writes a connector configuration sending `teams` and `slack` here
    /// (paths `/teams` and `/slack`) to `dir/connectors.json`.
    pub fn connector_config(&self, dir: &Path) -> PathBuf {
        let path = dir.join("connectors.json");
        let document = format!(r#"{{"connectors": {{"teams": {{"url": "{}"}}, "slack": {{"url": "{}"}}}}}}"#, self.url("teams"), self.url("slack"));
        std::fs::create_dir_all(dir).expect("config folder");
        std::fs::write(&path, document).expect("write connector config");
        path
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request { path, headers, body: String::from_utf8_lossy(&body).into_owned(), status: 0 })
}

/// Runs the `cavra` binary with `args` in `dir`, with `env` and none of the
/// caller's cavra settings.
pub fn cavra_process(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> crate::Run {
    let mut command = Command::new(crate::cavra_binary());
    command.current_dir(dir);
    for var in ["CAVRA_STORE", "CAVRA_PLUGIN_PATH", "CAVRA_CONNECTOR_CONFIG", "CAVRA_GO_BACKEND_MODE"] {
        command.env_remove(var);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.args(args).output().expect("run cavra");
    crate::Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
