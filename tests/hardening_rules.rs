//! Hardening of rule files and the authoring commands (findings 6, 9, 10, 11
//! and 17 of the hostile test): rule-file limits, capped diagnostics, UTF-8
//! positions, public-safe `eval` inputs and strict timestamps.
