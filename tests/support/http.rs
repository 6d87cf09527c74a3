//! A running `cavra api` for tests, and a small HTTP/1.1 client over a raw
//! socket, so tests control every header and byte they send (bad lengths,
//! wrong content types, oversized bodies).

use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The sample documents, as `cavra api` flags (paths relative to the repository).
pub fn sample_document_flags(repo: &Path) -> Vec<String> {
    let e = |f: &str| repo.join("examples").join(f).display().to_string();
    vec![
        "--mode".into(),
        "promoted".into(),
        "--rollback-plan-path".into(),
        e("rollback-plan.json"),
        "--promotion-evidence-path".into(),
        e("promotion-evidence.json"),
        "--rollback-rehearsal-path".into(),
        e("rollback-rehearsal.json"),
        "--rollback-drill-history-path".into(),
        e("rollback-drills.json"),
        "--rollback-drill-schedule-path".into(),
        e("rollback-drill-schedule.json"),
        "--routing-policy".into(),
        e("routing-policy.json"),
    ]
}

/// `cavra api` on the sample documents with its store in `dir` (`cavra.db`),
/// more flags and environment.
pub fn sample_server_in(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    sample_server_with_store(&dir.join("cavra.db").display().to_string(), extra, env)
}

/// `cavra api` on the sample documents with `--store STORE` (a file, or a
/// `postgres://` URL shared with other instances), more flags and environment.
pub fn sample_server_with_store(store: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut args = sample_document_flags(&crate::crate_dir().join(".."));
    args.extend(["--store".to_string(), store.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start(&args, env)
}

/// A `cavra api` child process on an ephemeral loopback port; stopped on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// What the server logged to stderr so far (see [`Server::log`]).
    logged: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `cavra api --listen 127.0.0.1:0 ARGS...` with `env` and waits for its address.
    pub fn start(args: &[String], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(crate::cavra_binary());
        command.arg("api").arg("--listen").arg("127.0.0.1:0").args(args);
        // The tests' own environment must not leak documents or tokens into the server.
        for var in ["CAVRA_API_TOKENS", "CAVRA_STORE", "CAVRA_GO_BACKEND_MODE", "CAVRA_CONNECTOR_CONFIG", "CAVRA_PLUGIN_PATH"] {
            command.env_remove(var);
        }
        command.envs(env.iter().copied());
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start cavra api");
        let logged = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().map(|e| {
            let logged = Arc::clone(&logged);
            // Line by line, so that a running server's log can be read (Server::log).
            std::thread::spawn(move || {
                let mut reader = BufReader::new(e);
                let mut line = Vec::new();
                while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    logged.lock().unwrap_or_else(|p| p.into_inner()).push_str(&String::from_utf8_lossy(&line));
                    line.clear();
                }
                let text = logged.lock().unwrap_or_else(|p| p.into_inner()).clone();
                text
            })
        });
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let addr = line.trim().rsplit("http://").next().unwrap_or_default().to_string();
        assert!(!addr.is_empty() && line.contains("listening"), "cavra api did not start: {line:?}");
        Server { child, addr, stderr, logged }
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], "")
    }

    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[("Content-Type", "application/json")], body)
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        request(&self.addr, method, path, headers, body.as_bytes())
    }

    /// Sends SIGTERM and returns the exit status and everything logged to stderr.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(40));
        let log = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        (status, log)
    }

    /// Kills the server at once (SIGKILL: no shutdown, no cleanup, as a crash)
    /// and waits for it. Its log is not waited for: a plugin child it left
    /// behind may still hold its stderr.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the server has logged to stderr so far.
    pub fn log(&self) -> String {
        self.logged.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the log contains `text`, for at most `limit`; whether it did.
    pub fn wait_for_log(&self, text: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.log().contains(text) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

fn wait_with_deadline(child: &mut Child, deadline: Duration) -> Option<i32> {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while waited < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(step);
        waited += step;
    }
    let _ = child.kill();
    None
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The `error` object of a JSON error body.
    pub fn error(&self) -> Json {
        self.json()["error"].clone()
    }
}

/// One request on its own connection (`Connection: close`).
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the head");
    // A server may answer (413) before reading everything: a failed body write is fine.
    let _ = stream.write_all(body);
    parse_response(&read_response(&mut stream))
}

/// Reads one response: up to its Content-Length, the end of its chunks, or
/// the end of the connection (some servers keep it open despite `close`).
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
            let complete = match length {
                Some(n) => raw.len() >= end + 4 + n,
                None if head.contains("transfer-encoding: chunked") => raw.ends_with(b"0\r\n\r\n"),
                None => false,
            };
            if complete {
                return raw;
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
        }
    }
}

fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Response { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
