//! The web UI spoken over plain HTTP, the way a browser does it: cookies kept by hand, forms
//! posted urlencoded with their CSRF token, redirects not followed (so tests see them).

use std::time::Duration;

use crate::TestServer;

/// The value of cookie `name` among a response's `Set-Cookie` headers.
pub fn set_cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    set_cookie_header(response, name).and_then(|header| {
        header
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, value)| value.to_owned())
    })
}

/// The whole `Set-Cookie` header for cookie `name`.
pub fn set_cookie_header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// A browser-like client of the web UI.
pub struct WebClient {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: String,
    pub session: Option<String>,
}

impl WebClient {
    /// A client that has loaded `/login` once (so it holds a CSRF cookie).
    pub async fn new(srv: &TestServer) -> WebClient {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let response = http
            .get(srv.url("/signup"))
            .send()
            .await
            .expect("GET /signup");
        let csrf = set_cookie_value(&response, "taskstream_csrf").expect("a CSRF cookie");
        WebClient {
            http,
            base: srv.url(""),
            csrf,
            session: None,
        }
    }

    fn cookies(&self) -> String {
        let mut cookies = format!("taskstream_csrf={}", self.csrf);
        if let Some(session) = &self.session {
            cookies.push_str(&format!("; taskstream_session={session}"));
        }
        cookies
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .send()
            .await
            .expect("GET")
    }

    /// Posts a form with the CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// Posts exactly these fields (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body: String = form_body(fields);
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookies())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// Posts the sign-up form (the password typed twice).
    pub async fn post_sign_up(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/signup",
            &[
                ("email", email),
                ("password", password),
                ("password_again", password),
            ],
        )
        .await
    }

    /// Signs up and keeps the session cookie; panics unless it worked.
    pub async fn sign_up(&mut self, email: &str, password: &str) {
        let response = self.post_sign_up(email, password).await;
        assert_eq!(response.status(), 303, "sign-up should redirect");
        self.session = Some(set_cookie_value(&response, "taskstream_session").expect("session"));
    }

    pub async fn log_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        let response = self
            .post("/login", &[("email", email), ("password", password)])
            .await;
        if response.status() == 303 {
            self.session = set_cookie_value(&response, "taskstream_session");
        }
        response
    }
}

/// An API token for an account, through `POST /api/auth/token`.
pub async fn api_token(srv: &TestServer, email: &str, password: &str) -> String {
    let response = srv
        .client()
        .post(srv.url("/api/auth/token"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("POST /api/auth/token");
    assert_eq!(response.status(), 200, "sign-in through the API");
    let body: serde_json::Value = response.json().await.expect("JSON");
    body["token"].as_str().expect("token").to_owned()
}

/// `GET path` on the API with a Bearer token, as JSON (asserting 200).
pub async fn api_get(srv: &TestServer, token: &str, path: &str) -> serde_json::Value {
    let response = srv
        .client()
        .get(srv.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("JSON")
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The `sub` of a JWT (its payload is base64url JSON), to call user-scoped API paths.
pub fn token_subject(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims["sub"].as_str().expect("sub").to_owned()
}
