//! Authentication: Bearer JWTs (byte-compatible with the reference's error details), personal
//! API tokens (`tsk_…`), and the UI's session cookie for reads.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use chrono::{DateTime, Utc};
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
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    sid: Option<Value>,
}

/// What a valid JWT says about its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedJwt {
    /// The user id.
    pub sub: String,
    /// The sign-in session, in tokens this server signed; the frontend's tokens have none.
    pub sid: Option<String>,
    /// When the token stops being valid anyway (its `exp`).
    pub expires_at: DateTime<Utc>,
}

impl JwtVerifier {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Only HS256, with no leeway (like the reference). `exp` is required and must be a
        // number: without the requirement the crate skips a missing or non-numeric `exp`, so
        // such a token would never expire. `nbf` is checked when present.
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The claims of a valid token. A revoked session is not detected here (that needs the
    /// store): see [`verify_jwt`].
    pub fn verify(&self, token: &str) -> Result<VerifiedJwt, ApiError> {
        let data =
            decode::<Claims>(token, &self.key, &self.validation).map_err(|error| {
                match error.kind() {
                    ErrorKind::ExpiredSignature => ApiError::Unauthorized("Token expired"),
                    _ => ApiError::Unauthorized("Invalid token"),
                }
            })?;
        let Claims { sub, exp, sid } = data.claims;
        let sub = match sub {
            Some(Value::String(sub)) if !sub.is_empty() => sub,
            _ => return Err(ApiError::Unauthorized("Invalid token payload")),
        };
        let sid = match sid {
            None => None,
            Some(Value::String(sid)) if !sid.is_empty() => Some(sid),
            Some(_) => return Err(ApiError::Unauthorized("Invalid token")),
        };
        // The validation above already required a non-negative integer `exp`.
        let exp = exp
            .as_ref()
            .and_then(Value::as_u64)
            .ok_or(ApiError::Unauthorized("Invalid token"))?;
        let expires_at = i64::try_from(exp)
            .ok()
            .and_then(|exp| DateTime::from_timestamp(exp, 0))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(VerifiedJwt {
            sub,
            sid,
            expires_at,
        })
    }
}

/// Verifies a JWT and, when it names a sign-in session, that the session was not ended
/// (`Invalid token` if it was, like any other token that no longer counts). Tokens without a
/// session id (the frontend's, `taskstream token`'s) need no look-up.
pub(crate) async fn verify_jwt(state: &AppState, token: &str) -> Result<VerifiedJwt, ApiError> {
    let jwt = state.auth.verify(token)?;
    if let Some(sid) = &jwt.sid
        && state.accounts.session_revoked(sid).await?
    {
        return Err(ApiError::Unauthorized("Invalid token"));
    }
    Ok(jwt)
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
    /// A random session id (UUID v4), so that signing out can end this token alone.
    sid: String,
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
            sid: uuid::Uuid::new_v4().to_string(),
        };
        // HS256 with an HMAC key over four plain fields has no failure mode: encoding errors
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

/// The authenticated caller's user id; every task query is scoped to it. See [`Caller`] for
/// the credentials accepted.
pub struct AuthUser(pub String);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Caller::from_request_parts(parts, state)
            .await
            .map(|caller| AuthUser(caller.user_id))
    }
}

/// Which credential authenticated a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A personal API token (`tsk_…`).
    PersonalToken,
    /// A JWT, from the `Authorization` header or the session cookie.
    Jwt(VerifiedJwt),
}

/// The authenticated caller and the credential it showed, for the routes where that matters
/// (a personal token may not mint tokens; only a session can be logged out).
///
/// Accepted credentials, in order: `Authorization: Bearer tsk_…` (a personal token),
/// `Authorization: Bearer <JWT>`, and, only for `GET` and `HEAD` requests without an
/// `Authorization` header, the JWT in the [`SESSION_COOKIE`]. Writes never accept the cookie,
/// so a cross-site form cannot act for a signed-in user. A JWT of an ended session is refused.
pub struct Caller {
    pub user_id: String,
    pub credential: Credential,
}

impl Caller {
    fn from_jwt(jwt: VerifiedJwt) -> Self {
        Caller {
            user_id: jwt.sub.clone(),
            credential: Credential::Jwt(jwt),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            let reads = parts.method == Method::GET || parts.method == Method::HEAD;
            return match cookie(&parts.headers, SESSION_COOKIE) {
                Some(token) if reads && !token.is_empty() => {
                    verify_jwt(state, token).await.map(Caller::from_jwt)
                }
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
                Ok(Some(user_id)) => Ok(Caller {
                    user_id,
                    credential: Credential::PersonalToken,
                }),
                Ok(None) => Err(ApiError::Unauthorized("Invalid token")),
                Err(error) => Err(error.into()),
            };
        }
        verify_jwt(state, credentials).await.map(Caller::from_jwt)
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
        verifier
            .verify(token)
            .map(|jwt| jwt.sub)
            .map_err(|error| match error {
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
        let first = JwtVerifier::new(b"secret").verify(&token).ok();
        let second = JwtVerifier::new(b"secret")
            .verify(&signer.sign("acct-1", chrono::Duration::days(7)))
            .ok();
        let sid = |jwt: &Option<VerifiedJwt>| jwt.as_ref().and_then(|jwt| jwt.sid.clone());
        assert!(sid(&first).is_some(), "each signed token names its session");
        assert_ne!(sid(&first), sid(&second), "one session per sign-in");
        let expires = first.map(|jwt| jwt.expires_at - chrono::Utc::now());
        assert!(expires.is_some_and(|left| left > chrono::Duration::days(6)));
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
        // Without a numeric exp a token would never expire: refused.
        for claims in [
            json!({"sub": "u1"}),
            json!({"sub": "u1", "exp": "9999999999"}),
            json!({"sub": "u1", "exp": null}),
            json!({"sub": "u1", "exp": -1}),
            json!({"sub": "u1", "exp": (now + 60) as f64 + 0.5}),
        ] {
            assert_eq!(
                outcome(
                    &verifier,
                    &token(claims.clone(), Algorithm::HS256, b"secret")
                ),
                Err("Invalid token"),
                "{claims}"
            );
        }
        // A session id, when present, is a non-empty string.
        for sid in [json!(7), json!(""), json!(["s"])] {
            assert_eq!(
                outcome(
                    &verifier,
                    &token(
                        json!({"sub": "u1", "exp": now + 60, "sid": sid}),
                        Algorithm::HS256,
                        b"secret"
                    )
                ),
                Err("Invalid token")
            );
        }
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
