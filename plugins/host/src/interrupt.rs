//! Interrupting every delivery of the process, for a host that must stop
//! (`cavra api` at the end of its shutdown grace).
//!
//! A connector call can be stuck for good (a plugin that loops, a provider
//! that never answers and a plugin that ignores its timeout), and retries
//! with backoff can keep a route busy for minutes. A server told to stop
//! cannot wait for that, nor simply exit: a notification claimed and never
//! recorded would wait for its claim to expire, and the client waiting for
//! the delivery would get no answer. [`interrupt_all`] ends them all at once:
//!
//! * it sets a process-wide flag, for good (the process is about to exit);
//! * it kills every live plugin child process: this module owns each child's
//!   [`Child`] handle from its start until it is reaped, so a kill can never
//!   reach a reused process id;
//! * it wakes every delivery sleeping between attempts or waiting for a
//!   child to be restarted ([`pause`]).
//!
//! The delivery engine then records an `interrupted` attempt, the route's
//! final one, for every call in flight, every retry not made and every route
//! not started, and starts no child and no connector call any more. An
//! in-process connector call cannot be stopped: it is abandoned (as at its
//! deadline), recorded as interrupted, and ends with the process.

use std::collections::BTreeMap;
use std::process::{Child, ExitStatus};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The live plugin children and the flag, behind one lock: a child is
/// either registered before an interrupt (and killed by it) or refused
/// after it, never missed.
struct Live {
    interrupted: bool,
    next_id: u64,
    children: BTreeMap<u64, Child>,
}

static LIVE: Mutex<Live> = Mutex::new(Live { interrupted: false, next_id: 0, children: BTreeMap::new() });
/// Signalled by [`interrupt_all`]; [`pause`] waits on it.
static WAKE: Condvar = Condvar::new();

fn live() -> MutexGuard<'static, Live> {
    // The guarded data stays consistent whatever panicked while holding it.
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Interrupts every delivery of this process, for good: kills every live
/// plugin child process, and makes every delivery in progress or to come
/// record an `interrupted` attempt (final, not a failure) instead of trying,
/// retrying or restarting anything. Returns the number of child processes
/// killed. Meant for a host that is about to exit (see the module docs).
pub fn interrupt_all() -> usize {
    let mut live = live();
    live.interrupted = true;
    let mut killed = 0;
    for child in live.children.values_mut() {
        // Not reaped here: the call waiting on the child sees its pipes
        // close, and reaps it (see `reap`).
        if child.kill().is_ok() {
            killed += 1;
        }
    }
    WAKE.notify_all();
    killed
}

/// Whether [`interrupt_all`] was called.
pub fn interrupted() -> bool {
    live().interrupted
}

/// A registered child process (see [`register`]).
#[derive(Debug)]
pub(crate) struct ChildId(u64);

/// Takes charge of a child just started, unless deliveries are interrupted:
/// then it is killed and reaped at once, and `None` returned.
pub(crate) fn register(mut child: Child) -> Option<ChildId> {
    let mut live = live();
    if live.interrupted {
        drop(live);
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let id = live.next_id;
    live.next_id += 1;
    live.children.insert(id, child);
    Some(ChildId(id))
}

/// Kills (if still running) and reaps a registered child, and returns how
/// it ended (`None` if unknown). It leaves the registry first, under the
/// lock, so no interrupt can signal it once its process id may be reused.
pub(crate) fn reap(id: ChildId) -> Option<ExitStatus> {
    let mut child = live().children.remove(&id.0)?;
    // A child that already exited is a zombie until waited for: the kill
    // changes nothing, and the wait reports how it really ended.
    let _ = child.kill();
    child.wait().ok()
}

/// Sleeps for `duration`, or until [`interrupt_all`]: `false` when
/// deliveries are (or become) interrupted.
pub(crate) fn pause(duration: Duration) -> bool {
    let (live, _) = WAKE.wait_timeout_while(live(), duration, |live| !live.interrupted).unwrap_or_else(PoisonError::into_inner);
    !live.interrupted
}
