//! The app-side check of sidecar-to-app calls (`APP_API_TOKEN`, `dapr.md` §1.8).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::TOKEN_HEADER;

/// The token daprd sends on every call to the app when `APP_API_TOKEN` is set; without one,
/// any caller that reaches the app port is trusted (the sidecar shares the pod).
#[derive(Clone, Default)]
pub struct AppToken(Option<String>);

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AppToken(set)"
        } else {
            "AppToken(none)"
        })
    }
}

impl AppToken {
    /// Checks calls against `token`; `None` or empty accepts every caller.
    pub fn new(token: Option<String>) -> Self {
        Self(token.filter(|token| !token.is_empty()))
    }

    /// From `APP_API_TOKEN`, which the chart mounts from the same Secret as daprd's.
    pub fn from_env() -> Self {
        Self::new(std::env::var("APP_API_TOKEN").ok())
    }

    /// Whether a call carrying `presented` may pass.
    pub fn admits(&self, presented: Option<&[u8]>) -> bool {
        match &self.0 {
            None => true,
            Some(expected) => presented.is_some_and(|given| same(expected.as_bytes(), given)),
        }
    }
}

/// Compares without stopping at the first difference, so timing does not leak the token.
fn same(expected: &[u8], given: &[u8]) -> bool {
    let mut difference = u8::from(expected.len() != given.len());
    for (index, byte) in expected.iter().enumerate() {
        difference |= byte ^ given.get(index).copied().unwrap_or(0);
    }
    difference == 0
}

/// Middleware: 401 for sidecar calls without the matching `dapr-api-token`.
pub(crate) async fn require(
    State(token): State<AppToken>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(TOKEN_HEADER)
        .map(|value| value.as_bytes());
    if token.admits(presented) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "invalid api token").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let token = AppToken::new(Some("s3cret".to_owned()));
        assert!(token.admits(Some(b"s3cret")));
        for wrong in [&b"s3cre"[..], b"s3cret!", b"", b"S3cret"] {
            assert!(!token.admits(Some(wrong)), "{wrong:?}");
        }
        assert!(!token.admits(None));
        assert!(AppToken::new(None).admits(None));
        assert!(
            AppToken::new(Some(String::new())).admits(None),
            "empty means unset"
        );
    }
}
