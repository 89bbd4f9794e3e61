//! Errors as the API answers them: a status, a stable code, a message for
//! the caller, and the outcome the audit log records.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::audit::Note;

/// Boxed: errors travel through every handler's `Result`, and the
/// details are large next to a response.
#[derive(Debug)]
pub struct ApiError(Box<Details>);

#[derive(Debug)]
struct Details {
    status: StatusCode,
    /// Stable, for programs: `unauthorized`, `unknown_workflow`, `rate_limited` ...
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    problems: Vec<String>,
    note: Note,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError(Box::new(Details {
            status,
            code,
            message: message.into(),
            retry_after: None,
            problems: Vec::new(),
            note: Note::default(),
        }))
    }

    pub fn with_note(mut self, note: Note) -> Self {
        self.0.note = note;
        self
    }

    /// Asks the caller to come back after `wait` (`Retry-After`).
    pub fn retry_after(mut self, wait: Duration) -> Self {
        self.0.retry_after = Some(wait);
        self
    }

    /// Each thing wrong with the request, listed in the body.
    pub fn problems(mut self, problems: Vec<String>) -> Self {
        self.0.problems = problems;
        self
    }
}

impl ApiError {
    /// The JSON every error answers with: `{"error": {"code", "message"}}`,
    /// and the `problems` when there are several.
    pub fn body(&self) -> serde_json::Value {
        let details = &self.0;
        let mut body = json!({ "error": { "code": details.code, "message": details.message } });
        if !details.problems.is_empty() {
            body["error"]["problems"] = json!(details.problems);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let details = *self.0;
        let mut response = (details.status, Json(body)).into_response();
        if let Some(wait) = details.retry_after {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        let note = Note {
            outcome: Some(details.code),
            ..details.note
        };
        response.extensions_mut().insert(note);
        response
    }
}
