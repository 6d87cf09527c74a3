//! Prints the decision-loop benchmark results as a table, from criterion's
//! `target/criterion/<group>/<function>/new/estimates.json` (median point
//! estimates, nanoseconds per iteration): cavra (the one-line
//! `Program::decide`, and `Decider::decide_at_with` with each pair's keys
//! resolved once), the plain loops and the segment tables per decision,
//! cavra's ratio to each baseline, and the compile and bind times.
//!
//! Usage: `cargo run -j2 --release -p cavra-benches --bin bench-report [CRITERION_DIR]`
//! (default: `$CARGO_TARGET_DIR/criterion`, else `<workspace>/target/criterion`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Requests per iteration of the decision-loop benchmarks.
const REQUESTS: f64 = cavra_benches::REQUESTS as f64;

fn criterion_dir() -> PathBuf {
    if let Some(dir) = std::env::args_os().nth(1) {
        return PathBuf::from(dir);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target").join("criterion")
}

/// The median point estimate in nanoseconds per iteration.
fn median_ns(dir: &Path, group: &str, function: &str) -> Result<f64, String> {
    let path = dir.join(group).join(function).join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    json["median"]["point_estimate"].as_f64().ok_or_else(|| format!("{}: no median.point_estimate", path.display()))
}

fn main() -> ExitCode {
    let dir = criterion_dir();
    let mut missing = Vec::new();
    let mut get = |group: &str, function: &str| match median_ns(&dir, group, function) {
        Ok(ns) => Some(ns),
        Err(e) => {
            missing.push(e);
            None
        }
    };
    let show = |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "-".into());

    println!("decision loop: median ns per decision ({} requests per pass)", REQUESTS as u64);
    println!(
        "{:>8}  {:>10}  {:>13}  {:>11}  {:>12}  {:>10}  {:>12}  {:>12}  {:>15}  {:>17}  {:>15}",
        "windows",
        "cavra",
        "cavra_decider",
        "cavra_keys",
        "plain_loops",
        "segments",
        "cavra/plain",
        "plain/cavra",
        "cavra/segments",
        "decider/segments",
        "keys/segments"
    );
    for windows in [500, 5_000] {
        let group = format!("decision_loop_{windows}");
        let cavra = get(&group, "cavra").map(|ns| ns / REQUESTS);
        let decider = get(&group, "cavra_decider").map(|ns| ns / REQUESTS);
        let keys = get(&group, "cavra_keys").map(|ns| ns / REQUESTS);
        let plain = get(&group, "plain_loops").map(|ns| ns / REQUESTS);
        let segments = get(&group, "segments").map(|ns| ns / REQUESTS);
        let ratio = cavra.zip(plain).map(|(c, p)| c / p);
        let speedup = cavra.zip(plain).map(|(c, p)| p / c);
        // How far cavra is from the hand-written limit (1.0 would be as fast).
        let to_limit = cavra.zip(segments).map(|(c, s)| c / s);
        let decider_to_limit = decider.zip(segments).map(|(d, s)| d / s);
        let keys_to_limit = keys.zip(segments).map(|(k, s)| k / s);
        println!(
            "{windows:>8}  {:>10}  {:>13}  {:>11}  {:>12}  {:>10}  {:>12}  {:>11}x  {:>15}  {:>17}  {:>15}",
            show(cavra, 1),
            show(decider, 1),
            show(keys, 1),
            show(plain, 1),
            show(segments, 1),
            show(ratio, 3),
            show(speedup, 2),
            show(to_limit, 2),
            show(decider_to_limit, 2),
            show(keys_to_limit, 2)
        );
    }
    println!();
    let lines = cavra_benches::LARGE_PACK.lines().count();
    let compile = get("compile", "parse_check_compile_large").map(|ns| ns / 1e6);
    println!("parse + check + compile large.cavra ({lines} lines): {} ms (median)", show(compile, 3));
    for windows in [500, 5_000] {
        let bind = get("compile", &format!("bind_{windows}")).map(|ns| ns / 1e6);
        println!("bind the {windows}-window policy (convert, build indexes, fill the decision table): {} ms (median)", show(bind, 3));
    }

    if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!();
        for m in &missing {
            eprintln!("missing: {m}");
        }
        eprintln!("run `cargo bench -j2 -p cavra-benches --bench decision_loop` first");
        ExitCode::FAILURE
    }
}
