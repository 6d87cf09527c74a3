//! `cavra demo`: the main job on the embedded defaults. Writes the bundled
//! sample documents next to the store, then runs production readiness and the
//! rollback-drill notification plan through the ordinary commands.

use crate::authoring::say;
use crate::{exit, Io};
use cavra_app::bundled;
use cavra_app::store::{StoreLocation, StoreProvider};
use std::path::{Path, PathBuf};

/// The sample documents describe this moment (examples/README.md): the
/// schedule is due soon and the change freeze is on.
pub(crate) const DEMO_TIME: &str = "2026-05-21T19:00:00Z";

pub(crate) fn run(io: &mut Io, at: Option<&str>, store: &Path) -> i32 {
    // Beside a store file; a database server's samples go to the default store's folder.
    let location = StoreLocation::or_default(Some(store));
    let folder = location.folder().join("examples");
    if let Err(e) = std::fs::create_dir_all(&folder) {
        say!(io.err, "error: {}: cannot create the folder for the samples: {e}", folder.display());
        return exit::USAGE;
    }
    let mut paths: Vec<(String, PathBuf)> = Vec::new();
    for name in bundled::list(".json").into_iter().filter(|p| p.starts_with("examples/")) {
        let file = name.trim_start_matches("examples/");
        let path = folder.join(file);
        if let Err(e) = std::fs::write(&path, bundled::get(name).unwrap_or_default()) {
            say!(io.err, "error: {}: cannot write the sample: {e}", path.display());
            return exit::USAGE;
        }
        paths.push((file.to_string(), path));
    }
    let sample = |file: &str| paths.iter().find(|(f, _)| f == file).map(|(_, p)| p.display().to_string()).unwrap_or_default();
    let at = at.unwrap_or(DEMO_TIME).to_string();
    let documents = [
        "--rollback-plan-path".to_string(),
        sample("rollback-plan.json"),
        "--promotion-evidence-path".into(),
        sample("promotion-evidence.json"),
        "--rollback-rehearsal-path".into(),
        sample("rollback-rehearsal.json"),
        "--rollback-drill-history-path".into(),
        sample("rollback-drills.json"),
        "--rollback-drill-schedule-path".into(),
        sample("rollback-drill-schedule.json"),
    ];
    say!(io.out, "# cavra demo at {at}: the bundled rule packs on the sample documents in {}\n", folder.display());
    let mut readiness = vec!["cavra", "runtime", "production-readiness", "--mode", "promoted", "--at", &at];
    readiness.extend(documents.iter().map(String::as_str));
    let first = run_nested(io, &readiness);
    say!(io.out, "");
    let store_arg = store.display().to_string();
    // A URL's credentials are never printed.
    let shown = match &location {
        StoreLocation::Sqlite(_) => store_arg.clone(),
        StoreLocation::Postgres(..) => "\"$CAVRA_STORE\"".to_string(),
    };
    let policy = sample("routing-policy.json");
    let mut plan =
        vec!["cavra", "runtime", "go-rollback-drill-notification-plan", "--mode", "promoted", "--routing-policy", &policy, "--store", &store_arg, "--at", &at];
    plan.extend(documents[6..].iter().map(String::as_str));
    let second = run_nested(io, &plan);
    if second == exit::OK {
        say!(io.out, "\nThe plan is stored in {}; list its routes with `cavra runtime go-rollback-drill-routes --store {shown}`.", location.shown());
    }
    // Readiness `needs_attention` (3) is a finding, not a failure of the demo.
    if first == exit::USAGE || second != exit::OK {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn run_nested(io: &mut Io, argv: &[&str]) -> i32 {
    crate::run(argv.iter().map(Into::into), io.out, io.err, io.color)
}
