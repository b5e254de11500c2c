//! Who is signed in to the web UI, and the CSRF token every form carries.
//!
//! The session is the same HS256 token the REST API takes (contract §2.12), kept in an HttpOnly,
//! SameSite=Lax cookie, so the UI and the API share one identity model. CSRF uses a second
//! random cookie (double submit): a form or htmx request is accepted only when the `csrf` field
//! or `X-CSRF-Token` header equals it, which a cross-site page can neither read nor set.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use ring::rand::{SecureRandom, SystemRandom};

use super::error::UiError;
use crate::AppState;
pub(crate) use crate::auth::{SESSION_COOKIE, cookie};
use crate::error::ApiError;

/// Name of the cookie holding the CSRF token.
pub const CSRF_COOKIE: &str = "taskstream_csrf";
/// Form field and header that must repeat the CSRF cookie.
pub const CSRF_FIELD: &str = "csrf";
const CSRF_HEADER: &str = "x-csrf-token";
/// How long a sign-in lasts.
pub const SESSION_DAYS: i64 = 7;

/// A `Set-Cookie` value with the attributes every taskstream cookie has.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}");
    // Names and values are ASCII we produced (base64url tokens, hex), so this cannot fail;
    // an empty cookie is the harmless fallback.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn random_hex(bytes: usize) -> Option<String> {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buffer).ok()?;
    Some(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The CSRF token of this request (from its cookie, or fresh and set on the response).
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

/// Gives every UI request a CSRF token, setting the cookie when the browser has none yet.
pub async fn csrf_cookie(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let mut request = request;
    let existing = cookie(request.headers(), CSRF_COOKIE)
        .filter(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let (token, fresh) = match existing {
        Some(token) => (token, false),
        None => (random_hex(32).unwrap_or_default(), true),
    };
    request.extensions_mut().insert(CsrfToken(token.clone()));
    let secure = app.ui.behind_https;
    let mut response = next.run(request).await;
    if fresh && !token.is_empty() {
        response.headers_mut().append(
            SET_COOKIE,
            set_cookie(CSRF_COOKIE, &token, 60 * 60 * 24 * 365, secure),
        );
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .ok_or(UiError::Csrf)
    }
}

impl CsrfToken {
    /// Accepts a state-changing request only when it repeats the token (form field or header).
    pub fn check(&self, headers: &HeaderMap, form_value: Option<&str>) -> Result<(), UiError> {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .or(form_value)
            .unwrap_or("");
        let expected = self.0.as_bytes();
        if !expected.is_empty() && same_bytes(sent.as_bytes(), expected) {
            Ok(())
        } else {
            Err(UiError::Csrf)
        }
    }
}

/// Equality that takes as long whichever byte differs, so the token cannot be guessed byte by
/// byte from response times.
fn same_bytes(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// A signed-in user of the web UI.
#[derive(Clone, Debug)]
pub struct Session {
    pub user_id: String,
    pub email: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map(|path| path.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|token| !token.is_empty())
        else {
            return Err(UiError::SignIn { next });
        };
        // An expired, forged or signed-out token means signing in again; only a store failure
        // is an error.
        let user_id = match crate::auth::verify_jwt(state, token).await {
            Ok(jwt) => jwt.sub,
            Err(ApiError::Unauthorized(_)) => return Err(UiError::SignIn { next }),
            Err(error) => return Err(UiError::Internal(error.to_string())),
        };
        // A token for an account that no longer exists (or was signed for an API-only user)
        // does not open the UI.
        match state.accounts.account(&user_id).await {
            Ok(Some(account)) => Ok(Session {
                user_id,
                email: account.email,
            }),
            Ok(None) => Err(UiError::SignIn { next }),
            Err(error) => Err(UiError::Internal(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_check_needs_the_exact_token() {
        let token = CsrfToken("ab".repeat(32));
        let headers = HeaderMap::new();
        assert!(token.check(&headers, Some(&"ab".repeat(32))).is_ok());
        assert!(token.check(&headers, Some("ab")).is_err());
        assert!(token.check(&headers, None).is_err());
        let empty = CsrfToken(String::new());
        assert!(empty.check(&headers, Some("")).is_err());
    }

    #[test]
    fn cookies_are_http_only_and_same_site() {
        let value = set_cookie(SESSION_COOKIE, "t", 60, true);
        let text = value.to_str().unwrap_or("");
        assert!(text.contains("HttpOnly"));
        assert!(text.contains("SameSite=Lax"));
        assert!(text.ends_with("; Secure"));
        assert!(
            !set_cookie(SESSION_COOKIE, "t", 60, false)
                .to_str()
                .unwrap_or("")
                .contains("Secure")
        );
    }
}
