//! Signing up, in and out, the password, and personal API tokens.

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::net::SocketAddr;
use taskstream_engine::accounts::AccountError;

use super::error::UiError;
use super::form::Form;
use super::pages::{THEME_COOKIE, settings_page};
use super::session::{CsrfToken, SESSION_COOKIE, SESSION_DAYS, Session, cookie, set_cookie};
use crate::AppState;
use crate::extract::QueryPairs;

#[derive(Template)]
#[template(path = "login.html")]
struct SignInPage {
    /// "login" or "signup".
    mode: &'static str,
    csrf: String,
    email: String,
    next: String,
    error: Option<String>,
    signup_open: bool,
    theme: String,
    asset_version: &'static str,
}

/// Longest `next` kept; anything longer is not a link of this site.
const NEXT_MAX_BYTES: usize = 2048;

/// Only paths on this site are followed after signing in (no open redirect); anything else is
/// `/`. Browsers read a `Location` leniently: they drop tab and newline anywhere (`/\t/evil`
/// becomes `//evil`, another host), treat `\` as `/`, and resolve dot segments (`/.//evil`
/// becomes `//evil` too). So the path must start with one `/` and a character that is neither
/// `/` nor `\`, and contains no control character, whitespace, backslash or dot segment (plain
/// or percent-encoded); none of those occurs in a link of this site. Non-ASCII characters are
/// percent-encoded, as a browser would send them, so the result is always a valid header value.
fn safe_next(next: &str) -> String {
    let acceptable = next.len() <= NEXT_MAX_BYTES
        && next
            .strip_prefix('/')
            .is_some_and(|rest| !rest.starts_with(['/', '\\']))
        && !next
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && !has_dot_segment(next);
    if !acceptable {
        return "/".to_owned();
    }
    let mut safe = String::with_capacity(next.len());
    for c in next.chars() {
        if c.is_ascii() {
            safe.push(c);
        } else {
            let mut bytes = [0u8; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                safe.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    safe
}

/// Whether the path part of `next` has a `.` or `..` segment (also as `%2e`), which browsers
/// resolve before following the link.
fn has_dot_segment(next: &str) -> bool {
    let path = next.split(['?', '#']).next().unwrap_or("");
    path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

fn theme(headers: &HeaderMap) -> String {
    cookie(headers, THEME_COOKIE).unwrap_or("system").to_owned()
}

fn account_failure(error: AccountError) -> Result<String, UiError> {
    match error {
        AccountError::Store(error) => Err(error.into()),
        other => Ok(other.to_string()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn sign_in_page(
    app: &AppState,
    mode: &'static str,
    csrf: &CsrfToken,
    headers: &HeaderMap,
    email: &str,
    next: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, UiError> {
    let signup_open = app
        .accounts
        .signup_open()
        .await
        .map_err(|error| UiError::Internal(error.to_string()))?;
    let page = SignInPage {
        mode,
        csrf: csrf.0.clone(),
        email: email.to_owned(),
        next: safe_next(next),
        error,
        signup_open,
        theme: theme(headers),
        asset_version: super::ASSET_VERSION,
    };
    Ok((status, Html(page.render()?)).into_response())
}

fn query_value<'p>(pairs: &'p [(String, String)], name: &str) -> &'p str {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap_or("")
}

/// `GET /login` (a fresh install with no account goes to sign-up).
pub(crate) async fn login_form(
    State(app): State<AppState>,
    csrf: CsrfToken,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, UiError> {
    let count = app
        .accounts
        .account_count()
        .await
        .map_err(|error| UiError::Internal(error.to_string()))?;
    if count == 0
        && app
            .accounts
            .signup_open()
            .await
            .map_err(|error| UiError::Internal(error.to_string()))?
    {
        return Ok(Redirect::to("/signup").into_response());
    }
    let next = query_value(&pairs, "next");
    let notice = (query_value(&pairs, "bye") == "1").then(|| "You are signed out.".to_owned());
    sign_in_page(
        &app,
        "login",
        &csrf,
        &headers,
        "",
        next,
        notice,
        StatusCode::OK,
    )
    .await
}

/// `GET /signup`.
pub(crate) async fn signup_form(
    State(app): State<AppState>,
    csrf: CsrfToken,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    sign_in_page(
        &app,
        "signup",
        &csrf,
        &headers,
        "",
        "/",
        None,
        StatusCode::OK,
    )
    .await
}

fn signed_in(app: &AppState, user_id: &str, next: &str) -> Response {
    let token = app
        .signer
        .sign(user_id, chrono::Duration::days(SESSION_DAYS));
    let mut response = Redirect::to(&safe_next(next)).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &token,
            SESSION_DAYS * 24 * 60 * 60,
            app.ui.behind_https,
        ),
    );
    response
}

/// The peer address, when the server was started with connection info.
pub(crate) struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| *peer),
        ))
    }
}

fn client_of(headers: &HeaderMap, peer: Option<SocketAddr>, behind_proxy: bool) -> String {
    // Behind a proxy every request comes from the proxy; its X-Forwarded-For names the client.
    // Without one the header is the client's own claim, so only the peer address counts.
    let forwarded = behind_proxy
        .then_some(())
        .and_then(|_| headers.get("x-forwarded-for"));
    forwarded
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(|value| value.trim().to_owned())
        .or_else(|| peer.map(|peer| peer.ip().to_string()))
        .unwrap_or_default()
}

/// `POST /login`.
pub(crate) async fn login(
    State(app): State<AppState>,
    csrf: CsrfToken,
    headers: HeaderMap,
    Peer(peer): Peer,
    form: Form,
) -> Result<Response, UiError> {
    let email = form.text("email");
    let next = form.text("next");
    let client = client_of(&headers, peer, app.ui.behind_https);
    match app
        .accounts
        .log_in(email, form.text("password"), &client)
        .await
    {
        Ok(account) => {
            tracing::info!(user = %account.id, "signed in to the web UI");
            Ok(signed_in(&app, &account.id, next))
        }
        Err(error) => {
            let status = match &error {
                AccountError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let retry_after = match &error {
                AccountError::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
                _ => None,
            };
            let message = account_failure(error)?;
            let mut response = sign_in_page(
                &app,
                "login",
                &csrf,
                &headers,
                email,
                next,
                Some(message),
                status,
            )
            .await?;
            if let Some(seconds) = retry_after
                && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            Ok(response)
        }
    }
}

/// `POST /signup`.
pub(crate) async fn signup(
    State(app): State<AppState>,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    let email = form.text("email");
    let password = form.text("password");
    if password != form.text("password_again") {
        return sign_in_page(
            &app,
            "signup",
            &csrf,
            &headers,
            email,
            "/",
            Some("The two passwords differ.".to_owned()),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match app.accounts.sign_up(email, password).await {
        Ok(account) => {
            tracing::info!(user = %account.id, "account created from the web UI");
            adopt_browser_zone(&app, &account.id, form.text("time_zone")).await?;
            Ok(signed_in(&app, &account.id, "/"))
        }
        Err(error) => {
            let status = match &error {
                AccountError::SignupClosed => StatusCode::FORBIDDEN,
                AccountError::EmailTaken => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let message = account_failure(error)?;
            sign_in_page(
                &app,
                "signup",
                &csrf,
                &headers,
                email,
                "/",
                Some(message),
                status,
            )
            .await
        }
    }
}

/// Saves the time zone the sign-up page read from the browser (`Intl`), so dates are read and
/// shown in the new user's own zone from the first task on. Anything that is not an IANA zone
/// name (no JavaScript, an odd browser) leaves the default, UTC, which Settings can change.
async fn adopt_browser_zone(app: &AppState, user: &str, zone: &str) -> Result<(), UiError> {
    let Some(zone) = taskstream_engine::recurrence::parse_zone(zone) else {
        return Ok(());
    };
    let mut settings = app.settings.settings(user).await?;
    settings.time_zone = zone;
    app.settings
        .save_settings(user, settings, taskstream_engine::time::now())
        .await?;
    Ok(())
}

/// `POST /logout`: end the session on the server, so a copy of the cookie stops working too
/// (as a cookie and as a Bearer token), then forget the cookie. A cookie that is no longer
/// valid (expired, forged, from before session ids) has nothing to end.
pub(crate) async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    _form: Form,
) -> Result<Response, UiError> {
    let session = cookie(&headers, SESSION_COOKIE)
        .filter(|token| !token.is_empty())
        .and_then(|token| app.auth.verify(token).ok());
    if let Some(jwt) = session
        && let Some(sid) = &jwt.sid
    {
        app.accounts
            .revoke_session(sid, &jwt.sub, jwt.expires_at)
            .await
            .map_err(|error| UiError::Internal(error.to_string()))?;
    }
    let mut response = Redirect::to("/login?bye=1").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, app.ui.behind_https),
    );
    Ok(response)
}

/// `POST /settings/password`.
pub(crate) async fn change_password(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    let new = form.text("new_password");
    if new != form.text("new_password_again") {
        return settings_page(
            &app,
            &session,
            &csrf,
            &headers,
            None,
            None,
            Some("The two new passwords differ.".to_owned()),
        )
        .await;
    }
    match app
        .accounts
        .change_password(&session.user_id, form.text("current_password"), new)
        .await
    {
        Ok(()) => {
            settings_page(
                &app,
                &session,
                &csrf,
                &headers,
                None,
                Some("Password changed.".to_owned()),
                None,
            )
            .await
        }
        Err(error) => {
            let message = account_failure(error)?;
            settings_page(&app, &session, &csrf, &headers, None, None, Some(message)).await
        }
    }
}

/// `POST /settings/tokens`: a personal API token, shown once.
pub(crate) async fn create_token(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    match app
        .accounts
        .create_api_token(&session.user_id, form.text("name"))
        .await
    {
        Ok(token) => {
            settings_page(
                &app,
                &session,
                &csrf,
                &headers,
                Some(token.secret),
                Some(format!(
                    "Token “{}” created. Copy it now: it is not shown again.",
                    token.info.name
                )),
                None,
            )
            .await
        }
        Err(error) => {
            let message = account_failure(error)?;
            settings_page(&app, &session, &csrf, &headers, None, None, Some(message)).await
        }
    }
}

/// `POST /settings/tokens/{id}/revoke`.
pub(crate) async fn revoke_token(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, UiError> {
    let revoked = app
        .accounts
        .revoke_api_token(&session.user_id, &id)
        .await
        .map_err(|error| UiError::Internal(error.to_string()))?;
    if revoked {
        Ok(Redirect::to("/settings?saved=1").into_response())
    } else {
        Err(UiError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_paths_of_this_site_are_followed() {
        for kept in [
            "/",
            "/tasks?status=active",
            "/tasks/1#notes",
            "/a/b.c/..d",
            "/%2F/x",
        ] {
            assert_eq!(safe_next(kept), kept);
        }
        assert_eq!(safe_next("/tâches"), "/t%C3%A2ches");
        for attack in [
            "",
            "tasks",
            "https://evil.example",
            "//evil.com",
            "/\\evil.com",
            "/\t/evil.example",
            "/ /evil.com",
            "/.//evil.com",
            "/./\\evil",
            "/../evil",
            "/%2e//evil.com",
            "/%2E%2E//evil.com",
            "/\r\nSet-Cookie: a=b",
            "/tasks\n",
            "/a\\b",
            "/\u{a0}/evil.com",
            "/\u{7f}",
        ] {
            assert_eq!(safe_next(attack), "/", "{attack:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(5000))), "/");
    }
}
