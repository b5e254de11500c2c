//! Local accounts end to end: `taskstream user add` through the binary, `POST /api/auth/token`,
//! the failed-log-in limit, personal API tokens, the session cookie, and logs free of secrets.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{Resp, TestServer, User, command, run};

const PASSWORD: &str = "correct horse battery";

/// Runs `taskstream user <args…> --data-dir <server's>` with `stdin` piped in.
async fn user_cli(srv: &TestServer, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut cmd = command();
    cmd.arg("user")
        .args(args)
        .arg("--data-dir")
        .arg(srv.data_dir())
        .current_dir(srv.scratch())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("spawn taskstream user");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().expect("wait for taskstream user");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Creates an account with the CLI; returns its id.
async fn add_user(srv: &TestServer, email: &str) -> String {
    let (ok, stdout, stderr) = user_cli(
        srv,
        &["add", "--email", email, "--password-stdin"],
        &format!("{PASSWORD}\n"),
    )
    .await;
    assert!(ok, "user add failed: {stderr}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    let id = stdout.trim().to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "printed an id: {stdout:?}"
    );
    id
}

async fn log_in(srv: &TestServer, body: Value) -> Resp {
    Resp::from(
        srv.client()
            .post(srv.url("/api/auth/token"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn acting(srv: &TestServer, sub: &str, token: &str) -> User {
    User {
        client: srv.client(),
        base: srv.url(""),
        token: token.to_owned(),
        sub: sub.to_owned(),
    }
}

/// `taskstream user add --mode cluster` writes the account to PostgreSQL, where the cluster's
/// API finds it; skipped (saying so) without a test database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_account_in_cluster_mode_logs_in_on_the_cluster() {
    let Some(srv) = TestServer::start_cluster().await else {
        return;
    };
    let (url, schema) = srv.database().expect("a cluster server has a database");
    let cluster = [
        "--mode",
        "cluster",
        "--database-url",
        url,
        "--database-schema",
        schema,
    ];
    // The mode flags belong to `user`'s subcommands: they go after `add` / `list`.
    let add: Vec<&str> = std::iter::once("add")
        .chain(cluster)
        .chain(["--email", "Dee@Example.com", "--password-stdin"])
        .collect();
    let (ok, stdout, stderr) = user_cli(&srv, &add, &format!("{PASSWORD}\n")).await;
    assert!(ok, "user add --mode cluster failed: {stderr}");
    let id = stdout.trim().to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "printed an id: {stdout:?}"
    );
    let list: Vec<&str> = std::iter::once("list").chain(cluster).collect();
    let (ok, stdout, stderr) = user_cli(&srv, &list, "").await;
    assert!(ok, "user list --mode cluster failed: {stderr}");
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with(&format!("{id}\tdee@example.com\t"))),
        "{stdout}"
    );

    let r = log_in(
        &srv,
        json!({"email": "dee@example.com", "password": PASSWORD}),
    )
    .await;
    let token = r.expect(200)["token"].as_str().unwrap().to_owned();
    let dee = acting(&srv, &id, &token);
    let task = dee.create(json!({"title": "on the cluster"})).await;
    assert_eq!(task["user_id"], id.as_str());
    let (ok, _, stderr) = user_cli(&srv, &add, "another password\n").await;
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
}

#[tokio::test]
async fn cli_account_logs_in_and_its_token_reaches_the_tasks() {
    let srv = TestServer::start().await;
    let id = add_user(&srv, "Ann@Example.com").await;

    let (ok, stdout, _) = user_cli(&srv, &["list"], "").await;
    assert!(ok);
    assert!(
        stdout
            .lines()
            .any(|line| line.starts_with(&format!("{id}\tann@example.com\t"))),
        "listed with the normalised email: {stdout}"
    );
    let (ok, _, stderr) = user_cli(
        &srv,
        &["add", "--email", "ann@example.com", "--password-stdin"],
        "another password\n",
    )
    .await;
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, _, stderr) = user_cli(
        &srv,
        &["add", "--email", "cy@example.com", "--password-stdin"],
        "\n",
    )
    .await;
    assert!(!ok && stderr.contains("no password"), "{stderr}");

    let r = log_in(
        &srv,
        json!({"email": " ANN@example.com", "password": PASSWORD}),
    )
    .await;
    let token = r.expect(200)["token"].as_str().unwrap().to_owned();
    assert_eq!(r.json.as_object().unwrap().len(), 1, "{}", r.text);
    let ann = acting(&srv, &id, &token);
    let task = ann.create(json!({"title": "from a log-in token"})).await;
    assert_eq!(task["user_id"], json!(id), "the account id is the owner");
    let listed = ann.list("").await;
    assert_eq!(listed.len(), 1);

    // Claims: sub = account id, exp about a week ahead.
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&base64_url_decode(payload)).unwrap();
    assert_eq!(claims["sub"], json!(id));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 7 * 24 * 3600);

    log_in(
        &srv,
        json!({"email": "ann@example.com", "password": "wrong password"}),
    )
    .await
    .expect_detail(401, "Invalid email or password");
    log_in(
        &srv,
        json!({"email": "nobody@example.com", "password": PASSWORD}),
    )
    .await
    .expect_detail(401, "Invalid email or password");
    log_in(&srv, json!({"email": "ann@example.com"}))
        .await
        .expect_invalid("missing", json!(["body", "password"]));
    log_in(&srv, json!({"email": 7, "password": PASSWORD}))
        .await
        .expect_invalid("string_type", json!(["body", "email"]));
    let r = Resp::from(
        srv.client()
            .post(srv.url("/api/auth/token"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let items = r.validation_items();
    assert_eq!(items[0]["type"], json!("json_invalid"), "{}", r.text);

    let log = srv.stderr();
    assert!(!log.contains(&token), "the JWT is never logged");
    assert!(!log.contains(PASSWORD), "the password is never logged");
}

fn base64_url_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn the_sixth_failed_attempt_is_refused_with_retry_after() {
    let srv = TestServer::start().await;
    add_user(&srv, "bo@example.com").await;
    for attempt in 1..=5 {
        let r = log_in(
            &srv,
            json!({"email": "bo@example.com", "password": format!("guess {attempt}")}),
        )
        .await;
        r.expect_detail(401, "Invalid email or password");
    }
    for password in ["guess 6", PASSWORD] {
        let r = log_in(
            &srv,
            json!({"email": "bo@example.com", "password": password}),
        )
        .await;
        r.expect_detail(429, "Too many attempts, try again later");
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After header")
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=15 * 60).contains(&retry), "Retry-After {retry}");
    }
    // Another account is not locked by bo's failures.
    add_user(&srv, "cy@example.com").await;
    log_in(
        &srv,
        json!({"email": "cy@example.com", "password": PASSWORD}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn personal_tokens_work_until_revoked_and_never_reach_the_log() {
    let srv = TestServer::start().await;
    let id = add_user(&srv, "dee@example.com").await;
    let jwt = log_in(
        &srv,
        json!({"email": "dee@example.com", "password": PASSWORD}),
    )
    .await
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dee = acting(&srv, &id, &jwt);
    dee.create(json!({"title": "seen through a token"})).await;

    dee.post("/api/auth/tokens", &json!({"name": ""}))
        .await
        .expect_invalid_at(json!(["body", "name"]));
    dee.post("/api/auth/tokens", &json!({}))
        .await
        .expect_invalid("missing", json!(["body", "name"]));
    let created = dee
        .post("/api/auth/tokens", &json!({"name": "backup script"}))
        .await;
    let body = created.expect(201).clone();
    let secret = body["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tsk_") && secret.len() == 47, "{secret}");
    assert_eq!(body["prefix"], json!(&secret[..8]));
    assert_eq!(body["name"], json!("backup script"));
    let token_id = body["id"].as_str().unwrap().to_owned();

    let listed = dee.get("/api/auth/tokens").await;
    let items = listed.expect(200).as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], json!(token_id));
    assert!(
        items[0].get("token").is_none(),
        "the secret is shown once only"
    );
    assert!(!listed.text.contains(&secret));

    let script = acting(&srv, &id, &secret);
    let seen = script.list("").await;
    assert_eq!(seen.len(), 1, "the token acts as its account");
    let made = script.create(json!({"title": "made by the script"})).await;
    assert_eq!(made["user_id"], json!(id));
    let used = dee.get("/api/auth/tokens").await;
    assert!(
        used.expect(200)[0]["last_used_at"].is_string(),
        "{}",
        used.text
    );

    // Someone else cannot revoke it.
    let eve_id = add_user(&srv, "eve@example.com").await;
    let eve_jwt = log_in(
        &srv,
        json!({"email": "eve@example.com", "password": PASSWORD}),
    )
    .await
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    acting(&srv, &eve_id, &eve_jwt)
        .delete(&format!("/api/auth/tokens/{token_id}"))
        .await
        .expect_detail(404, "Token not found");

    let revoked = dee.delete(&format!("/api/auth/tokens/{token_id}")).await;
    assert_eq!(
        revoked.expect(200),
        &json!({"id": token_id, "revoked": true})
    );
    dee.delete(&format!("/api/auth/tokens/{token_id}"))
        .await
        .expect_detail(404, "Token not found");
    script
        .get("/api/tasks")
        .await
        .expect_detail(401, "Invalid token");
    let forged = acting(&srv, &id, &format!("tsk_{}", "A".repeat(43)));
    forged
        .get("/api/tasks")
        .await
        .expect_detail(401, "Invalid token");
    assert!(
        dee.get("/api/auth/tokens")
            .await
            .expect(200)
            .as_array()
            .unwrap()
            .is_empty()
    );

    let log = srv.stderr();
    assert!(!log.contains(&secret), "the personal token is never logged");
    assert!(
        !log.contains(&jwt) && !log.contains(&eve_jwt),
        "JWTs are never logged"
    );
    assert!(!log.contains(PASSWORD), "passwords are never logged");
}

#[tokio::test]
async fn the_session_cookie_authenticates_reads_only() {
    let srv = TestServer::start().await;
    let id = add_user(&srv, "fay@example.com").await;
    let jwt = log_in(
        &srv,
        json!({"email": "fay@example.com", "password": PASSWORD}),
    )
    .await
    .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    acting(&srv, &id, &jwt)
        .create(json!({"title": "cookie visible"}))
        .await;
    let cookie = format!("theme=dark; taskstream_session={jwt}");

    let read = Resp::from(
        srv.client()
            .get(srv.url("/api/tasks"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let tasks = read.expect(200).as_array().unwrap().clone();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["user_id"], json!(id));

    let write = Resp::from(
        srv.client()
            .post(srv.url("/api/tasks"))
            .header("cookie", &cookie)
            .json(&json!({"title": "forged by a cross-site form"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    write.expect_detail(401, "Not authenticated");
    let delete = Resp::from(
        srv.client()
            .delete(srv.url(&format!("/api/tasks/{}", tasks[0]["id"].as_str().unwrap())))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    delete.expect_detail(401, "Not authenticated");

    let bad = Resp::from(
        srv.client()
            .get(srv.url("/api/tasks"))
            .header("cookie", "taskstream_session=not.a.token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    bad.expect_detail(401, "Invalid token");
    assert_eq!(
        acting(&srv, &id, &jwt).list("").await.len(),
        1,
        "the refused writes changed nothing"
    );
}

#[tokio::test]
async fn an_unknown_signup_policy_is_refused_at_start() {
    let mut cmd = command();
    cmd.args([
        "serve",
        "--signup",
        "sometimes",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let out = run(cmd, Duration::from_secs(30));
    assert!(
        out.status.is_some_and(|status| !status.success()),
        "{out:?}"
    );
    assert!(out.stderr.contains("--signup"), "{}", out.stderr);
}
