//! What one delivery call to a plugin produced, however the plugin runs.
//!
//! Its own module, importing nothing from the crate, because the registry
//! (in-process calls) and process isolation (calls to a child) produce it
//! and the delivery engine consumes it: with the type in `delivery.rs`,
//! those modules would import each other.

use cavra_connector_api::Outcome;

/// What a plugin call produced.
#[derive(Debug)]
pub(crate) enum CallResult {
    Outcome(Outcome),
    /// No outcome before the deadline.
    TimedOut,
    /// The plugin's child process died during the call.
    ProcessExited,
    /// The call could not be made (public-safe reason).
    Unavailable(String),
    /// Deliveries are interrupted (`interrupt_all`): the call was stopped,
    /// abandoned, or not made.
    Interrupted,
    /// The plugin's child process was stopped from outside by this signal
    /// (SIGTERM, SIGINT) during the call: interrupted, not failed.
    Stopped(&'static str),
}
