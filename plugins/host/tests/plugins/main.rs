//! End-to-end tests of the plugin host against real plugin libraries: the
//! bundled connectors, a vendor connector built outside the workspace, and
//! misbehaving fixtures (panicking, aborting, wrong ABI, not a plugin).
//! HTTP connectors talk to recording servers on 127.0.0.1. No test asserts a
//! wall-clock duration, only counts and outcomes.

mod builtins;
mod delivery;
mod isolation;
mod loading;
mod secrets;
mod support;
