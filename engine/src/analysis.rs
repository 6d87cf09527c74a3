//! A pack analysed for an editor: its diagnostics, as `check` reports them,
//! and what the checker learned of its names and expressions ([`Facts`]),
//! whether or not the pack has errors. The language server (`cavra lsp`)
//! answers hover, go to definition and completion from it.

pub use crate::check::{Facts, RecordFacts, Reference, SymbolKind};
use crate::modules::{check_file, file_at, ModuleResolver, SourceFile};
use cavra_grammar::ast;
use cavra_grammar::Diagnostics;
use std::sync::Arc;

/// One analysed file.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The file's syntax tree; `None` when it does not parse.
    pub ast: Option<ast::Pack>,
    pub diagnostics: Diagnostics,
    /// The file's text, then each imported module's: the facts' spans index it.
    pub source: String,
    /// The file (first) and its modules, with where each starts in `source`.
    pub files: Vec<SourceFile>,
    pub facts: Facts,
}

impl Analysis {
    /// The file and the offset in it of a position in [`Analysis::source`].
    pub fn locate(&self, offset: usize) -> Option<(&SourceFile, usize)> {
        file_at(&self.files, offset)
    }
}

/// Parses and checks `source` (the file `name`) with its modules, keeping facts.
pub fn analyze(name: &str, source: &str, modules: &dyn ModuleResolver) -> Analysis {
    let root = SourceFile { name: Arc::from(name), start: 0, len: source.len() };
    match cavra_grammar::parse(name, source) {
        Err(diagnostics) => Analysis { ast: None, diagnostics, source: source.to_string(), files: vec![root], facts: Facts::default() },
        Ok(ast) => {
            let checked = check_file(name, source, ast, modules, true);
            Analysis {
                ast: Some(checked.ast),
                diagnostics: checked.diagnostics,
                source: checked.source,
                files: checked.files,
                facts: checked.facts.unwrap_or_default(),
            }
        }
    }
}

/// The names of the built-in functions, for completion.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    crate::builtins::Builtin::names()
}
