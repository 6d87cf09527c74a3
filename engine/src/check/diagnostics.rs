//! The checker's diagnostic codes and the diagnostic shapes several passes
//! share. The codes, as packs and tools see them:
//!
//! * `E0002` an expression too deep once its lets are expanded (`limits.rs`);
//! * `E0100` unknown name, `E0101` unknown field, `E0102` unknown type,
//!   `E0103` unknown function;
//! * `E0200` type mismatch (and other misuse of a construct), `E0201` wrong
//!   number of arguments, `E0202` invalid literal;
//! * `E0300` decision without `otherwise`, `E0301` defined twice, `E0302` a
//!   `let` that refers to itself;
//! * `W0400` unreachable arm, `W0401` unused `let`, `W0402` condition always
//!   false (`lints.rs`);
//! * `E0900`..`E0906` imports of modules (`modules.rs`), and `E0904` for a
//!   decision or gate in a module (`decisions.rs`).

use cavra_grammar::ast::Span;
use cavra_grammar::diagnostic::{line_col, Diagnostic};

/// `E0200` with the label every type mismatch carries.
pub(super) fn type_mismatch(span: Span, message: String) -> Diagnostic {
    Diagnostic::error("E0200", span, message).with_label("type mismatch")
}

/// `E0301` for a second definition at `span`, pointing at the line of the `first`.
pub(super) fn defined_twice(source: &str, span: Span, message: String, first: Span) -> Diagnostic {
    let (line, _) = line_col(source, first.start);
    Diagnostic::error("E0301", span, message).with_label("second definition").with_help(format!("the first definition is on line {line}"))
}
