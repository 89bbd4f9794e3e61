//! Who is calling: JWT bearer tokens, checked for size, signature,
//! algorithm, expiry, not-before, audience and (when configured) issuer. Only the configured algorithm is accepted, so
//! `alg: none` and algorithm confusion (an HS256 token "signed" with an
//! RSA public key) fail like any bad signature.

use axum::http::{HeaderMap, StatusCode, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::ApiError;

pub enum Auth {
    /// `--insecure-no-auth`: every caller is "anonymous".
    Disabled,
    Jwt {
        key: DecodingKey,
        validation: Box<Validation>,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's `sub`: what the audit log records and rate limits key on.
    pub subject: String,
    /// The token's `workflows` claim: the only workflows it may run; all
    /// when absent.
    pub workflows: Option<Vec<String>>,
}

impl Caller {
    #[must_use]
    pub fn may_run(&self, workflow: &str) -> bool {
        self.workflows
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|name| name == workflow))
    }
}

#[derive(Deserialize)]
struct Claims {
    /// Optional here so that its absence gets its own message.
    sub: Option<String>,
    #[serde(default)]
    workflows: Option<Vec<String>>,
}

impl Auth {
    /// HS256 with a shared secret.
    #[must_use]
    pub fn shared_secret(secret: &[u8], audience: &str, issuer: Option<&str>) -> Self {
        Auth::Jwt {
            key: DecodingKey::from_secret(secret),
            validation: Box::new(validation(Algorithm::HS256, audience, issuer)),
        }
    }

    /// RS256 or ES256 with the issuer's public key (PEM).
    pub fn public_key(
        pem: &[u8],
        algorithm: Algorithm,
        audience: &str,
        issuer: Option<&str>,
    ) -> Result<Self, String> {
        let key = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 => DecodingKey::from_ec_pem(pem),
            other => return Err(format!("{other:?} is not offered; use RS256 or ES256")),
        }
        .map_err(|err| format!("the public key is not a valid {algorithm:?} PEM key: {err}"))?;
        Ok(Auth::Jwt {
            key,
            validation: Box::new(validation(algorithm, audience, issuer)),
        })
    }

    /// How far `exp` and `nbf` may be off (60 s unless set).
    #[must_use]
    pub fn with_leeway(mut self, leeway: std::time::Duration) -> Self {
        if let Auth::Jwt { validation, .. } = &mut self {
            validation.leeway = leeway.as_secs();
        }
        self
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let (key, validation) = match self {
            Auth::Disabled => {
                return Ok(Caller {
                    subject: "anonymous".into(),
                    workflows: None,
                });
            }
            Auth::Jwt { key, validation } => (key, validation),
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer)
            .ok_or_else(|| unauthorized("send a JWT as `Authorization: Bearer <token>`"))?;
        if token.len() > MAX_TOKEN {
            return Err(unauthorized(format!(
                "the token is {} bytes; tokens of more than {MAX_TOKEN} bytes are refused",
                token.len()
            )));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|err| unauthorized(reason(err.kind())))?
            .claims;
        let subject = claims
            .sub
            .filter(|sub| !sub.trim().is_empty())
            .ok_or_else(|| unauthorized("the token has no `sub` claim"))?;
        Ok(Caller {
            subject,
            workflows: claims.workflows,
        })
    }
}

/// The longest token accepted, in bytes: far beyond any real token's
/// claims, far below what would cost the server to decode.
pub const MAX_TOKEN: usize = 8 * 1024;

/// The token of an `Authorization` value: the scheme is case-insensitive
/// (RFC 7235).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn validation(algorithm: Algorithm, audience: &str, issuer: Option<&str>) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[audience]);
    validation.validate_nbf = true;
    match issuer {
        Some(issuer) => {
            validation.set_issuer(&[issuer]);
            validation.set_required_spec_claims(&["exp", "aud", "sub", "iss"]);
        }
        None => validation.set_required_spec_claims(&["exp", "aud", "sub"]),
    }
    validation
}

fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet".into(),
        ErrorKind::InvalidAudience => "the token is meant for another audience".into(),
        ErrorKind::InvalidIssuer => {
            "the token comes from an issuer this server does not trust".into()
        }
        ErrorKind::InvalidSignature => "the token's signature is not valid".into(),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => {
            "the token is signed with an algorithm this server does not accept".into()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
        _ => "the token is not a valid JWT".into(),
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}
