//! Process isolation: running each plugin library in a child process.
//!
//! In-process plugins are fast, and their panics are contained, but an
//! `abort`, a segfault or a runaway call takes the whole host with it. With
//! [`Isolation::Process`], each library is loaded by a child process (the
//! host's own binary in a hidden mode, see [`run_child`]) and driven over
//! line-delimited JSON on the child's stdin/stdout:
//!
//! | request (`op`)      | reply (`reply`)                              |
//! |---------------------|----------------------------------------------|
//! | `describe`          | `described` or `refused`                     |
//! | `validate_config`   | `valid` or `invalid`                         |
//! | `target`            | `target`                                     |
//! | `deliver`           | `outcome`                                    |
//!
//! A child that dies fails only the call in flight ("connector process
//! exited"); the next call restarts it, after a backoff that grows with
//! consecutive crashes. A call that exceeds its deadline kills the child.
//! Every child is held by [`crate::interrupt`] from start to reaping, so a
//! host that must stop can kill them all ([`interrupt_all`](crate::interrupt_all)):
//! a call whose child dies after that is interrupted, not failed, and no
//! child is started any more.
//! Requests carry the plugin's configuration section, so the pipe is private
//! to the two processes; nothing is logged.
//!
//! A child never outlives its host, even one killed with `kill -9` in the
//! middle of a connector call that never returns:
//!
//! * the child reads its stdin on a thread of its own, and exits when the
//!   pipe closes (the host is gone: nobody will read a reply), whatever the
//!   connector is doing on the main thread;
//! * on Linux it also asks the kernel for `SIGKILL` when its parent dies
//!   (`PR_SET_PDEATHSIG`). The kernel takes "parent" to mean the *thread*
//!   that spawned the child, so every child is spawned by one supervisor
//!   thread that lives as long as the host process ([`spawn_child`]), never by
//!   the short-lived delivery or blocking-pool thread that needed it.

use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use cavra_connector_api::{DeliveryRequest, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::builtin::{self, Builtin, BUILTIN_ARG};
use crate::call::CallResult;
use crate::interrupt::{self, ChildId};
use crate::loader::{check_description, Description, Library};
use crate::refusal::{Refusal, RefusalKind};

/// How plugins run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Isolation {
    /// In the host process (default): fastest; panics are contained, aborts are not.
    #[default]
    InProcess,
    /// One child process per plugin library: `program args… PLUGIN_PATH`,
    /// which must call [`run_child`] (e.g. `cavra plugin-child PLUGIN_PATH`);
    /// for a built-in connector `program args… --builtin NAME`, which must
    /// call [`run_builtin_child`].
    Process {
        /// The child executable.
        program: PathBuf,
        /// Arguments before the plugin path.
        args: Vec<String>,
    },
}

/// The message of a delivery whose child process died.
pub const PROCESS_EXITED: &str = "connector process exited";

/// Why no plugin process may start: the host interrupted its deliveries.
const INTERRUPTED_START: &str = "the host is shutting down (deliveries interrupted): no plugin process is started";

/// Deadline for describe / validate / target calls.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// First restart delay after a crash; doubles per consecutive crash.
const RESTART_BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Longest restart delay.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a child whose stdin closed lets a connector call in progress
/// finish (an outbox line half written) before it exits anyway.
const ORPHAN_GRACE: Duration = Duration::from_millis(250);

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Request {
    Describe,
    ValidateConfig { config: Value },
    Target { config: Value },
    Deliver { request: Box<DeliveryRequest> },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub(crate) enum Reply {
    Described { description: Description },
    Refused { kind: RefusalKind, reason: String },
    Valid,
    Invalid { message: String },
    Target { target: String },
    Outcome { outcome: WireOutcome },
    BadRequest { message: String },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireKind {
    Delivered,
    RetryableFailure,
    PermanentFailure,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireOutcome {
    kind: WireKind,
    status_code: Option<u16>,
    #[serde(default)]
    message: String,
}

impl From<Outcome> for WireOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Delivered { status_code } => WireOutcome { kind: WireKind::Delivered, status_code, message: String::new() },
            Outcome::RetryableFailure { status_code, message } => WireOutcome { kind: WireKind::RetryableFailure, status_code, message },
            Outcome::PermanentFailure { status_code, message } => WireOutcome { kind: WireKind::PermanentFailure, status_code, message },
        }
    }
}

impl From<WireOutcome> for Outcome {
    fn from(w: WireOutcome) -> Self {
        match w.kind {
            WireKind::Delivered => Outcome::Delivered { status_code: w.status_code },
            WireKind::RetryableFailure => Outcome::RetryableFailure { status_code: w.status_code, message: w.message },
            WireKind::PermanentFailure => Outcome::PermanentFailure { status_code: w.status_code, message: w.message },
        }
    }
}

/// Why a call to a child failed.
#[derive(Debug)]
pub(crate) enum ChildFailure {
    /// The child exited (crashed, aborted) before answering.
    Exited,
    /// No answer before the deadline; the child was killed.
    TimedOut,
    /// The child could not be started, or answered nonsense.
    Broken(String),
    /// Deliveries are interrupted ([`interrupt_all`](crate::interrupt_all)):
    /// the child was killed during the call, or none may be started.
    Interrupted,
    /// The child was stopped from outside by this signal (see [`stop_signal`]).
    Stopped(&'static str),
}

struct Running {
    /// The child process, held by [`crate::interrupt`] until [`stop`] reaps it.
    child: ChildId,
    stdin: ChildStdin,
    replies: Receiver<String>,
}

#[derive(Default)]
struct ChildState {
    running: Option<Running>,
    consecutive_crashes: u32,
    restart_at: Option<Instant>,
}

/// What a child process serves: a plugin file, or a connector built into
/// the host (the child is the host's own binary, so it has them too).
#[derive(Clone, Debug)]
pub(crate) enum ChildSource {
    File(PathBuf),
    Builtin(Builtin),
}

impl ChildSource {
    /// Where its refusals point.
    fn shown_path(&self) -> PathBuf {
        match self {
            ChildSource::File(path) => path.clone(),
            ChildSource::Builtin(builtin) => builtin.shown_path(),
        }
    }

    /// The arguments after `program args…` that name it to the child.
    fn child_args(&self) -> Vec<std::ffi::OsString> {
        match self {
            ChildSource::File(path) => vec![path.clone().into_os_string()],
            ChildSource::Builtin(builtin) => vec![BUILTIN_ARG.into(), builtin.name.into()],
        }
    }
}

/// A plugin library (or built-in connector) served by a child process.
pub(crate) struct ChildPlugin {
    source: ChildSource,
    program: PathBuf,
    args: Vec<String>,
    /// What the first child said; restarted children must say the same.
    expected: Option<Description>,
    state: Mutex<ChildState>,
}

impl ChildPlugin {
    /// Starts a child for `source` and asks it to describe the plugin.
    pub fn start(source: ChildSource, program: &Path, args: &[String]) -> Result<(ChildPlugin, Description), Refusal> {
        let path = source.shown_path();
        let refuse = |kind, reason: String| Refusal { path: path.clone(), kind, reason };
        let mut plugin = ChildPlugin { source, program: program.to_owned(), args: args.to_vec(), expected: None, state: Mutex::new(ChildState::default()) };
        match plugin.call(&Request::Describe, CONTROL_TIMEOUT) {
            Ok(Reply::Described { description }) => {
                check_description(&description).map_err(|reason| refuse(RefusalKind::InitFailed, reason))?;
                plugin.expected = Some(description.clone());
                Ok((plugin, description))
            }
            Ok(Reply::Refused { kind, reason }) => Err(refuse(kind, reason)),
            Ok(_) => Err(refuse(RefusalKind::InitFailed, "the plugin process answered `describe` with something else".into())),
            Err(ChildFailure::Exited) => Err(refuse(RefusalKind::InitFailed, "the plugin process exited while loading the library".into())),
            Err(ChildFailure::TimedOut) => Err(refuse(RefusalKind::InitFailed, "the plugin process did not answer while loading the library".into())),
            Err(ChildFailure::Broken(reason)) => Err(refuse(RefusalKind::InitFailed, reason)),
            Err(failure @ (ChildFailure::Interrupted | ChildFailure::Stopped(_))) => Err(refuse(RefusalKind::InitFailed, describe_failure(&failure))),
        }
    }

    pub fn validate_config(&self, section: &Value) -> Result<(), String> {
        match self.call(&Request::ValidateConfig { config: section.clone() }, CONTROL_TIMEOUT) {
            Ok(Reply::Valid) => Ok(()),
            Ok(Reply::Invalid { message }) => Err(message),
            Ok(_) => Err("the plugin process gave an unexpected answer".into()),
            Err(failure) => Err(format!("could not validate: {}", describe_failure(&failure))),
        }
    }

    pub fn target(&self, section: &Value) -> String {
        match self.call(&Request::Target { config: section.clone() }, CONTROL_TIMEOUT) {
            Ok(Reply::Target { target }) => target,
            _ => String::new(),
        }
    }

    pub fn deliver(&self, request: &DeliveryRequest, deadline: Duration) -> CallResult {
        match self.call(&Request::Deliver { request: Box::new(request.clone()) }, deadline) {
            Ok(Reply::Outcome { outcome }) => CallResult::Outcome(outcome.into()),
            Ok(_) => CallResult::Unavailable("the plugin process gave an unexpected answer".into()),
            Err(ChildFailure::Exited) => CallResult::ProcessExited,
            Err(ChildFailure::TimedOut) => CallResult::TimedOut,
            Err(ChildFailure::Broken(reason)) => CallResult::Unavailable(reason),
            Err(ChildFailure::Interrupted) => CallResult::Interrupted,
            Err(ChildFailure::Stopped(signal)) => CallResult::Stopped(signal),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ChildState> {
        // A panic while holding the lock leaves the state usable: at worst a
        // child that is killed and restarted on the next call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One request/reply exchange, (re)starting the child if needed.
    fn call(&self, request: &Request, deadline: Duration) -> Result<Reply, ChildFailure> {
        let mut state = self.lock();
        // An interrupt killed the child (if any; reaped here): nothing may start again.
        if interrupt::interrupted() {
            if let Some(running) = state.running.take() {
                stop(running);
            }
            return Err(ChildFailure::Interrupted);
        }
        if state.running.is_none() {
            if let Some(at) = state.restart_at.take() {
                if !interrupt::pause(at.saturating_duration_since(Instant::now())) {
                    return Err(ChildFailure::Interrupted);
                }
            }
            let mut running = self.spawn()?;
            if let Some(expected) = &self.expected {
                // A restarted child must still be the plugin we loaded.
                match exchange(&mut running, &Request::Describe, CONTROL_TIMEOUT) {
                    Ok(Reply::Described { description }) if &description == expected => {}
                    Ok(_) => {
                        stop(running);
                        return Err(ChildFailure::Broken("the plugin library changed since it was loaded".into()));
                    }
                    Err(_) if interrupt::interrupted() => {
                        stop(running);
                        return Err(ChildFailure::Interrupted);
                    }
                    Err(failure) => {
                        stop(running);
                        self.note_crash(&mut state);
                        return Err(failure);
                    }
                }
            }
            state.running = Some(running);
        }
        let Some(running) = state.running.as_mut() else {
            return Err(ChildFailure::Broken("the plugin process is not running".into()));
        };
        let failure = match exchange(running, request, deadline) {
            Ok(reply) => {
                state.consecutive_crashes = 0;
                return Ok(reply);
            }
            Err(failure) => failure,
        };
        // Whatever went wrong, this child is done (killed if still running).
        let status = state.running.take().and_then(stop);
        // A child killed by an interrupt did not crash: no failure, no
        // restart backoff. (An answer that came first counted above.)
        if interrupt::interrupted() {
            return Err(ChildFailure::Interrupted);
        }
        match failure {
            ChildFailure::Exited => match status.and_then(stop_signal) {
                Some(signal) => Err(ChildFailure::Stopped(signal)),
                None => {
                    self.note_crash(&mut state);
                    Err(ChildFailure::Exited)
                }
            },
            other => Err(other),
        }
    }

    fn note_crash(&self, state: &mut ChildState) {
        state.consecutive_crashes = state.consecutive_crashes.saturating_add(1);
        let factor = 1u32 << state.consecutive_crashes.saturating_sub(1).min(16);
        state.restart_at = Some(Instant::now() + RESTART_BACKOFF_BASE.saturating_mul(factor).min(RESTART_BACKOFF_MAX));
    }

    /// Starts a child, unless deliveries are interrupted.
    fn spawn(&self) -> Result<Running, ChildFailure> {
        let cannot_start = |e: io::Error| ChildFailure::Broken(format!("cannot start the plugin process: {}", e.kind()));
        let mut child =
            spawn_child(SpawnOrder { program: self.program.clone(), args: self.args.clone(), target: self.source.child_args() }).map_err(cannot_start)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(cannot_start(io::Error::other("child without pipes")));
        };
        // From here the interrupt module holds the child: an interrupt now
        // kills it, and one that came first refuses it.
        let child = interrupt::register(child).ok_or(ChildFailure::Interrupted)?;
        let (tx, replies) = mpsc::channel();
        // The reader thread ends when the child closes stdout (exit or crash),
        // which the caller sees as a disconnected channel.
        let reader = thread::Builder::new().name("cavra-plugin-child-reader".into()).spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        if let Err(e) = reader {
            interrupt::reap(child);
            return Err(cannot_start(e));
        }
        Ok(Running { child, stdin, replies })
    }
}

impl Drop for ChildPlugin {
    fn drop(&mut self) {
        if let Some(running) = self.lock().running.take() {
            stop(running);
        }
    }
}

fn describe_failure(f: &ChildFailure) -> String {
    match f {
        ChildFailure::Exited => PROCESS_EXITED.into(),
        ChildFailure::TimedOut => "the plugin process did not answer in time".into(),
        ChildFailure::Broken(reason) => reason.clone(),
        ChildFailure::Interrupted => INTERRUPTED_START.into(),
        ChildFailure::Stopped(signal) => format!("the plugin process was stopped by {signal}"),
    }
}

fn exchange(running: &mut Running, request: &Request, deadline: Duration) -> Result<Reply, ChildFailure> {
    let line = serde_json::to_string(request).map_err(|_| ChildFailure::Broken("could not encode the request".into()))?;
    // A write error means the child's stdin is closed: it exited.
    if writeln!(running.stdin, "{line}").and_then(|()| running.stdin.flush()).is_err() {
        return Err(ChildFailure::Exited);
    }
    // A deadline too far to represent means "wait as long as it takes".
    let until = Instant::now().checked_add(deadline);
    loop {
        let received = match until {
            Some(until) => running.replies.recv_timeout(until.saturating_duration_since(Instant::now())),
            None => running.replies.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            // Lines that are not replies (should a plugin write to the
            // protocol stream despite the redirection) are skipped, unlogged.
            Ok(line) => {
                if let Ok(reply) = serde_json::from_str::<Reply>(&line) {
                    return Ok(reply);
                }
            }
            Err(RecvTimeoutError::Timeout) => return Err(ChildFailure::TimedOut),
            Err(RecvTimeoutError::Disconnected) => return Err(ChildFailure::Exited),
        }
    }
}

/// Ends a child (killed if still running) and returns how it ended.
fn stop(running: Running) -> Option<ExitStatus> {
    interrupt::reap(running.child)
}

/// The signal, if one that asks a process to stop (SIGTERM, SIGINT) ended
/// the child: sent from outside, by a service manager stopping the whole
/// service (systemd signals every process of its control group) or a
/// terminal's Ctrl-C (the whole foreground process group). That is not the
/// plugin failing: its delivery is interrupted, not failed, and the child is
/// restarted without a crash backoff. Other signals (a crash, the host's own
/// SIGKILL, the OOM killer) stay failures.
#[cfg(unix)]
fn stop_signal(status: ExitStatus) -> Option<&'static str> {
    use std::os::unix::process::ExitStatusExt;
    match status.signal()? {
        libc::SIGTERM => Some("SIGTERM"),
        libc::SIGINT => Some("SIGINT"),
        _ => None,
    }
}

#[cfg(not(unix))]
fn stop_signal(_: ExitStatus) -> Option<&'static str> {
    None
}

/// A child process to start: `program args… target…` (a plugin path, or `--builtin NAME`).
struct SpawnOrder {
    program: PathBuf,
    args: Vec<String>,
    target: Vec<std::ffi::OsString>,
}

/// What the supervisor thread is handed: an order and where to send the child.
type SpawnJob = (SpawnOrder, mpsc::SyncSender<io::Result<Child>>);

/// The supervisor's inbox; `None` until first use (and again if its thread
/// could not be started, so the next spawn tries again).
static SUPERVISOR: Mutex<Option<Sender<SpawnJob>>> = Mutex::new(None);

/// Starts a child process on the supervisor thread, and waits for it.
///
/// The child asks for `PR_SET_PDEATHSIG`, which the kernel fires when the
/// *thread* that forked it ends. Children are restarted from whatever thread
/// needs one (a delivery worker, a tokio blocking-pool thread), and those
/// end long before the host does; spawned there, a healthy child would be
/// killed with its thread. So one thread, started on first use and never
/// ended, forks every child.
fn spawn_child(order: SpawnOrder) -> io::Result<Child> {
    let (reply, started) = mpsc::sync_channel(1);
    let mut job = (order, reply);
    for _ in 0..2 {
        let inbox = supervisor()?;
        match inbox.send(job) {
            Ok(()) => return started.recv().unwrap_or_else(|_| Err(io::Error::other("the plugin supervisor thread stopped"))),
            // The supervisor ended (it never should): start another and retry once.
            Err(mpsc::SendError(returned)) => {
                job = returned;
                *SUPERVISOR.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
        }
    }
    Err(io::Error::other("the plugin supervisor thread stopped"))
}

/// The supervisor's inbox, starting its thread on first use.
fn supervisor() -> io::Result<Sender<SpawnJob>> {
    let mut slot = SUPERVISOR.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(inbox) = slot.as_ref() {
        return Ok(inbox.clone());
    }
    let (inbox, jobs) = mpsc::channel::<SpawnJob>();
    // The static keeps a sender, so `jobs` never runs dry: the thread lives
    // as long as the process, as the parent-death signal needs.
    thread::Builder::new().name("cavra-plugin-supervisor".into()).spawn(move || {
        for (order, reply) in jobs {
            let child = Command::new(&order.program)
                .args(&order.args)
                .args(&order.target)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn();
            // The caller may have gone (it never gives up waiting, but should
            // it): the child would then be unreachable, so do not leave it.
            if let Err(mpsc::SendError(Ok(mut orphan))) = reply.send(child) {
                let _ = orphan.kill();
                let _ = orphan.wait();
            }
        }
    })?;
    *slot = Some(inbox.clone());
    Ok(inbox)
}

/// The child side of [`Isolation::Process`]: loads the plugin at
/// `plugin_path`, then answers requests from stdin on stdout until stdin
/// closes. Expose it as a hidden subcommand (the cavra CLI has
/// `cavra plugin-child PATH`); `cavra-plugin-child` in this crate is the same.
///
/// Anything the plugin itself prints to stdout is redirected to stderr, so it
/// cannot corrupt the protocol.
pub fn run_child(plugin_path: &Path) -> ExitCode {
    serve_child(|| Library::load(plugin_path))
}

/// [`run_child`] for a connector built into this binary
/// (`cavra plugin-child --builtin NAME`, what [`Isolation::Process`] starts
/// for a built-in): `builtins` are the host's, `name` the one to serve.
pub fn run_builtin_child(builtins: &[Builtin], name: &str) -> ExitCode {
    serve_child(|| {
        let builtin = builtins.iter().find(|b| b.name == name);
        let refuse = |kind, reason: String| Refusal { path: builtin::shown_path(name), kind, reason };
        match builtin {
            Some(builtin) => Library::from_module((builtin.module)()).map_err(|(kind, reason)| refuse(kind, reason)),
            None => Err(refuse(RefusalKind::NotAPlugin, format!("this binary has no built-in connector `{name}`"))),
        }
    })
}

/// Answers requests for the connector `load` gives, until stdin closes.
fn serve_child(load: impl FnOnce() -> Result<(Library, Description), Refusal>) -> ExitCode {
    die_with_parent();
    let Ok(mut out) = protocol_output() else {
        return ExitCode::from(2);
    };
    // Watch stdin before loading the library: a plugin whose initialisation
    // never returns must not keep an orphan alive either.
    let Ok(requests) = watch_stdin() else {
        return ExitCode::from(2);
    };
    let loaded = load();
    // Ends when the watcher sees stdin close (and drops its sender).
    for line in requests {
        let reply = match serde_json::from_str::<Request>(line.trim_end()) {
            Ok(request) => answer(&loaded, request),
            // Never echo the request: it may hold configuration.
            Err(_) => Reply::BadRequest { message: "unreadable request".into() },
        };
        let Ok(text) = serde_json::to_string(&reply) else {
            break;
        };
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Reads request lines from stdin on a thread of its own, so that stdin is
/// watched even while a connector call on the main thread never returns.
/// When stdin closes (the host exited, crashed or was killed), the lines end
/// and, after [`ORPHAN_GRACE`] for a call in progress, the process exits:
/// nobody is left to read a reply, and a plugin must not run on unattended.
fn watch_stdin() -> io::Result<Receiver<String>> {
    let (lines, requests) = mpsc::channel();
    thread::Builder::new().name("cavra-plugin-stdin".into()).spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        loop {
            let mut line = String::new();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if lines.send(line).is_err() {
                // The main loop ended first (its reply pipe broke): it is exiting.
                return;
            }
        }
        // An idle main loop sees the channel close and returns normally.
        drop(lines);
        thread::sleep(ORPHAN_GRACE);
        std::process::exit(0);
    })?;
    Ok(requests)
}

/// On Linux, asks the kernel to `SIGKILL` this process when its parent dies:
/// a second line of defence should the stdin watch not run (a plugin that
/// wedges the whole process). Best effort: on failure the stdin watch still
/// ends an orphan. A parent that died before this call closed our stdin, so
/// that race is covered too. See [`spawn_child`] for why the host forks
/// children from one long-lived thread.
#[cfg(target_os = "linux")]
fn die_with_parent() {
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent() {}

fn answer(loaded: &Result<(Library, Description), Refusal>, request: Request) -> Reply {
    let (library, description) = match loaded {
        Ok(loaded) => loaded,
        Err(refusal) => {
            return match request {
                Request::Describe => Reply::Refused { kind: refusal.kind, reason: refusal.reason.clone() },
                Request::ValidateConfig { .. } | Request::Target { .. } => Reply::Invalid { message: "the plugin is not loaded".into() },
                Request::Deliver { .. } => Reply::Outcome { outcome: Outcome::permanent(None, "the plugin is not loaded").into() },
            };
        }
    };
    match request {
        Request::Describe => Reply::Described { description: description.clone() },
        Request::ValidateConfig { config } => match library.validate_config(config.to_string()) {
            Ok(()) => Reply::Valid,
            Err(message) => Reply::Invalid { message },
        },
        Request::Target { config } => Reply::Target { target: library.target(config.to_string()) },
        Request::Deliver { request } => match serde_json::to_string(&request) {
            Ok(json) => Reply::Outcome { outcome: Outcome::from(library.deliver(json)).into() },
            Err(_) => Reply::Outcome { outcome: Outcome::permanent(None, "could not encode the delivery request").into() },
        },
    }
}

/// The stream replies are written to. On Unix it is a duplicate of the
/// original stdout, and stdout itself is pointed at stderr, so that stray
/// `println!`s in a plugin land in the log instead of in the protocol.
///
/// The standard library has no way to point one descriptor at another's
/// file, so the `dup2` is the one unsafe call of the crate, allowed here only.
#[cfg(unix)]
#[allow(unsafe_code)]
fn protocol_output() -> io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    // The same `fcntl(1, F_DUPFD_CLOEXEC, 3)` as by hand, but the duplicate
    // is owned (closed on every early return) without unsafe code.
    let protocol = io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: `dup2` takes two integers and touches no memory of this
    // process; on an invalid descriptor it fails and changes nothing. Fd 1 is
    // re-pointed, atomically, at stderr's file: no Rust value owns fd 1
    // (`std::io::Stdout` writes to it by number and never closes it), so no
    // owner is left with a descriptor that now means something else, and the
    // pipe stdout was stays open through the owned duplicate made above.
    let redirected = unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) };
    if redirected < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(std::fs::File::from(protocol))
}

#[cfg(not(unix))]
fn protocol_output() -> io::Result<io::Stdout> {
    Ok(io::stdout())
}
