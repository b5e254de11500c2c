//! Authentication: every failure mode of the Bearer JWT check, with the exact 401 details;
//! ending a session through the API; what a personal token may not do.
#![allow(clippy::unwrap_used)]

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use taskstream_tests::web::{WebClient, api_token};
use taskstream_tests::{Resp, TestServer, b64url, mint, mint_hs256, now};

const PASSWORD: &str = "correct horse battery";

const ZERO: &str = "00000000-0000-4000-8000-000000000000";

/// Sends `method path` with an optional raw `Authorization` header value.
async fn call(srv: &TestServer, method: &str, path: &str, auth: Option<&str>) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = srv.client().request(method.clone(), srv.url(path));
    if let Some(a) = auth {
        rb = rb.header("authorization", a);
    }
    if method == reqwest::Method::POST || method == reqwest::Method::PUT {
        rb = rb.json(&json!({ "title": "x" }));
    }
    Resp::from(rb.send().await.unwrap()).await
}

#[track_caller]
fn expect_401(r: &Resp, detail: &str) {
    r.expect_detail(401, detail);
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer"),
        "WWW-Authenticate should be Bearer, got {www:?}"
    );
}

fn routes() -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/api/tasks".to_string()),
        ("POST", "/api/tasks".to_string()),
        ("GET", format!("/api/tasks/{ZERO}")),
        ("PUT", format!("/api/tasks/{ZERO}")),
        ("DELETE", format!("/api/tasks/{ZERO}")),
        ("PATCH", format!("/api/tasks/{ZERO}/complete")),
    ]
}

async fn missing_header_is_not_authenticated_on_every_route(srv: TestServer) {
    for (m, p) in routes() {
        let r = call(&srv, m, &p, None).await;
        expect_401(&r, "Not authenticated");
    }
}

async fn non_bearer_scheme_is_invalid_credentials(srv: TestServer) {
    let good = srv.token("alice");
    for (m, p) in routes() {
        let r = call(&srv, m, &p, Some("Basic YWxpY2U6c2VjcmV0")).await;
        expect_401(&r, "Invalid authentication credentials");
    }
    let r = call(&srv, "GET", "/api/tasks", Some(&format!("Token {good}"))).await;
    expect_401(&r, "Invalid authentication credentials");
}

async fn expired_token(srv: TestServer) {
    let t = mint_hs256(srv.secret(), &json!({ "sub": "alice", "exp": now() - 60 }));
    for (m, p) in routes() {
        let r = call(&srv, m, &p, Some(&format!("Bearer {t}"))).await;
        expect_401(&r, "Token expired");
    }
    // Zero leeway: expired a few seconds ago is expired too.
    let t = mint_hs256(srv.secret(), &json!({ "sub": "alice", "exp": now() - 5 }));
    let r = call(&srv, "GET", "/api/tasks", Some(&format!("Bearer {t}"))).await;
    expect_401(&r, "Token expired");
}

async fn wrong_secret_is_invalid_token(srv: TestServer) {
    let t = mint_hs256(
        "not-the-secret",
        &json!({ "sub": "alice", "exp": now() + 3600 }),
    );
    for (m, p) in routes() {
        let r = call(&srv, m, &p, Some(&format!("Bearer {t}"))).await;
        expect_401(&r, "Invalid token");
    }
}

async fn alg_none_is_invalid_token(srv: TestServer) {
    let payload = json!({ "sub": "alice", "exp": now() + 3600 }).to_string();
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"none","typ":"JWT"}"#,
        r#"{"alg":"None"}"#,
    ] {
        let t = format!(
            "{}.{}.",
            b64url(header.as_bytes()),
            b64url(payload.as_bytes())
        );
        let r = call(&srv, "GET", "/api/tasks", Some(&format!("Bearer {t}"))).await;
        expect_401(&r, "Invalid token");
    }
}

async fn other_hmac_algorithms_are_invalid_token(srv: TestServer) {
    let claims = json!({ "sub": "alice", "exp": now() + 3600 });
    for alg in [Algorithm::HS512, Algorithm::HS384] {
        let t = mint(alg, srv.secret(), &claims);
        let r = call(&srv, "GET", "/api/tasks", Some(&format!("Bearer {t}"))).await;
        expect_401(&r, "Invalid token");
    }
}

async fn malformed_tokens_are_invalid_token(srv: TestServer) {
    let good = srv.token("alice");
    let (head, rest) = good.split_once('.').unwrap();
    let (body, sig) = rest.split_once('.').unwrap();
    // A forged payload with the original signature.
    let forged_body = b64url(
        json!({ "sub": "mallory", "exp": now() + 3600 })
            .to_string()
            .as_bytes(),
    );
    let forged = format!("{head}.{forged_body}.{sig}");
    for t in [
        "garbage".to_string(),
        "a.b.c".to_string(),
        format!("{head}.{body}"),
        format!("{head}.{body}.AAAA"),
        forged,
    ] {
        let r = call(&srv, "GET", "/api/tasks", Some(&format!("Bearer {t}"))).await;
        expect_401(&r, "Invalid token");
    }
}

async fn missing_or_empty_sub_is_invalid_payload(srv: TestServer) {
    for claims in [
        json!({ "exp": now() + 3600 }),
        json!({ "sub": "", "exp": now() + 3600 }),
        json!({ "email": "a@example.com", "name": "A", "exp": now() + 3600 }),
    ] {
        let t = mint_hs256(srv.secret(), &claims);
        for (m, p) in routes() {
            let r = call(&srv, m, &p, Some(&format!("Bearer {t}"))).await;
            expect_401(&r, "Invalid token payload");
        }
    }
}

async fn not_yet_valid_token_is_rejected(srv: TestServer) {
    let t = mint_hs256(
        srv.secret(),
        &json!({ "sub": "alice", "exp": now() + 7200, "nbf": now() + 3600 }),
    );
    let r = call(&srv, "GET", "/api/tasks", Some(&format!("Bearer {t}"))).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.json["detail"].is_string(), "{}", r.text);
}

async fn valid_tokens_are_accepted(srv: TestServer) {
    // What the frontend mints: sub, email, name, iat, exp.
    let fe = mint_hs256(
        srv.secret(),
        &json!({ "sub": "user_8f2k", "email": "a@example.com", "name": "A", "iat": now(), "exp": now() + 3600 }),
    );
    let r = call(&srv, "GET", "/api/tasks", Some(&format!("Bearer {fe}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, json!([]));
    // The harness's own tokens.
    let alice = format!("Bearer {}", srv.token("alice"));
    let r = call(&srv, "POST", "/api/tasks", Some(&alice)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["user_id"], "alice");
    let r = call(&srv, "GET", "/api/tasks", Some(&alice)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
}

async fn tokens_without_a_numeric_exp_are_invalid(srv: TestServer) {
    // Such a token would never expire, so it is refused like a forged one.
    for claims in [
        json!({ "sub": "alice" }),
        json!({ "sub": "alice", "exp": "9999999999" }),
        json!({ "sub": "alice", "exp": null }),
        json!({ "sub": "alice", "exp": -1 }),
    ] {
        let t = mint_hs256(srv.secret(), &claims);
        for (m, p) in routes() {
            let r = call(&srv, m, &p, Some(&format!("Bearer {t}"))).await;
            expect_401(&r, "Invalid token");
        }
    }
    let r = call(&srv, "GET", "/api/tasks", None).await;
    expect_401(&r, "Not authenticated");
}

/// An account signed up through the web UI, and a JWT of it from `POST /api/auth/token`.
async fn account_jwt(srv: &TestServer) -> String {
    let mut web = WebClient::new(srv).await;
    web.sign_up("kim@example.com", PASSWORD).await;
    api_token(srv, "kim@example.com", PASSWORD).await
}

async fn post_with(srv: &TestServer, path: &str, token: &str, body: &Value) -> Resp {
    Resp::from(
        srv.client()
            .post(srv.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn api_logout_ends_the_session(srv: TestServer) {
    let jwt = account_jwt(&srv).await;
    let other = api_token(&srv, "kim@example.com", PASSWORD).await;
    let bearer = format!("Bearer {jwt}");
    assert_eq!(
        call(&srv, "GET", "/api/tasks", Some(&bearer)).await.status,
        200
    );

    let r = post_with(&srv, "/api/auth/logout", &jwt, &json!({})).await;
    assert_eq!(r.expect(200), &json!({ "logged_out": true }));
    for (m, p) in routes() {
        expect_401(&call(&srv, m, &p, Some(&bearer)).await, "Invalid token");
    }
    expect_401(
        &post_with(&srv, "/api/auth/logout", &jwt, &json!({})).await,
        "Invalid token",
    );
    // Another sign-in of the same account is another session.
    let r = call(&srv, "GET", "/api/tasks", Some(&format!("Bearer {other}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // The frontend's tokens carry no session: nothing this server could end.
    post_with(&srv, "/api/auth/logout", &srv.token("alice"), &json!({}))
        .await
        .expect(400);
    let r = Resp::from(
        srv.client()
            .post(srv.url("/api/auth/logout"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    expect_401(&r, "Not authenticated");
}

async fn personal_tokens_cannot_mint_tokens(srv: TestServer) {
    let jwt = account_jwt(&srv).await;
    let created = post_with(&srv, "/api/auth/tokens", &jwt, &json!({ "name": "ci" })).await;
    let personal = created.expect(201)["token"].as_str().unwrap().to_owned();
    assert!(personal.starts_with("tsk_"), "{personal}");

    let r = post_with(
        &srv,
        "/api/auth/tokens",
        &personal,
        &json!({ "name": "more" }),
    )
    .await;
    r.expect_detail(
        403,
        "Personal API tokens cannot create tokens; sign in with a password",
    );
    // Still a working token for everything else, but not a session to log out.
    let listed = call(
        &srv,
        "GET",
        "/api/auth/tokens",
        Some(&format!("Bearer {personal}")),
    )
    .await;
    assert_eq!(
        listed.expect(200).as_array().unwrap().len(),
        1,
        "nothing minted"
    );
    post_with(&srv, "/api/auth/logout", &personal, &json!({}))
        .await
        .expect(400);
}

async fn public_endpoints_need_no_token(srv: TestServer) {
    for p in ["/health", "/ready", "/metrics", "/openapi.json", "/docs"] {
        let r = call(&srv, "GET", p, None).await;
        assert_eq!(r.status, 200, "GET {p}: {}", r.text);
    }
}

taskstream_tests::api_tests!(
    missing_header_is_not_authenticated_on_every_route,
    non_bearer_scheme_is_invalid_credentials,
    expired_token,
    wrong_secret_is_invalid_token,
    alg_none_is_invalid_token,
    other_hmac_algorithms_are_invalid_token,
    malformed_tokens_are_invalid_token,
    missing_or_empty_sub_is_invalid_payload,
    not_yet_valid_token_is_rejected,
    valid_tokens_are_accepted,
    public_endpoints_need_no_token,
    tokens_without_a_numeric_exp_are_invalid,
    api_logout_ends_the_session,
    personal_tokens_cannot_mint_tokens,
);
