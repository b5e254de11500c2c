//! Bearer JWT authentication, byte-compatible with the reference's error details.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// Verifies HS256 tokens signed with the secret shared with the frontend (`BETTER_AUTH_SECRET`).
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<Value>,
}

impl JwtVerifier {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256; exp and nbf are checked when present, with no leeway (like the reference).
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The user id (`sub`) of a valid token.
    pub fn verify(&self, token: &str) -> Result<String, ApiError> {
        let data =
            decode::<Claims>(token, &self.key, &self.validation).map_err(|error| {
                match error.kind() {
                    ErrorKind::ExpiredSignature => ApiError::Unauthorized("Token expired"),
                    _ => ApiError::Unauthorized("Invalid token"),
                }
            })?;
        match data.claims.sub {
            Some(Value::String(sub)) if !sub.is_empty() => Ok(sub),
            _ => Err(ApiError::Unauthorized("Invalid token payload")),
        }
    }
}

/// The authenticated caller; every task query is scoped to this id.
pub struct AuthUser(pub String);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .trim();
        let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
        let credentials = credentials.trim();
        if scheme.is_empty() || credentials.is_empty() {
            return Err(ApiError::Unauthorized("Not authenticated"));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized("Invalid authentication credentials"));
        }
        state.auth.verify(credentials).map(AuthUser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn token(claims: Value, alg: Algorithm, secret: &[u8]) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("encode")
    }

    fn outcome(verifier: &JwtVerifier, token: &str) -> Result<String, &'static str> {
        verifier.verify(token).map_err(|error| match error {
            ApiError::Unauthorized(message) => message,
            _ => "other",
        })
    }

    #[test]
    fn classifies_tokens_like_the_reference() {
        let verifier = JwtVerifier::new(b"secret");
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            outcome(
                &verifier,
                &token(
                    json!({"sub": "u1", "exp": now + 60}),
                    Algorithm::HS256,
                    b"secret"
                )
            ),
            Ok("u1".into())
        );
        assert_eq!(
            outcome(
                &verifier,
                &token(json!({"sub": "u1"}), Algorithm::HS256, b"secret")
            ),
            Ok("u1".into())
        );
        assert_eq!(
            outcome(
                &verifier,
                &token(
                    json!({"sub": "u1", "exp": now - 1}),
                    Algorithm::HS256,
                    b"secret"
                )
            ),
            Err("Token expired")
        );
        assert_eq!(
            outcome(
                &verifier,
                &token(
                    json!({"sub": "u1", "exp": now + 60}),
                    Algorithm::HS256,
                    b"other"
                )
            ),
            Err("Invalid token")
        );
        assert_eq!(
            outcome(
                &verifier,
                &token(
                    json!({"sub": "u1", "exp": now + 60}),
                    Algorithm::HS512,
                    b"secret"
                )
            ),
            Err("Invalid token")
        );
        assert_eq!(
            outcome(
                &verifier,
                &token(json!({"exp": now + 60}), Algorithm::HS256, b"secret")
            ),
            Err("Invalid token payload")
        );
        assert_eq!(
            outcome(
                &verifier,
                &token(
                    json!({"sub": "", "exp": now + 60}),
                    Algorithm::HS256,
                    b"secret"
                )
            ),
            Err("Invalid token payload")
        );
        assert_eq!(
            outcome(
                &verifier,
                &token(
                    json!({"sub": 7, "exp": now + 60}),
                    Algorithm::HS256,
                    b"secret"
                )
            ),
            Err("Invalid token payload")
        );
        assert_eq!(outcome(&verifier, "not.a.token"), Err("Invalid token"));
        // alg "none": header {"alg":"none"}, payload {"sub":"u1"}, empty signature.
        assert_eq!(
            outcome(&verifier, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9."),
            Err("Invalid token")
        );
    }
}
