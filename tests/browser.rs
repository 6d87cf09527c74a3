//! The Evidence Console in a real browser: headless Chromium, driven through
//! chromedriver's WebDriver API, loads `/console` from a seeded `cavra api`,
//! clicks Ack on a delivered route, and the test checks that the store holds
//! the acknowledgement and that the page shows it. A screenshot is written to
//! `target/test-output/console-ack.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them
//! and sets CAVRA_REQUIRE_BROWSER=1). Elsewhere, without them, the test says
//! it was skipped; with CAVRA_REQUIRE_BROWSER=1 a missing browser fails it.

use cavra_tests::http::{request, sample_document_flags, Server};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AT: &str = "2026-05-21T19:00:00Z";
const NOTIFY: &str = "/runtime/go-pilot/rollback-drill-notifications";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

struct Driver {
    child: Child,
    addr: String,
    session: String,
}

impl Driver {
    fn start(chromedriver: &Path, chromium: &Path, profile: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new(chromedriver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start chromedriver");
        let addr = format!("127.0.0.1:{port}");
        wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(&addr).is_ok().then_some(())).expect("chromedriver listens");
        let mut driver = Driver { child, addr, session: String::new() };
        // The closed network refuses Chromium's background connections: turn them off.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1800",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args}
        }}});
        let created = driver.call("POST", "/session", Some(capabilities));
        driver.session = created["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        driver
    }

    fn call(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = request(&self.addr, method, path, &[("Content-Type", "application/json")], body.as_bytes());
        let doc: Json = serde_json::from_str(&response.body).unwrap_or(Json::Null);
        if response.status != 200 {
            return json!({"error": doc["value"]});
        }
        doc["value"].clone()
    }

    fn session(&self, method: &str, path: &str, body: Option<Json>) -> Json {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn find(&self, css: &str) -> Option<String> {
        let found = self.session("POST", "/element", Some(json!({"using": "css selector", "value": css})));
        found[ELEMENT].as_str().map(String::from)
    }

    fn script(&self, script: &str, args: Json) -> Json {
        self.session("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.session("DELETE", "", None);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(found) = probe() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Standard base64 (screenshots come as base64 PNG).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let digits: Vec<u8> = text.bytes().filter_map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, d)| acc | (u32::from(*d) << (18 - 6 * i)));
        out.extend(n.to_be_bytes()[1..chunk.len()].iter());
    }
    out
}

#[test]
fn ack_in_the_console_is_stored_and_shown() {
    let chromium = find_program("CAVRA_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let chromedriver = find_program("CAVRA_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(std::env::var_os("CAVRA_REQUIRE_BROWSER").is_none(), "CAVRA_REQUIRE_BROWSER is set but chromium/chromedriver are missing");
        eprintln!("skipped: install Debian's chromium and chromium-driver to run the console browser test (.ci/run does)");
        return;
    };
    let repo = cavra_tests::crate_dir().join("..");
    let dir = std::env::temp_dir().join(format!("cavra-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("profile")).expect("temp dir");
    let mut args = sample_document_flags(&repo);
    args.extend(["--store".into(), dir.join("cavra.db").display().to_string()]);
    let server = Server::start(&args, &[]);
    let plan = server.post(&format!("{NOTIFY}/plan"), &json!({"at": AT}).to_string());
    assert_eq!(plan.status, 200, "seeding the plan: {}", plan.body);

    let driver = Driver::start(&chromedriver, &chromium, &dir.join("profile"));
    driver.session("POST", "/url", Some(json!({"url": format!("http://{}/console?at={AT}", server.addr)})));
    let button = wait_until(Duration::from_secs(30), || driver.find("[data-testid=route-row] [data-testid=ack-button]"))
        .unwrap_or_else(|| panic!("no Ack button rendered; page text: {}", driver.script("return document.body.innerText", json!([]))));
    let row = driver.script(
        "const tr = arguments[0].closest('tr'); return {schedule: tr.dataset.scheduleId, provider: tr.dataset.provider, plan: tr.dataset.planId, route: tr.dataset.routeId};",
        json!([{ELEMENT: button}]),
    );
    let clicked = driver.session("POST", &format!("/element/{button}/click"), Some(json!({})));
    assert!(clicked.get("error").is_none(), "click failed: {clicked}");

    let state_css = format!("[data-testid=route-row][data-route-id='{}'] [data-testid=ack-state]", row["route"].as_str().unwrap_or_default());
    let shown = wait_until(Duration::from_secs(20), || {
        let cell = driver.find(&state_css)?;
        let text = driver.session("GET", &format!("/element/{cell}/text"), None);
        text.as_str().filter(|t| t.contains("acknowledged")).map(String::from)
    });
    let shot = driver.session("GET", "/screenshot", None);
    let output = cavra_tests::profile_dir().join("..").join("test-output");
    std::fs::create_dir_all(&output).expect("test output folder");
    std::fs::write(output.join("console-ack.png"), base64_decode(shot.as_str().unwrap_or_default())).expect("write the screenshot");
    assert!(shown.is_some(), "the page shows the acknowledgement (screenshot: {})", output.join("console-ack.png").display());

    let schedule = row["schedule"].as_str().unwrap_or_default();
    let stored = server.get(&format!("{NOTIFY}/{schedule}/acknowledgements")).json();
    assert_eq!(stored["count"], 1, "{stored}");
    let ack = &stored["acknowledgements"][0];
    assert_eq!(
        (ack["provider"].clone(), ack["plan_id"].clone(), ack["acknowledgement_state"].clone()),
        (row["provider"].clone(), row["plan"].clone(), json!("acknowledged"))
    );
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
}
