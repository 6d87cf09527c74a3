//! `cavra api`: the server's command-line settings, converted at the edge
//! into `cavra-api`'s settings; the server itself lives in `cavra-api`.

use crate::authoring::say;
use crate::runtime::ReportArgs;
use crate::{exit, Io};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

pub(crate) const API_HELP: &str = "Serves the runtime commands as JSON over HTTP, with the same documents and the same output as
the CLI: readiness reports read the documents named by the usual flags and environment variables
(CAVRA_GO_ROLLBACK_PLAN, ...); plans, deliveries and acknowledgements go to --store. The rule
packs are compiled once at start-up; POST /v1/packs/reload recompiles them from --rules (a pack
that fails to check keeps the old set running and the diagnostics are returned).

Access: with CAVRA_API_TOKENS (a file of `sha256:<hex> <reader|operator> <identity>` lines; make
one with --hash-token), reads need a reader token and changes (stored plans, deliver,
acknowledgements, retries, escalation plan, reload) an operator token. Without tokens the server
binds only to loopback.

Logs: one line per request on stderr, key=value text (--json: one JSON object per line; --quiet:
failed requests and server events only). Bodies, documents and tokens are never logged.

Evaluate: POST /runtime/go-pilot/evaluate uses the server's --runtime-path, --policy-path and
--package-dir (checked at start), never paths from the request.

Several instances: give each the same --store postgres://USER:PASSWORD@HOST/DBNAME URL; claims in
the database make every notification delivered once across them (README, \"Running several
instances\"). /readyz answers 503 `store_unavailable` while the database is away and
`store_schema_newer` when its schema is newer than this build.

Shutdown: SIGINT or SIGTERM stops accepting and gives in-flight requests --shutdown-grace-secs to
finish; deliveries still running then are interrupted (plugin children killed, each open
notification recorded as `interrupted` and left pending for the next delivery run), their clients
get the delivery result, and the server exits 0.

Endpoints: GET /healthz, GET /readyz, GET /metrics, GET /console, GET /v1/packs, POST /v1/packs/reload,
POST /v1/packs/{pack}/evaluate, GET /deployment/production-readiness,
GET /runtime/go-pilot/{rollback-readiness|promotion-readiness|rollback-rehearsal|rollback-drills|rollback-drill-schedule},
POST /runtime/go-pilot/evaluate, and under /runtime/go-pilot/rollback-drill-notifications/:
POST plan, POST deliver, GET routes, GET suppression-trends, GET latest-plans, POST simulate,
POST escalation-plan, GET|POST retries, GET connector-recovery, GET policies/{policy_id},
GET|POST {schedule_id}/acknowledgements.

Examples:
  cavra api --listen 127.0.0.1:8000 --routing-policy examples/routing-policy.json \\
      --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\
      --rollback-drill-history-path examples/rollback-drills.json --mode promoted
  printf %s \"$TOKEN\" | cavra api --hash-token --role operator --identity release-lead >> tokens
  CAVRA_API_TOKENS=tokens cavra api --listen 0.0.0.0:8000
  CAVRA_STORE='postgres://cavra:PASSWORD@db.internal/cavra?sslmode=verify-full&sslrootcert=ca.pem' \\
      cavra api --listen 0.0.0.0:8000
  cavra api --runtime-path /opt/cavra/go-runtime-release/bin/cavra-go-runtime \\
      --policy-path /etc/cavra/compiled-policy.json --package-dir /opt/cavra/go-runtime-release \\
      --mode enforce --json";

#[derive(Args, Debug)]
// The server logs requests; it prints no report, so its --json (shared with the reports) says what it does here.
#[command(mut_arg("json", |a| a.help("Log one JSON object per line on stderr instead of key=value text")))]
pub(crate) struct ApiArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// The store for plans, routes, deliveries and acknowledgements: a SQLite file, or a
    /// postgres:// URL shared by several instances (never shown; logs name it postgres://…/DBNAME)
    /// [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", hide_env_values = true, value_name = "FILE|URL")]
    store: Option<PathBuf>,
    /// PostgreSQL store: the most connections this instance holds.
    #[arg(long, env = "CAVRA_STORE_POOL_SIZE", value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=1000))]
    store_pool_size: u32,
    /// PostgreSQL store: how long one statement may run before the server cancels it, in seconds.
    #[arg(long, env = "CAVRA_STORE_STATEMENT_TIMEOUT_SECS", value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    store_statement_timeout_secs: u64,
    /// The routing policy used when a request gives none (public-safe).
    #[arg(long, value_name = "FILE")]
    routing_policy: Option<PathBuf>,
    /// How many days ahead a bound policy's indexes and decision tables answer (recurring
    /// windows are expanded that far); the server binds a policy again before that runs out.
    /// Later instants are still decided, by the full evaluator.
    #[arg(long, env = "CAVRA_BIND_HORIZON_DAYS", value_name = "DAYS", default_value_t = cavra_engine::DEFAULT_HORIZON_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    bind_horizon_days: u32,
    #[command(flatten)]
    plugins: crate::runtime::PluginArgs,
    /// How long a claim on a notification lasts without its heartbeat, in seconds; a
    /// sweeper takes over expired claims every half lease.
    #[arg(long, env = "CAVRA_CLAIM_LEASE_SECS", value_name = "SECS", default_value_t = 60.0)]
    claim_lease_secs: f64,
    /// The largest request body accepted, in bytes (larger ones get 413).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// How long one request may take, in milliseconds (then 503).
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    request_timeout_ms: u64,
    /// How long in-flight requests get to finish after SIGINT/SIGTERM, in seconds (fractions
    /// allowed); deliveries still running then are interrupted and the server exits.
    // Negative numbers parse, so that they get the clear error below rather than clap's.
    #[arg(long, env = "CAVRA_SHUTDOWN_GRACE_SECS", value_name = "SECS", default_value_t = 30.0, allow_negative_numbers = true)]
    shutdown_grace_secs: f64,
    /// The token file: lines `sha256:<hex> <reader|operator> <identity>` (see Access below);
    /// without it, only loopback addresses are allowed.
    #[arg(long, env = "CAVRA_API_TOKENS", value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// An external runtime for POST /runtime/go-pilot/evaluate (as go-pilot-evaluate --runtime-path).
    #[arg(long, value_name = "PROGRAM")]
    runtime_path: Option<PathBuf>,
    /// The compiled policy that runtime enforces (as go-pilot-evaluate --policy-path).
    #[arg(long, value_name = "FILE")]
    policy_path: Option<PathBuf>,
    /// That runtime's release package (as go-pilot-evaluate --package-dir).
    #[arg(long, value_name = "DIR")]
    package_dir: Option<PathBuf>,
    /// Log only failed requests and server events, not every request.
    #[arg(long)]
    quiet: bool,
    /// Print a token file line for the token read on stdin, then exit.
    #[arg(long)]
    hash_token: bool,
    /// With --hash-token: reader or operator.
    #[arg(long, value_name = "ROLE", default_value = "reader", value_parser = ["reader", "operator"])]
    role: String,
    /// With --hash-token: the identity recorded for the token's requests (e.g. who acknowledges).
    #[arg(long, value_name = "NAME", default_value = "operator")]
    identity: String,
    #[command(flatten)]
    report: ReportArgs,
}

pub(crate) fn run(io: &mut Io, args: ApiArgs) -> i32 {
    if args.hash_token {
        let mut token = String::new();
        if let Err(e) = std::io::stdin().read_line(&mut token) {
            say!(io.err, "error: cannot read the token from stdin: {e}");
            return exit::USAGE;
        }
        let token = token.trim_end_matches(['\r', '\n']);
        if token.len() < 16 {
            say!(io.err, "error: the token must have at least 16 characters");
            return exit::USAGE;
        }
        say!(io.out, "{}", cavra_api::token_line(token, &args.role, &args.identity));
        return exit::OK;
    }
    let claim_lease = match crate::runtime::claim_lease(args.claim_lease_secs) {
        Ok(lease) => lease,
        Err(e) => return crate::fail(io, &e),
    };
    let shutdown_grace = match shutdown_grace(args.shutdown_grace_secs) {
        Ok(grace) => grace,
        Err(e) => return crate::fail(io, &e),
    };
    let settings = cavra_api::Settings {
        listen: args.listen,
        store: cavra_app::store::StoreLocation::with_options(
            args.store.as_deref(),
            cavra_app::store::PostgresOptions {
                pool_size: args.store_pool_size,
                statement_timeout: std::time::Duration::from_secs(args.store_statement_timeout_secs),
            },
        ),
        routing_policy: args.routing_policy.clone(),
        evidence: args.report.evidence(),
        rules: args.report.rules(),
        plugins: args.plugins.settings(),
        runtime: args.runtime_path.clone(),
        runtime_files: cavra_app::evaluate::RuntimeFiles { policy_path: args.policy_path.clone(), package_dir: args.package_dir.clone() },
        tokens: args.tokens.clone().filter(|p| !p.as_os_str().is_empty()),
        claim_lease,
        max_body: args.max_body_bytes,
        request_timeout: std::time::Duration::from_millis(args.request_timeout_ms.max(1)),
        shutdown_grace,
        log_json: args.report.json(),
        log_requests: !args.quiet,
        bind_horizon_days: args.bind_horizon_days,
    };
    let server = match cavra_api::Server::new(settings) {
        Ok(server) => server,
        Err(message) => {
            say!(io.err, "error: {message}");
            return exit::USAGE;
        }
    };
    let listener = match std::net::TcpListener::bind(args.listen).and_then(|l| l.set_nonblocking(true).map(|_| l)) {
        Ok(l) => l,
        Err(e) => {
            say!(io.err, "error: --listen {}: cannot listen: {e}", args.listen);
            return exit::USAGE;
        }
    };
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| args.listen.to_string());
    say!(io.out, "cavra api listening on http://{local}");
    let _ = io.out.flush();
    match server.serve(listener) {
        Ok(()) => exit::OK,
        Err(e) => {
            say!(io.err, "error: {e}");
            exit::FAILED
        }
    }
}

/// `--shutdown-grace-secs`: 0 or more seconds, fractions allowed (0.5 for
/// tests); a negative, NaN or endless value is refused, naming the flag.
fn shutdown_grace(secs: f64) -> Result<std::time::Duration, cavra_app::AppError> {
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| {
        cavra_app::AppError::field(
            cavra_app::Field::named("shutdown_grace_secs"),
            format!("expected a number of seconds, 0 or more (e.g. 30 or 0.5), got {secs}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::shutdown_grace;
    use std::time::Duration;

    #[test]
    fn the_shutdown_grace_takes_fractions_and_refuses_what_is_no_duration() {
        assert_eq!(shutdown_grace(30.0).ok(), Some(Duration::from_secs(30)));
        assert_eq!(shutdown_grace(0.5).ok(), Some(Duration::from_millis(500)));
        assert_eq!(shutdown_grace(0.0).ok(), Some(Duration::ZERO));
        for bad in [-1.0, -0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let error = shutdown_grace(bad).expect_err("refused").to_string();
            assert!(error.contains("shutdown_grace_secs") && error.contains("expected a number of seconds"), "{bad}: {error}");
        }
    }
}
