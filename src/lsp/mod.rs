//! `wfc lsp`: a language server over stdio, for editors.
//!
//! It is built on [`lsp_server`] (the message loop and the JSON-RPC framing,
//! from rust-analyzer) and [`lsp_types`] (the protocol's types). Both are
//! synchronous: a `.wf` file checks in about a millisecond, so every
//! request is answered in turn on one thread, with no async runtime, no
//! cancellation and no locking, and the server stays small.
//!
//! Each change re-checks the open documents with the same loader and
//! [`check`] as `wfc check`, the editor's unsaved text standing in for the
//! files on disk. Requests are answered from the latest check; a file that does not
//! parse still gets its syntax diagnostic, and requests about it answer
//! empty (completion falls back on the latest text that parsed). A request
//! that panics is answered with an error instead of ending the server.
//!
//! [`check`]: crate::check::check

mod complete;
mod convert;
mod diagnostics;
mod documents;
mod hover;
mod navigate;
mod outline;
mod symbols;

use std::panic::{AssertUnwindSafe, catch_unwind};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest,
    PrepareRenameRequest, References, Rename, Request as _,
};
use lsp_types::{
    CompletionOptions, DocumentSymbolResponse, GotoDefinitionResponse, OneOf, PositionEncodingKind,
    PublishDiagnosticsParams, RenameOptions, ServerCapabilities, TextDocumentSyncCapability,
    TextDocumentSyncKind, Uri,
};
use serde_json::Value;

use documents::Documents;

/// Why an editor session ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("the editor did not initialize the server: {0}")]
    Initialize(#[from] lsp_server::ProtocolError),
    #[error("the connection to the editor broke: {0}")]
    Connection(Failure),
    #[error("cannot read from or write to the editor: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves one editor session on stdin/stdout.
pub fn run() -> Result<(), SessionError> {
    let (connection, io_threads) = Connection::stdio();
    let capabilities =
        serde_json::to_value(capabilities()).map_err(|err| SessionError::Connection(err.into()))?;
    connection.initialize(capabilities)?;
    let served = Server::default()
        .serve(&connection)
        .map_err(SessionError::Connection);
    drop(connection);
    io_threads.join()?;
    served
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["{".into(), " ".into(), ">".into()]),
            ..CompletionOptions::default()
        }),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: lsp_types::WorkDoneProgressOptions::default(),
        })),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

#[derive(Default)]
struct Server {
    documents: Documents,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

impl Server {
    /// Until `shutdown` and `exit`.
    fn serve(&mut self, connection: &Connection) -> Result<(), Failure> {
        for message in &connection.receiver {
            match message {
                Message::Request(request) => {
                    if connection.handle_shutdown(&request)? {
                        return Ok(());
                    }
                    let response = self.request(request);
                    connection.sender.send(Message::Response(response))?;
                }
                Message::Notification(notification) => {
                    if notification.method == "exit" {
                        return Err("exit without shutdown".into());
                    }
                    for message in self.notification(notification) {
                        connection.sender.send(message)?;
                    }
                }
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    fn notification(&mut self, notification: Notification) -> Vec<Message> {
        let touched = match notification.method.as_str() {
            DidOpenTextDocument::METHOD => {
                match notification
                    .extract::<lsp_types::DidOpenTextDocumentParams>(DidOpenTextDocument::METHOD)
                {
                    Ok(params) => {
                        let document = params.text_document;
                        self.documents.open(document.uri.clone(), document.text);
                        true
                    }
                    Err(_) => false,
                }
            }
            DidChangeTextDocument::METHOD => {
                match notification.extract::<lsp_types::DidChangeTextDocumentParams>(
                    DidChangeTextDocument::METHOD,
                ) {
                    Ok(params) => {
                        self.documents
                            .change(&params.text_document.uri, params.content_changes);
                        true
                    }
                    Err(_) => false,
                }
            }
            DidSaveTextDocument::METHOD => true,
            DidCloseTextDocument::METHOD => {
                if let Ok(params) = notification
                    .extract::<lsp_types::DidCloseTextDocumentParams>(DidCloseTextDocument::METHOD)
                {
                    let uri = params.text_document.uri;
                    self.documents.close(&uri);
                    let mut messages = vec![publish(uri, Vec::new())];
                    messages.extend(self.recheck());
                    return messages;
                }
                false
            }
            _ => false,
        };
        if touched { self.recheck() } else { Vec::new() }
    }

    /// Checks every open document again (one may import another) and
    /// publishes what each has.
    fn recheck(&mut self) -> Vec<Message> {
        let mut messages = Vec::new();
        for uri in self.documents.uris() {
            let checked = catch_unwind(AssertUnwindSafe(|| {
                self.documents
                    .analyze(&uri)
                    .map(|analysis| diagnostics::diagnostics(&analysis))
            }));
            if let Ok(Some(diagnostics)) = checked {
                messages.push(publish(uri, diagnostics));
            }
        }
        messages
    }

    fn request(&mut self, request: Request) -> Response {
        let id = request.id.clone();
        let method = request.method.clone();
        match catch_unwind(AssertUnwindSafe(|| self.answer(request))) {
            Ok(Ok(value)) => Response::new_ok(id, value),
            Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
            Err(_) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                format!("wfc lsp failed while answering `{method}`"),
            ),
        }
    }

    fn answer(&mut self, request: Request) -> Result<Value, (ErrorCode, String)> {
        let invalid = |err: serde_json::Error| (ErrorCode::InvalidParams, err.to_string());
        let json = |value: Result<Value, serde_json::Error>| {
            value.map_err(|err| (ErrorCode::InternalError, err.to_string()))
        };
        let params = request.params;
        match request.method.as_str() {
            HoverRequest::METHOD => {
                let params: lsp_types::HoverParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let at = params.text_document_position_params;
                let hover = self
                    .analysis(&at.text_document.uri)
                    .and_then(|a| hover::hover(&a, at.position));
                json(serde_json::to_value(hover))
            }
            GotoDefinition::METHOD => {
                let params: lsp_types::GotoDefinitionParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let at = params.text_document_position_params;
                let location = self
                    .analysis(&at.text_document.uri)
                    .and_then(|a| navigate::definition(&a, at.position))
                    .map(GotoDefinitionResponse::Scalar);
                json(serde_json::to_value(location))
            }
            References::METHOD => {
                let params: lsp_types::ReferenceParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let at = params.text_document_position;
                let locations = self
                    .analysis(&at.text_document.uri)
                    .map(|a| {
                        navigate::references(&a, at.position, params.context.include_declaration)
                    })
                    .unwrap_or_default();
                json(serde_json::to_value(locations))
            }
            Completion::METHOD => {
                let params: lsp_types::CompletionParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let at = params.text_document_position;
                let items = self
                    .documents
                    .get(&at.text_document.uri)
                    .map(|document| complete::completion(document, at.position))
                    .unwrap_or_default();
                json(serde_json::to_value(items))
            }
            PrepareRenameRequest::METHOD => {
                let params: lsp_types::TextDocumentPositionParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let range = self
                    .analysis(&params.text_document.uri)
                    .and_then(|a| navigate::prepare_rename(&a, params.position));
                json(serde_json::to_value(range))
            }
            Rename::METHOD => {
                let params: lsp_types::RenameParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let at = params.text_document_position;
                let edit = match self.analysis(&at.text_document.uri) {
                    Some(analysis) => navigate::rename(
                        &analysis,
                        at.position,
                        &params.new_name,
                        &self.documents.texts(),
                    )
                    .map_err(|message| (ErrorCode::InvalidParams, message))?,
                    None => None,
                };
                json(serde_json::to_value(edit))
            }
            DocumentSymbolRequest::METHOD => {
                let params: lsp_types::DocumentSymbolParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let symbols = self
                    .analysis(&params.text_document.uri)
                    .map(|a| outline::symbols(&a))
                    .unwrap_or_default();
                json(serde_json::to_value(DocumentSymbolResponse::Nested(
                    symbols,
                )))
            }
            Formatting::METHOD => {
                let params: lsp_types::DocumentFormattingParams =
                    serde_json::from_value(params).map_err(invalid)?;
                let edits = self
                    .analysis(&params.text_document.uri)
                    .map(|a| outline::format(&a))
                    .unwrap_or_default();
                json(serde_json::to_value(edits))
            }
            other => Err((
                ErrorCode::MethodNotFound,
                format!("wfc lsp does not answer `{other}`"),
            )),
        }
    }

    /// The latest check of an open document.
    fn analysis(&self, uri: &Uri) -> Option<std::sync::Arc<documents::Analysis>> {
        self.documents.get(uri)?.current.clone()
    }
}

fn publish(uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>) -> Message {
    Message::Notification(Notification::new(
        PublishDiagnostics::METHOD.to_string(),
        PublishDiagnosticsParams {
            uri,
            diagnostics,
            version: None,
        },
    ))
}
