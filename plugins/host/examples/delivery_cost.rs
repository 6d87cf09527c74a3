//! Measures what plugins cost: loading the bundled plugins, and one delivery
//! in process vs. process-isolated, to an HTTP server on 127.0.0.1 (Slack
//! connector) and to a local file (outbox connector).
//!
//! Build the plugins and the child binary first, in the same profile:
//!
//! ```sh
//! cargo build --release -j2 -p cavra-plugin-slack -p cavra-plugin-teams -p cavra-plugin-webhook \
//!     -p cavra-plugin-email -p cavra-plugin-outbox -p cavra-plugin-host --bins
//! cargo run --release -j2 -p cavra-plugin-host --example delivery_cost [PLUGIN_DIR] [ROUNDS]
//! ```
//!
//! `PLUGIN_DIR` defaults to the directory holding this example's profile
//! (`target/release`); it must contain the five bundled plugin libraries.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cavra_plugin_host::{ConnectorConfig, DeliveryOptions, Isolation, Notification, Registry};

const BUNDLED: [&str; 5] = ["slack", "teams", "webhook", "email", "outbox"];

fn main() {
    let mut args = std::env::args().skip(1);
    let profile_dir = std::env::current_exe().ok().and_then(|e| e.parent().and_then(Path::parent).map(Path::to_owned)).unwrap_or_default();
    let source = args.next().map(PathBuf::from).unwrap_or_else(|| profile_dir.clone());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(200);
    let child = profile_dir.join(format!("cavra-plugin-child{}", std::env::consts::EXE_SUFFIX));

    // A directory with exactly the bundled plugins.
    let dir = std::env::temp_dir().join(format!("cavra-delivery-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return;
    }
    for name in BUNDLED {
        let file = format!("{}cavra_plugin_{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        if let Err(e) = std::fs::copy(source.join(&file), dir.join(&file)) {
            eprintln!("missing {} ({e}); build the plugins first (see the example's docs)", source.join(&file).display());
            return;
        }
    }

    let started = Instant::now();
    let in_process = Registry::load(std::slice::from_ref(&dir), &Isolation::InProcess);
    let load_in_process = started.elapsed();
    println!(
        "load {} bundled plugins in process: {:.2} ms ({} loaded, {} refused)",
        BUNDLED.len(),
        ms(load_in_process),
        in_process.report().loaded.len(),
        in_process.report().refused.len()
    );

    let isolated = if child.is_file() {
        let started = Instant::now();
        let registry = Registry::load(std::slice::from_ref(&dir), &Isolation::Process { program: child.clone(), args: Vec::new() });
        println!("load {} bundled plugins, one child process each: {:.2} ms ({} loaded)", BUNDLED.len(), ms(started.elapsed()), registry.report().loaded.len());
        Some(registry)
    } else {
        println!("({} not built: skipping process isolation)", child.display());
        None
    };

    let port = http_server();
    let options = DeliveryOptions { max_attempts: 1, ..DeliveryOptions::default() };

    for (label, registry) in [("in process", Some(&in_process)), ("process-isolated", isolated.as_ref())] {
        let Some(registry) = registry else { continue };
        // One outbox file per mode: the outbox scans its file for the idempotency key.
        let outbox = dir.join(format!("outbox-{}.jsonl", label.replace(' ', "-")));
        let mut config = ConnectorConfig::empty();
        config.insert("slack", serde_json::json!({"url": format!("http://127.0.0.1:{port}/services/T0/B0/X")}));
        config.insert("outbox", serde_json::json!({"path": outbox}));
        for provider in ["slack", "outbox"] {
            let mut samples = Vec::with_capacity(rounds);
            let mut failures = 0;
            for i in 0..rounds {
                let route = notification(&format!("{label}-{provider}-{i}"), provider);
                let started = Instant::now();
                let records = registry.deliver_all(vec![route], &config, &options, |_| {});
                samples.push(started.elapsed());
                failures += records.iter().filter(|r| !r.is_delivered()).count();
            }
            samples.sort();
            println!(
                "deliver one notification via {provider:<6} {label:<16}: median {:.3} ms, p90 {:.3} ms over {rounds} ({failures} failed)",
                ms(samples[samples.len() / 2]),
                ms(samples[samples.len() * 9 / 10])
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A notification with its key given, as cavra gives it (one per route: the
/// outbox connector writes a key only once).
fn notification(route: &str, provider: &str) -> Notification {
    Notification {
        idempotency_key: format!("cavra-bench-{route}"),
        route_id: format!("route_{route}"),
        plan_id: "plan_bench".into(),
        schedule_id: "go_backend_python_fallback_monthly".into(),
        owner: "release-governance".into(),
        escalation_owner: "platform-operations".into(),
        provider: provider.into(),
        alert_level: "warning".into(),
        status: "due_soon".into(),
        next_due_at: Some("2026-05-30T15:40:00Z".into()),
        reason: "rollback drill schedule go_backend_python_fallback_monthly is due soon".into(),
        runbook_ref: Some("docs/go-backend-rollback-drill-scheduling.md".into()),
        acknowledgement_minutes: 60,
        created_at: "2026-05-21T19:00:00Z".into(),
    }
}

/// A minimal HTTP server answering 200 to every request, one thread per connection.
fn http_server() -> u16 {
    let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
        return 0;
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut out) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            });
        }
    });
    port
}
