//! The Evidence Console in a real browser: headless Chromium, driven through
//! chromedriver's WebDriver API, loads `/console` from a `cavra api` whose
//! connectors point at a recording HTTP server on 127.0.0.1 in this test.
//!
//! - Ack: a delivered notification is acknowledged from its route row; the
//!   store holds an acknowledgement naming the notification, and the page
//!   shows the state the escalation plan gives it afterwards
//!   (`target/test-output/console-ack.png`).
//! - Retry: deliveries fail (the server answers 500), the connector recovers,
//!   and an approved Retry from the page delivers them; the store holds the
//!   retry record and the connector recovery, and the page shows the
//!   recovery (`target/test-output/console-retry.png`).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them
//! and sets CAVRA_REQUIRE_BROWSER=1). Elsewhere, without them, the test says
//! it was skipped; with CAVRA_REQUIRE_BROWSER=1 a missing browser fails it.

use cavra_tests::http::{request, sample_server_in, Server};
use cavra_tests::provider::Provider;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The sample schedule is due soon then: the teams routes deliver, slack is
/// suppressed by the change freeze (18:00 to 20:00).
const AT: &str = "2026-05-21T19:00:00Z";
/// The console's clock in the retry test: a quarter of an hour after the failed delivery.
const RETRY_AT: &str = "2026-05-21T19:15:00Z";
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

impl Driver {
    fn page_text(&self) -> String {
        self.script("return document.body.innerText", json!([])).as_str().unwrap_or_default().to_string()
    }

    fn text(&self, element: &str) -> String {
        self.session("GET", &format!("/element/{element}/text"), None).as_str().unwrap_or_default().to_string()
    }

    fn count(&self, css: &str) -> u64 {
        self.script("return document.querySelectorAll(arguments[0]).length", json!([css])).as_u64().unwrap_or(0)
    }

    fn click(&self, element: &str) {
        let clicked = self.session("POST", &format!("/element/{element}/click"), Some(json!({})));
        assert!(clicked.get("error").is_none(), "click failed: {clicked}");
    }

    fn type_into(&self, element: &str, text: &str) {
        let typed = self.session("POST", &format!("/element/{element}/value"), Some(json!({"text": text})));
        assert!(typed.get("error").is_none(), "typing failed: {typed}");
    }

    /// The element's text, once `accept` takes it (within `limit`).
    fn wait_for_text(&self, css: &str, limit: Duration, accept: impl Fn(&str) -> bool) -> Option<String> {
        wait_until(limit, || {
            let element = self.find(css)?;
            let text = self.text(&element);
            accept(&text).then_some(text)
        })
    }

    /// Scrolls the element of `css` to the top of the window, writes
    /// `target/test-output/NAME` and returns its path.
    fn screenshot(&self, name: &str, css: &str) -> PathBuf {
        self.script("const e = document.querySelector(arguments[0]); if (e) { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -70); }", json!([css]));
        let shot = self.session("GET", "/screenshot", None);
        let output = cavra_tests::profile_dir().join("..").join("test-output");
        std::fs::create_dir_all(&output).expect("test output folder");
        let path = output.join(name);
        std::fs::write(&path, base64_decode(shot.as_str().unwrap_or_default())).expect("write the screenshot");
        path
    }
}

/// Chromium and chromedriver, or `None` when the test is to be skipped
/// (a missing browser fails it when CAVRA_REQUIRE_BROWSER=1).
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let chromium = find_program("CAVRA_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    let chromedriver = find_program("CAVRA_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some((chromium, chromedriver)),
        _ => {
            let required = std::env::var("CAVRA_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            assert!(!required, "CAVRA_REQUIRE_BROWSER=1 but chromium/chromedriver are missing");
            eprintln!("skipped: install Debian's chromium and chromium-driver to run the console browser test (.ci/run does)");
            None
        }
    }
}

/// One browser at a time: two headless Chromiums and two servers on a small machine make the waits flaky.
static BROWSER: Mutex<()> = Mutex::new(());

/// A fresh folder for one test's store and browser profile.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cavra-browser-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("profile")).expect("temp dir");
    dir
}

/// `cavra api` over the sample documents with its store in `dir` and its connectors sent to `webhook`.
fn start_api(dir: &Path, webhook: &Provider) -> Server {
    let config = webhook.connector_config(dir);
    sample_server_in(dir, &[], &[("CAVRA_CONNECTOR_CONFIG", &config.display().to_string())])
}

#[test]
fn ack_in_the_console_is_stored_and_shown() {
    let Some((chromium, chromedriver)) = browser_programs() else { return };
    let _one_browser = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("ack");
    let webhook = Provider::start(200);
    let server = start_api(&dir, &webhook);
    let delivered = server.post(&format!("{NOTIFY}/deliver"), &json!({"provider": "all", "at": AT}).to_string());
    assert_eq!(delivered.status, 200, "seeding the deliveries: {}", delivered.body);
    assert_eq!(delivered.json()["delivered_count"], 2, "{}", delivered.body);

    let driver = Driver::start(&chromedriver, &chromium, &dir.join("profile"));
    driver.session("POST", "/url", Some(json!({"url": format!("http://{}/console?at={AT}", server.addr)})));
    // Only an open, delivered notification has an Ack button.
    let button = wait_until(Duration::from_secs(30), || driver.find("[data-testid=route-row][data-state=outstanding] [data-testid=ack-button]"))
        .unwrap_or_else(|| panic!("no Ack button rendered; page text: {}", driver.page_text()));
    assert_eq!(driver.count("[data-testid=route-row]:not([data-state=outstanding]) [data-testid=ack-button]"), 0, "Ack only on delivered notifications");
    let row = driver.script(
        "const tr = arguments[0].closest('tr'); return {schedule: tr.dataset.scheduleId, provider: tr.dataset.provider, plan: tr.dataset.planId, \
         route: tr.dataset.routeId, notification: tr.dataset.notificationId};",
        json!([{ELEMENT: button}]),
    );
    let notification = row["notification"].as_str().unwrap_or_default().to_string();
    assert!(notification.starts_with("ntf_"), "the row names its notification: {row}");
    driver.click(&button);

    // The escalation plan no longer lists it as open: the page shows it closed.
    let state_css = format!("[data-testid=route-row][data-notification-id='{notification}'] [data-testid=notification-state]");
    let shown = driver.wait_for_text(&state_css, Duration::from_secs(20), |t| t == "closed");
    let result = driver.wait_for_text("[data-testid=ack-result]", Duration::from_secs(20), |t| t.contains("Its state is now closed"));
    let shot = driver.screenshot("console-ack.png", "[data-testid=routes-table]");
    assert!(shown.is_some(), "the page shows the notification closed (screenshot: {}); page text: {}", shot.display(), driver.page_text());
    let result = result.unwrap_or_else(|| panic!("no acknowledgement result; page text: {}", driver.page_text()));
    assert!(result.contains("\"acknowledged\"") && result.contains(&notification), "{result}");

    let schedule = row["schedule"].as_str().unwrap_or_default();
    let stored = server.get(&format!("{NOTIFY}/{schedule}/acknowledgements")).json();
    assert_eq!(stored["count"], 1, "{stored}");
    let ack = &stored["acknowledgements"][0];
    assert_eq!(
        (ack["notification_id"].clone(), ack["provider"].clone(), ack["plan_id"].clone(), ack["acknowledgement_state"].clone(), ack["created_at"].clone()),
        (json!(notification), row["provider"].clone(), row["plan"].clone(), json!("acknowledged"), json!(AT)),
        "{ack}"
    );
    assert_eq!(ack["notification_ids"], json!([notification]), "the acknowledgement answers exactly the notification clicked: {ack}");
    let plan = server.post(&format!("{NOTIFY}/escalation-plan"), &json!({"at": AT}).to_string()).json();
    let open: Vec<&str> = plan["routes"].as_array().into_iter().flatten().filter_map(|r| r["notification_id"].as_str()).collect();
    assert!(!open.contains(&notification.as_str()), "the acknowledged notification is closed: {plan}");
    assert_eq!(plan["outstanding_count"], 1, "the other teams notification still waits: {plan}");
}

#[test]
fn an_approved_retry_in_the_console_recovers_the_connector() {
    let Some((chromium, chromedriver)) = browser_programs() else { return };
    let _one_browser = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = fresh_dir("retry");
    let webhook = Provider::start(500);
    let server = start_api(&dir, &webhook);

    // The teams connector answers 500: both teams notifications fail (slack is suppressed).
    let delivered = server.post(&format!("{NOTIFY}/deliver"), &json!({"provider": "all", "at": AT}).to_string());
    assert_eq!(delivered.status, 200, "delivering: {}", delivered.body);
    let result = delivered.json();
    assert_eq!((result["delivered_count"].clone(), result["failed_count"].clone()), (json!(0), json!(2)), "{result}");
    let failing = webhook.requests();
    assert!(failing.len() >= 2 && failing.iter().all(|r| r.path == "/teams" && r.status == 500), "{failing:?}");
    webhook.set_status(200);

    let driver = Driver::start(&chromedriver, &chromium, &dir.join("profile"));
    driver.session("POST", "/url", Some(json!({"url": format!("http://{}/console?at={RETRY_AT}", server.addr)})));
    let failed_rows = wait_until(Duration::from_secs(30), || (driver.count("[data-testid=failed-row]") == 2).then_some(()));
    assert!(failed_rows.is_some(), "the two failed deliveries are listed; page text: {}", driver.page_text());
    assert_eq!(driver.count("[data-testid=recovery-empty]"), 1, "no recovery yet");
    let button = wait_until(Duration::from_secs(10), || {
        let button = driver.find("[data-testid=retry-button]")?;
        let enabled = driver.session("GET", &format!("/element/{button}/enabled"), None);
        (enabled == json!(true)).then_some(button)
    })
    .unwrap_or_else(|| panic!("the Retry button is not enabled; page text: {}", driver.page_text()));
    // Without an approval the server refuses the retry; the page shows its error, naming the field.
    driver.click(&button);
    let refused = driver.wait_for_text("[data-testid=status-message] .status-line.error", Duration::from_secs(20), |t| t.contains("$.approval_id"));
    assert!(refused.is_some(), "a retry without an approval is refused and the error shown; page text: {}", driver.page_text());
    let approval = driver.find("[data-testid=retry-approval-id]").expect("the approval id field");
    let approver = driver.find("[data-testid=retry-approved-by]").expect("the approver field");
    driver.type_into(&approval, "apr_console_retry");
    driver.type_into(&approver, "release-lead");
    driver.click(&button);

    let recovery_css = "[data-testid=recovery-panel] [data-testid=recovery-row][data-provider=teams]";
    let recovery_row = driver.wait_for_text(recovery_css, Duration::from_secs(60), |t| t.contains("apr_console_retry"));
    let retried = driver.wait_for_text("[data-testid=retry-result]", Duration::from_secs(10), |t| t.contains("2 delivered"));
    let cleared = wait_until(Duration::from_secs(10), || (driver.count("[data-testid=failed-empty]") == 1).then_some(()));
    let shot = driver.screenshot("console-retry.png", "[data-testid=escalation-summary]");
    let recovery_row =
        recovery_row.unwrap_or_else(|| panic!("the page shows no teams recovery (screenshot: {}); page text: {}", shot.display(), driver.page_text()));
    assert!(recovery_row.contains("15 min"), "time to recovery: {recovery_row}");
    let retried = retried.unwrap_or_else(|| panic!("no retry result; page text: {}", driver.page_text()));
    assert!(retried.contains("apr_console_retry") && retried.contains("0 failed"), "{retried}");
    assert!(cleared.is_some(), "no failed delivery is left; page text: {}", driver.page_text());
    // Delivered by the retry at 19:15: waiting for acknowledgement now.
    assert_eq!(driver.count("[data-testid=route-row][data-provider=teams][data-state=outstanding]"), 2, "{}", driver.page_text());

    let retries = server.get(&format!("{NOTIFY}/retries?at={RETRY_AT}")).json();
    assert_eq!(retries["count"], 1, "{retries}");
    let retry = &retries["retries"][0];
    assert_eq!(
        (retry["approval_id"].clone(), retry["approved_by"].clone(), retry["at"].clone(), retry["delivered_count"].clone(), retry["failed_count"].clone()),
        (json!("apr_console_retry"), json!("release-lead"), json!(RETRY_AT), json!(2), json!(0)),
        "{retry}"
    );
    let recoveries = server.get(&format!("{NOTIFY}/connector-recovery?provider=teams&at={RETRY_AT}")).json();
    assert_eq!(recoveries["count"], 1, "{recoveries}");
    let recovery = &recoveries["recoveries"][0];
    assert_eq!(
        (recovery["approval_id"].clone(), recovery["retry_id"].clone(), recovery["first_failure_at"].clone(), recovery["recovered_at"].clone()),
        (json!("apr_console_retry"), retry["retry_id"].clone(), json!(AT), json!(RETRY_AT)),
        "{recovery}"
    );
    assert_eq!(recovery["time_to_recovery_seconds"], 900, "{recovery}");
    assert_eq!(server.get(&format!("{NOTIFY}/connector-recovery?at={RETRY_AT}")).json()["count"], 1, "only teams recovered");

    let answered: Vec<(String, u16)> = webhook.requests().into_iter().filter(|r| r.status == 200).map(|r| (r.path, r.status)).collect();
    assert_eq!(answered, vec![("/teams".to_string(), 200), ("/teams".to_string(), 200)], "each failed notification was sent once more");
}

#[test]
fn base64_decodes() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
}
