//! The runtime error of evaluation: what went wrong and where in the rule
//! text. A leaf, so that the builtins and the evaluator can both fail
//! without one importing the other.

use cavra_grammar::ast::Span;

/// A runtime error: what went wrong and where in the rule text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub span: Span,
    pub message: String,
}

/// Inside the evaluator errors are boxed: they are rare, and a small `Err`
/// keeps every `Result<Value>` on the hot path the size of a `Value`.
pub(crate) type Result<T> = std::result::Result<T, Box<EvalError>>;

impl From<Box<EvalError>> for EvalError {
    fn from(boxed: Box<EvalError>) -> EvalError {
        *boxed
    }
}

#[cold]
pub(crate) fn fail<T>(span: Span, message: impl Into<String>) -> Result<T> {
    Err(Box::new(EvalError { span, message: message.into() }))
}
