//! Authentication: Bearer JWTs (byte-compatible with the reference's error details), personal
//! API tokens (`tsk_…`), and the UI's session cookie for reads.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use taskstream_engine::accounts::TOKEN_PREFIX;

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

/// Signs the HS256 tokens `POST /api/auth/token` and the UI hand out, with the same secret
/// [`JwtVerifier`] checks.
pub struct TokenSigner {
    key: EncodingKey,
}

#[derive(Serialize)]
struct SignedClaims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: EncodingKey::from_secret(secret),
        }
    }

    /// A token for `sub` that expires `ttl` from now.
    pub fn sign(&self, sub: &str, ttl: chrono::Duration) -> String {
        let issued = chrono::Utc::now().timestamp();
        let claims = SignedClaims {
            sub,
            iat: issued,
            exp: issued.saturating_add(ttl.num_seconds()),
        };
        // HS256 with an HMAC key over three plain fields has no failure mode: encoding errors
        // come only from unserialisable claims or an RSA/EC key of the wrong kind.
        #[allow(clippy::expect_used)]
        encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .expect("HS256 signing of plain claims cannot fail")
    }
}

/// Name of the cookie holding the UI's session JWT; also accepted for `GET`/`HEAD` API calls
/// (the browser's `EventSource` cannot send an `Authorization` header).
pub const SESSION_COOKIE: &str = "taskstream_session";

/// The value of cookie `name`, from every `Cookie` header of the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

/// The authenticated caller; every task query is scoped to this id.
///
/// Accepted credentials, in order: `Authorization: Bearer tsk_…` (a personal token),
/// `Authorization: Bearer <JWT>`, and, only for `GET` and `HEAD` requests without an
/// `Authorization` header, the JWT in the [`SESSION_COOKIE`]. Writes never accept the cookie,
/// so a cross-site form cannot act for a signed-in user.
pub struct AuthUser(pub String);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            let reads = parts.method == Method::GET || parts.method == Method::HEAD;
            return match cookie(&parts.headers, SESSION_COOKIE) {
                Some(token) if reads && !token.is_empty() => state.auth.verify(token).map(AuthUser),
                _ => Err(ApiError::Unauthorized("Not authenticated")),
            };
        };
        let header = header.to_str().unwrap_or("").trim();
        let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
        let credentials = credentials.trim();
        if scheme.is_empty() || credentials.is_empty() {
            return Err(ApiError::Unauthorized("Not authenticated"));
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized("Invalid authentication credentials"));
        }
        if credentials.starts_with(TOKEN_PREFIX) {
            return match state.accounts.verify_api_token(credentials).await {
                Ok(Some(user)) => Ok(AuthUser(user)),
                Ok(None) => Err(ApiError::Unauthorized("Invalid token")),
                Err(error) => Err(error.into()),
            };
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
    fn signed_tokens_verify_with_the_same_secret_and_expire() {
        let signer = TokenSigner::new(b"secret");
        let token = signer.sign("acct-1", chrono::Duration::days(7));
        assert_eq!(
            outcome(&JwtVerifier::new(b"secret"), &token),
            Ok("acct-1".into())
        );
        assert_eq!(
            outcome(&JwtVerifier::new(b"other"), &token),
            Err("Invalid token")
        );
        let expired = signer.sign("acct-1", chrono::Duration::seconds(-10));
        assert_eq!(
            outcome(&JwtVerifier::new(b"secret"), &expired),
            Err("Token expired")
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            "theme=dark; taskstream_session=abc.def.ghi"
                .parse()
                .expect("header"),
        );
        headers.append(COOKIE, "other=1".parse().expect("header"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc.def.ghi"));
        assert_eq!(cookie(&headers, "missing"), None);
        let mut prefixed = HeaderMap::new();
        prefixed.append(COOKIE, "xtaskstream_session=nope".parse().expect("header"));
        assert_eq!(cookie(&prefixed, SESSION_COOKIE), None);
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
