//! `cavra-grammar`: the syntax of the cavra rule language.
//!
//! [`parse`] turns `.cavra` text into an [`ast::Pack`] with byte spans, or
//! [`Diagnostics`] that render as `file:line:col` with a caret. [`format`]
//! prints a pack canonically, keeping its comments. [`read_rule_file`] reads
//! a rule file from disk within a byte limit. Nothing here evaluates.

// A library must not panic on input it did not expect: outside tests, every
// `unwrap` is either real handling or an `expect` naming its invariant.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

// pest_derive without `std` refers to `crate::alloc`.
extern crate alloc;

pub mod ast;
pub mod diagnostic;
pub mod format;
mod parser;
mod source;

pub use diagnostic::{Diagnostic, Diagnostics, JsonDiagnostic, Severity};
pub use format::format;
pub use parser::{parse, parse_at, KEYWORDS};
pub use source::{read_rule_file, ReadError, ReadErrorKind, DEFAULT_MAX_RULE_BYTES};
