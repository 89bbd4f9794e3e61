//! Why a call failed, in words for the person reading the report, and
//! whether trying again (here or on another endpoint) can help.

use std::time::Duration;

use crate::policy::ErrorClass;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url} did not answer within {}", humantime::format_duration(*after))]
    Timeout { url: String, after: Duration },
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error("{url} sent something that is not {expected}: {reason}")]
    Malformed {
        url: String,
        /// What was asked for: `a chat completion`, `an embeddings answer`.
        expected: &'static str,
        reason: String,
    },
    #[error("the answer from {url} broke off: {reason}")]
    Interrupted { url: String, reason: String },
}

impl CallError {
    /// The kind of failure, for retry policies; `None` for answers that
    /// sending again cannot change (HTTP 4xx but 408 and 429).
    #[must_use]
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            CallError::Timeout { .. } | CallError::Status { status: 408, .. } => {
                Some(ErrorClass::Timeout)
            }
            CallError::Connect { .. } | CallError::Interrupted { .. } => {
                Some(ErrorClass::Connection)
            }
            CallError::Malformed { .. } => Some(ErrorClass::ServerError),
            CallError::Status { status: 429, .. } => Some(ErrorClass::RateLimited),
            CallError::Status { status, .. } if *status >= 500 => Some(ErrorClass::ServerError),
            CallError::Status { .. } => None,
        }
    }

    /// Whether the endpoint itself looks unwell, so that other endpoints of
    /// the agent should be preferred for a while.
    #[must_use]
    pub fn is_endpoint_fault(&self) -> bool {
        match self {
            CallError::Status { status, .. } => *status >= 500,
            CallError::Connect { .. }
            | CallError::Timeout { .. }
            | CallError::Interrupted { .. }
            | CallError::Malformed { .. } => true,
        }
    }

    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(super) fn from_reqwest(url: &str, err: reqwest::Error) -> Self {
        let url = url.to_string();
        let reason = describe(&err);
        if err.is_connect() {
            CallError::Connect { url, reason }
        } else {
            CallError::Interrupted { url, reason }
        }
    }

    pub(super) async fn from_status(url: &str, response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.text().await.unwrap_or_default();
        CallError::Status {
            url: url.to_string(),
            status,
            message: error_message(&body),
            retry_after,
        }
    }
}

/// The innermost cause: reqwest's own message is only "error sending request".
#[must_use]
pub fn describe(err: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = err;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

/// The `error.message` of an OpenAI-style error body, or the body itself,
/// shortened: a proxy's HTML page should not flood the report.
fn error_message(body: &str) -> String {
    const LIMIT: usize = 300;
    let from_json = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            let error = value.get("error")?;
            error
                .get("message")
                .and_then(|m| m.as_str())
                .or_else(|| error.as_str())
                .map(str::to_string)
        });
    let message = from_json.unwrap_or_else(|| body.trim().to_string());
    if message.is_empty() {
        return "no explanation given".into();
    }
    match message.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

/// `Retry-After` is either a number of seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(parsed > Duration::from_secs(27) && parsed <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn error_bodies_become_short_messages() {
        let llama = r#"{"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}}"#;
        assert_eq!(
            error_message(llama),
            "the request exceeds the available context size"
        );
        assert_eq!(error_message(""), "no explanation given");
        assert_eq!(error_message(&"x".repeat(1000)).chars().count(), 301);
    }

    #[test]
    fn only_answers_that_can_change_are_retried() {
        let status = |status| CallError::Status {
            url: "u".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        assert_eq!(status(429).class(), Some(ErrorClass::RateLimited));
        assert_eq!(status(503).class(), Some(ErrorClass::ServerError));
        assert_eq!(status(408).class(), Some(ErrorClass::Timeout));
        assert_eq!(status(400).class(), None);
        assert_eq!(status(401).class(), None);
        assert!(!status(429).is_endpoint_fault());
    }
}
