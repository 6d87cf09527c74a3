//! `cavra-lsp`: the language server of `.cavra` packs and modules, spoken
//! over stdio by `cavra lsp` (rust-analyzer's `lsp-server` scaffold).
//!
//! Each open document is analysed as the author types
//! ([`cavra_engine::analysis::analyze`], with its modules read as `cavra
//! check` reads them: [`cavra_app::modules::RuleFiles`]); the answers are
//! made from that analysis ([`features`]). The server holds no state but
//! the open documents' text and their latest analysis.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod convert;
mod features;

use cavra_app::modules::RuleFiles;
use cavra_engine::analysis::{analyze, Analysis};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument, Notification as _, PublishDiagnostics};
use lsp_types::request::{Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, Request as _};
use lsp_types::{
    CompletionOptions, CompletionResponse, DocumentSymbolResponse, GotoDefinitionResponse, OneOf, PublishDiagnosticsParams, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, Url,
};
use std::collections::HashMap;

/// Why the server stopped before its client said `exit`.
#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("the language server protocol was broken: {0}")]
    Protocol(#[from] lsp_server::ProtocolError),
    #[error("the connection to the editor failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("a message could not be encoded: {0}")]
    Json(#[from] serde_json::Error),
}

/// Serves on stdin and stdout until the client says `exit`.
pub fn run_stdio() -> Result<(), LspError> {
    let (connection, threads) = Connection::stdio();
    serve(&connection)?;
    drop(connection);
    threads.join()?;
    Ok(())
}

/// What the server offers: full-text sync, hover, definition, completion
/// (also after `.`), the outline and formatting.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions { trigger_characters: Some(vec![".".to_string()]), ..CompletionOptions::default() }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Initializes the connection and answers until `shutdown` and `exit`.
pub fn serve(connection: &Connection) -> Result<(), LspError> {
    connection.initialize(serde_json::to_value(capabilities())?)?;
    let mut server = Server { documents: HashMap::new(), connection };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection.handle_shutdown(&request)? {
                    return Ok(());
                }
                server.request(request)?;
            }
            Message::Notification(notification) => server.notification(notification)?,
            Message::Response(_) => {}
        }
    }
    Ok(())
}

struct Server<'c> {
    /// The open documents, by URI.
    documents: HashMap<Url, Document>,
    connection: &'c Connection,
}

/// An open document: its text, analysed when it was opened, changed or
/// saved (hover and definition answer from that analysis, not a new one).
struct Document {
    text: String,
    analysis: Analysis,
}

impl Server<'_> {
    fn send(&self, message: impl Into<Message>) {
        // A closed channel means the client is gone: the loop ends on its own.
        let _ = self.connection.sender.send(message.into());
    }

    fn notification(&mut self, n: Notification) -> Result<(), LspError> {
        let (uri, text) = match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let params: lsp_types::DidOpenTextDocumentParams = serde_json::from_value(n.params)?;
                (params.text_document.uri, params.text_document.text)
            }
            DidChangeTextDocument::METHOD => {
                let params: lsp_types::DidChangeTextDocumentParams = serde_json::from_value(n.params)?;
                // Full sync: the last change is the whole text.
                let Some(change) = params.content_changes.into_iter().last() else { return Ok(()) };
                (params.text_document.uri, change.text)
            }
            DidSaveTextDocument::METHOD => {
                // Analysed again: a module it reads may have changed on disk.
                let params: lsp_types::DidSaveTextDocumentParams = serde_json::from_value(n.params)?;
                let Some(document) = self.documents.remove(&params.text_document.uri) else { return Ok(()) };
                (params.text_document.uri, document.text)
            }
            DidCloseTextDocument::METHOD => {
                let params: lsp_types::DidCloseTextDocumentParams = serde_json::from_value(n.params)?;
                self.documents.remove(&params.text_document.uri);
                self.publish(params.text_document.uri, Vec::new());
                return Ok(());
            }
            _ => return Ok(()),
        };
        let analysis = analyze_document(&uri, &text);
        for (target, diagnostics) in features::diagnostics(&uri, &text, &analysis) {
            self.publish(target, diagnostics);
        }
        self.documents.insert(uri, Document { text, analysis });
        Ok(())
    }

    fn publish(&self, uri: Url, diagnostics: Vec<lsp_types::Diagnostic>) {
        let params = PublishDiagnosticsParams { uri, diagnostics, version: None };
        self.send(Notification::new(PublishDiagnostics::METHOD.to_string(), params))
    }

    fn request(&mut self, request: Request) -> Result<(), LspError> {
        let id = request.id.clone();
        let result = match request.method.as_str() {
            HoverRequest::METHOD => {
                let params: lsp_types::HoverParams = serde_json::from_value(request.params)?;
                let at = params.text_document_position_params;
                self.with_document(&at.text_document.uri, |_, document| features::hover(&document.text, &document.analysis, at.position))
            }
            GotoDefinition::METHOD => {
                let params: lsp_types::GotoDefinitionParams = serde_json::from_value(request.params)?;
                let at = params.text_document_position_params;
                self.with_document(&at.text_document.uri, |uri, document| {
                    features::definition(uri, &document.text, &document.analysis, at.position).map(GotoDefinitionResponse::Scalar)
                })
            }
            Completion::METHOD => {
                let params: lsp_types::CompletionParams = serde_json::from_value(request.params)?;
                let at = params.text_document_position;
                self.with_document(&at.text_document.uri, |uri, document| {
                    CompletionResponse::Array(features::completion(&document.text, &document.analysis, at.position, |patched| analyze_document(uri, patched)))
                })
            }
            DocumentSymbolRequest::METHOD => {
                let params: lsp_types::DocumentSymbolParams = serde_json::from_value(request.params)?;
                self.with_document(&params.text_document.uri, |uri, document| {
                    let pack = cavra_grammar::parse(&document_name(uri), &document.text).ok()?;
                    Some(DocumentSymbolResponse::Nested(features::symbols(&document.text, &pack)))
                })
            }
            Formatting::METHOD => {
                let params: lsp_types::DocumentFormattingParams = serde_json::from_value(request.params)?;
                self.with_document(&params.text_document.uri, |uri, document| features::formatting(&document.text, &document_name(uri)))
            }
            other => {
                let message = format!("cavra lsp does not answer `{other}`");
                self.send(Response::new_err(id, ErrorCode::MethodNotFound as i32, message));
                return Ok(());
            }
        };
        match result {
            Some(value) => self.send(Response::new_ok(id, value)),
            None => self.send(unknown_document(id)),
        }
        Ok(())
    }

    /// `answer` for an open document, as JSON (`null` when it has none).
    fn with_document<T: serde::Serialize>(&self, uri: &Url, answer: impl FnOnce(&Url, &Document) -> T) -> Option<serde_json::Value> {
        let document = self.documents.get(uri)?;
        Some(serde_json::to_value(answer(uri, document)).unwrap_or(serde_json::Value::Null))
    }
}

fn unknown_document(id: RequestId) -> Response {
    Response::new_err(id, ErrorCode::InvalidParams as i32, "the document is not open (send textDocument/didOpen first)".to_string())
}

/// The name diagnostics and modules see: the document's path when it has one.
fn document_name(uri: &Url) -> String {
    convert::uri_path(uri).unwrap_or_else(|| uri.to_string())
}

/// The document analysed with its modules, read from disk (or bundled) as
/// `cavra check` reads them.
fn analyze_document(uri: &Url, text: &str) -> Analysis {
    let name = document_name(uri);
    let modules = RuleFiles::for_file(std::path::Path::new(&name), None, cavra_grammar::DEFAULT_MAX_RULE_BYTES);
    analyze(&name, text, &modules)
}
