//! `cavra`: the command-line front end. clap arguments are converted to the
//! application's typed requests at the edge (`runtime`), `cavra-app` does the
//! work, and the record is printed (`output`); errors become exit codes in
//! one place ([`fail`]). `cavra api` hands its settings to `cavra-api`.
//! [`run`] takes the arguments and output streams so that tests drive the
//! real CLI in-process.

mod authoring;
mod demo;
mod diff;
mod generate;
mod help;
mod output;
mod rule_tests;
mod runtime;
mod serve;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// Exit codes shared by all commands: the README's table ("Exit codes"),
/// checked row by row by `tests/exit_codes.rs`. Commands return these
/// constants; application errors get theirs in [`fail`], clap's in [`run`].
pub mod exit {
    /// Success (`eval` succeeds whatever the decision or gate status).
    pub const OK: i32 = 0;
    /// Rule errors, failing rule tests, unformatted files, a pack that fails
    /// while deciding, a failed delivery attempt, two plugins claiming one provider.
    pub const FAILED: i32 = 1;
    /// The caller's mistake: bad usage (an unknown or missing flag or input),
    /// an input that cannot be read or used, a store that cannot be reached.
    pub const USAGE: i32 = 2;
    /// A readiness report needs attention, the escalation plan is critical,
    /// or `diff` found a decision that changes (so CI and cron jobs can gate on it).
    pub const NEEDS_ATTENTION: i32 = 3;
    /// cavra itself failed (a bug): `main` exits with it when a command panics.
    pub const INTERNAL: i32 = 70;
}

#[derive(Parser, Debug)]
#[command(
    name = "cavra",
    version,
    about = "Release-governance rules: routing, suppression, escalation and readiness, written as .cavra packs",
    long_about = None,
    after_help = "Examples:\n  cavra test                         run the bundled rule packs' tests\n  cavra check rules/                 check every pack in a folder\n  cavra eval rules/routing.cavra --input policy=examples/routing-policy.json \\\n      --set owner=release-governance --set provider=slack --set schedule_id=s1 \\\n      --set schedule_status=due_soon --at 2026-05-21T19:00:00Z --explain"
)]
struct Cli {
    /// Colour diagnostics: auto (when stderr is a terminal), always or never.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(crate) enum ErrorFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The main job on the embedded defaults: production readiness and the stored
    /// rollback-drill notification plan, for the bundled sample documents.
    #[command(
        after_help = "Writes the bundled samples to .cavra/examples/ (next to the store), runs\n`runtime production-readiness` and `runtime go-rollback-drill-notification-plan` on them at\n2026-05-21T19:00:00Z (the moment the samples describe; --at changes it), and stores the plan.\n\nExamples:\n  cavra demo\n  cavra demo --at 2026-05-22T03:00:00Z --store /tmp/cavra.db"
    )]
    Demo {
        /// The clock (RFC 3339 with an offset).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The store: a SQLite file, or a postgres:// URL.
        #[arg(long, env = "CAVRA_STORE", hide_env_values = true, value_name = "FILE|URL", default_value = ".cavra/cavra.db")]
        store: PathBuf,
    },
    /// Parse and type-check packs; print errors and warnings.
    #[command(
        after_help = "Exit status: 0 when every pack checks (warnings allowed), 1 on errors.\n\nExamples:\n  cavra check rules/\n  cavra check rules/routing.cavra --error-format json"
    )]
    Check {
        /// Pack files or folders (searched for *.cavra).
        #[arg(required_unless_present = "rules")]
        paths: Vec<PathBuf>,
        /// A rules folder for the runtime commands' `--rules`: also checks that it holds every pack
        /// they need, each declaring what they use (docs/language.md, "Pack contracts").
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
        /// How to print diagnostics.
        #[arg(long, value_enum, default_value_t = ErrorFormat::Human)]
        error_format: ErrorFormat,
        /// Treat warnings as errors.
        #[arg(long)]
        deny_warnings: bool,
        #[command(flatten)]
        limits: authoring::RuleLimits,
    },
    /// Bind a pack to inputs and evaluate its decisions and readiness gates once.
    #[command(
        after_help = "Inputs are JSON documents (--input NAME=FILE) or values (--set NAME=VALUE, where VALUE is JSON\nor else plain text). The input `now` is the clock: --at sets it, otherwise the current time.\n\nExamples:\n  cavra eval rules/routing.cavra --input policy=examples/routing-policy.json \\\n      --set owner=release-governance --set provider=slack --set schedule_id=s1 \\\n      --set schedule_status=due_soon --at 2026-05-21T19:00:00Z --json"
    )]
    Eval {
        /// The pack to evaluate.
        pack: PathBuf,
        /// An input document: NAME=FILE.json.
        #[arg(long = "input", value_name = "NAME=FILE")]
        inputs: Vec<String>,
        /// An input value: NAME=VALUE (JSON, or plain text when it is not JSON).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        sets: Vec<String>,
        /// Only this decision or readiness gate (default: all of them).
        #[arg(long)]
        decision: Option<String>,
        /// The clock (RFC 3339 with offset); defaults to now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Show each arm tried and the value of each condition.
        #[arg(long)]
        explain: bool,
        #[command(flatten)]
        limits: authoring::RuleLimits,
    },
    /// What a change to a pack or its input documents would do: every decision that changes, when, and why.
    #[command(after_help = diff::DIFF_HELP)]
    Diff(Box<diff::DiffArgs>),
    /// Run rule tests (*.test.toml): expected outcomes, arms and messages.
    #[command(
        after_help = "Without PATH, runs the tests of the rule packs bundled in this binary.\nPrints a line per failure with the difference, `N passed, N failed`, and the arms and\nchecks no case reached. Exit status 1 when a case fails.\n\nExamples:\n  cavra test\n  cavra test rules/\n  cavra test rules/routing.test.toml"
    )]
    Test {
        /// Test files or folders (searched for *.test.toml).
        paths: Vec<PathBuf>,
        /// Print every case, not only failures.
        #[arg(long, short)]
        verbose: bool,
        #[command(flatten)]
        limits: authoring::RuleLimits,
    },
    /// Serve the runtime commands, rule packs and the Evidence Console over HTTP.
    #[command(after_help = serve::API_HELP)]
    Api(Box<serve::ApiArgs>),
    /// The go-backend commands: readiness reports, go-pilot-evaluate, and rollback-drill notifications.
    #[command(
        after_help = "Readiness reports and the notification plan read the public evidence documents named by their\n--*-path flags or environment variables (CAVRA_GO_ROLLBACK_PLAN, ...); decisions come from the\nbundled rule packs, or --rules DIR. Each command's --help lists its flags and shows examples.\n\nExamples:\n  cavra runtime production-readiness --mode promoted --at 2026-05-21T19:00:00Z\n  cavra runtime go-rollback-drill-notification-plan --mode promoted \\\n      --rollback-drill-schedule-path examples/rollback-drill-schedule.json \\\n      --routing-policy examples/routing-policy.json --at 2026-05-21T19:00:00Z\n  cavra runtime go-rollback-drill-escalation-plan --json\n  cavra runtime go-pilot-evaluate execute_command 'rm -rf /'"
    )]
    Runtime {
        #[command(subcommand)]
        command: Box<runtime::RuntimeCommand>,
    },
    /// Connectors: built in or plugin files, what is loaded, shadowed or refused, and why.
    #[command(after_help = "Examples:\n  cavra plugins list\n  cavra plugins list --json")]
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Runs one plugin library for a parent cavra (`--plugin-isolation process`); speaks JSON lines on stdin/stdout.
    #[command(hide = true)]
    PluginChild {
        /// The plugin library.
        #[arg(required_unless_present = "builtin", conflicts_with = "builtin")]
        path: Option<PathBuf>,
        /// Serve the built-in connector of this name instead of a library.
        #[arg(long, value_name = "NAME")]
        builtin: Option<String>,
    },
    /// Print a shell completion script (bash, zsh or fish) for cavra's commands and flags.
    #[command(
        after_help = "Examples:\n  cavra completions bash > /etc/bash_completion.d/cavra\n  cavra completions zsh > ~/.zfunc/_cavra\n  cavra completions fish > ~/.config/fish/completions/cavra.fish"
    )]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: generate::Shell,
    },
    /// Print the man page (roff) of cavra and its commands.
    #[command(
        after_help = "Without --dir, prints cavra(1) to stdout; with it, writes cavra.1 and a page per command\n(cavra-runtime-go-rollback-readiness.1, ...) into the folder.\n\nExamples:\n  cavra manpage | man -l -\n  cavra manpage --dir /usr/local/share/man/man1"
    )]
    Manpage {
        /// Write a page per command into this folder instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Format packs canonically (comments are kept).
    #[command(after_help = "Examples:\n  cavra fmt rules/\n  cavra fmt --check rules/      exit 1 if a file is not formatted")]
    Fmt {
        /// Pack files or folders (searched for *.cavra).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Do not write; exit 1 when a file would change.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        limits: authoring::RuleLimits,
    },
    /// Run the language server for editors: the Language Server Protocol on stdin and stdout.
    #[command(after_help = "Diagnostics as you type (the codes and messages of `cavra check`), hover with types, go to
definition (across modules), completion of fields, names, keywords and functions, the outline,
and formatting (`cavra fmt`). Editors start it themselves: editors/vscode has a VS Code extension.

Examples:
  cavra lsp")]
    Lsp,
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// List the connectors: the built-in ones and the plugin files of --plugin-dir / CAVRA_PLUGIN_PATH
    /// (else next to the binary), where each runs, the folders searched, and every file refused or shadowed.
    #[command(
        after_help = "Exit status: 0, 1 when two plugin files claim one provider, 2 when CAVRA_CONNECTOR_CONFIG cannot be read.\n\nExamples:\n  cavra plugins list\n  cavra plugins list --plugin-dir ./vendor-plugins --plugin-override slack --json"
    )]
    List(runtime::ListArgs),
}

/// Output streams and settings for one invocation.
pub(crate) struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub color: bool,
}

/// Runs the CLI with `args` (including the program name) and returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>, out: &mut dyn Write, err: &mut dyn Write, stderr_is_terminal: bool) -> i32 {
    let mut command = help::laid_out(Cli::command());
    let parsed = command.try_get_matches_from_mut(args).and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command)));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let rendered = if stderr_is_terminal && code == exit::USAGE { e.render().ansi().to_string() } else { e.render().to_string() };
            if e.use_stderr() {
                let _ = write!(err, "{rendered}");
            } else {
                let _ = write!(out, "{rendered}");
            }
            return code;
        }
    };
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => stderr_is_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut io = Io { out, err, color };
    match cli.command {
        Command::Check { paths, rules, error_format, deny_warnings, limits } => {
            authoring::check(&mut io, &paths, rules.as_deref(), error_format, deny_warnings, limits)
        }
        Command::Eval { pack, inputs, sets, decision, at, json, explain, limits } => {
            authoring::eval(&mut io, authoring::EvalArgs { pack, inputs, sets, decision, at, json, explain }, limits)
        }
        Command::Diff(args) => diff::run(&mut io, *args),
        Command::Test { paths, verbose, limits } => rule_tests::run(&mut io, &paths, verbose, limits),
        Command::Fmt { paths, check, limits } => authoring::fmt(&mut io, &paths, check, limits),
        Command::Lsp => match cavra_lsp::run_stdio() {
            Ok(()) => exit::OK,
            Err(e) => {
                let _ = writeln!(io.err, "error: {e}");
                exit::FAILED
            }
        },
        Command::Runtime { command } => runtime::run(&mut io, *command),
        Command::Api(args) => serve::run(&mut io, *args),
        Command::Plugins { command: PluginsCommand::List(args) } => runtime::list_plugins(&mut io, &args),
        Command::PluginChild { path, builtin } => {
            let _ = io.out.flush();
            let served = match (path, builtin) {
                (_, Some(name)) => cavra_app::connectors::run_builtin_child(&name),
                (Some(path), None) => cavra_app::deliver::run_child(&path),
                (None, None) => std::process::ExitCode::FAILURE,
            };
            if served == std::process::ExitCode::SUCCESS {
                exit::OK
            } else {
                exit::FAILED
            }
        }
        Command::Demo { at, store } => demo::run(&mut io, at.as_deref(), &store),
        Command::Completions { shell } => generate::completions(&mut io, Cli::command(), shell),
        Command::Manpage { dir } => generate::manpage(&mut io, Cli::command(), dir.as_deref()),
    }
}

/// Prints an application error and returns its exit code: the one place
/// where the CLI maps errors. Every error of the application is the
/// operator's to fix before the command can run, so all exit 2 (a failed
/// rule test, an unformatted file or a failed delivery exit 1 elsewhere).
pub(crate) fn fail(io: &mut Io, e: &cavra_app::AppError) -> i32 {
    use cavra_app::AppError;
    let code = match e {
        AppError::Input { .. } | AppError::NotPublicSafe { .. } | AppError::Pack(_) | AppError::Evaluation(_) | AppError::Store(_) | AppError::Plugin(_) => {
            exit::USAGE
        }
    };
    let _ = writeln!(io.err, "error: {}", render_error(e));
    code
}

/// An error's message with its fields named as the CLI names them.
pub(crate) fn render_error(e: &cavra_app::AppError) -> String {
    e.render(|field| match (field.name.as_ref(), field.positional) {
        (name, true) => name.to_uppercase(),
        // The mode is as often set by its environment variable.
        ("mode", false) => "--mode / CAVRA_GO_BACKEND_MODE".to_string(),
        (name, false) => format!("--{}", name.replace('_', "-")),
    })
}
