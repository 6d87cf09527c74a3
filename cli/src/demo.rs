//! `cavra demo`: the main job on the embedded defaults, the whole loop.
//! Writes the bundled sample documents next to the store, then runs
//! production readiness, stores the rollback-drill notification plan,
//! delivers its deliverable routes to the local outbox (no network: the
//! demo's own connector configuration sends the sample's providers there),
//! and shows the notifications' state, all through the ordinary commands.
//! Run again, it stores and sends nothing new, and says so.

use crate::authoring::say;
use crate::runtime::DeliverArgs;
use crate::{exit, Io};
use cavra_app::bundled;
use cavra_app::store::{StoreLocation, StoreProvider};
use clap::Parser;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The sample documents describe this moment (examples/README.md): the
/// schedule is due soon and the change freeze is on.
pub(crate) const DEMO_TIME: &str = "2026-05-21T19:00:00Z";

/// The deliver command's arguments, parsed as the CLI parses them.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct DemoDeliver {
    #[command(flatten)]
    args: DeliverArgs,
}

pub(crate) fn run(io: &mut Io, at: Option<&str>, store: &Path) -> i32 {
    // Beside a store file; a database server's samples go to the default store's folder.
    let location = StoreLocation::or_default(Some(store));
    let store_folder = location.folder();
    let folder = store_folder.join("examples");
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
    let outbox = store_folder.join("outbox.jsonl");
    let connectors = match write_connector_config(&folder, &outbox) {
        Ok(path) => path,
        Err(e) => {
            say!(io.err, "error: {}: cannot write the demo's connector configuration: {e}", folder.display());
            return exit::USAGE;
        }
    };
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
    let readiness = run_nested(io, &readiness);
    say!(io.out, "");
    let store_arg = store.display().to_string();
    // A URL's credentials are never printed.
    let shown = match &location {
        StoreLocation::Sqlite(_) => store_arg.clone(),
        StoreLocation::Postgres(..) => "\"$CAVRA_STORE\"".to_string(),
    };
    let policy = sample("routing-policy.json");
    let mut plan =
        vec!["runtime", "go-rollback-drill-notification-plan", "--mode", "promoted", "--routing-policy", &policy, "--store", &store_arg, "--at", &at];
    plan.extend(documents[6..].iter().map(String::as_str));
    let mut nested = vec!["cavra"];
    nested.extend(&plan);
    let planned = run_nested(io, &nested);
    if planned != exit::OK {
        return exit::FAILED;
    }

    say!(io.out, "\n# Delivering the plan's deliverable routes to the local outbox {} (the demo sends every provider there)\n", outbox.display());
    let mut deliver = plan.clone();
    deliver[1] = "go-rollback-drill-notifications-deliver";
    let delivered = match DemoDeliver::try_parse_from(&deliver[2..]) {
        Ok(mut parsed) => {
            parsed.args.plugins.connector_config = Some(connectors);
            crate::runtime::deliver(io, &parsed.args)
        }
        Err(e) => {
            say!(io.err, "error: the demo's delivery arguments: {e}");
            exit::FAILED
        }
    };

    say!(io.out, "\n# The notifications' state afterwards\n");
    let state = run_nested(io, &["cavra", "runtime", "go-rollback-drill-escalation-plan", "--store", &store_arg, "--at", &at]);
    say!(io.out, "\nEverything is stored in {}; list the routes with `cavra runtime go-rollback-drill-routes --store {shown}`.", location.shown());
    // Readiness `needs_attention` and a critical escalation plan (3) are findings, not failures of the demo.
    if readiness == exit::USAGE || delivered != exit::OK || state == exit::USAGE || state == exit::FAILED {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// The demo's connector configuration: the sample's providers, and every
/// other built-in one, go to the outbox file. It holds no secret: a path.
fn write_connector_config(folder: &Path, outbox: &Path) -> std::io::Result<PathBuf> {
    let path = folder.join("demo-connectors.json");
    let config = json!({"connectors": {"outbox": {"path": outbox.display().to_string(), "providers": ["slack", "teams", "webhook", "email"]}}});
    std::fs::write(&path, format!("{config:#}\n"))?;
    Ok(path)
}

fn run_nested(io: &mut Io, argv: &[&str]) -> i32 {
    crate::run(argv.iter().map(Into::into), io.out, io.err, io.color)
}
