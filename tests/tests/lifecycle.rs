//! Process lifecycle: the data-dir lock, SIGTERM/SIGINT, the generated JWT secret file, secrets
//! from the environment, flag > env > config-file precedence, the `token` subcommand, `--help`
//! and logs.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{Launch, Resp, TestServer, command, free_port, mint_hs256, now, run};
use tempfile::TempDir;

/// GET /api/tasks with `token` against `srv`.
async fn list_status(srv: &TestServer, token: &str) -> u16 {
    Resp::from(
        srv.client()
            .get(srv.url("/api/tasks"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
    .status
}

fn tok(secret: &str, sub: &str) -> String {
    mint_hs256(secret, &json!({ "sub": sub, "exp": now() + 3600 }))
}

/// Whether something answers HTTP on `port`.
async fn answers(port: u16) -> bool {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn second_instance_on_same_data_dir_fails_fast() {
    let srv = TestServer::start().await;
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "still here" })).await;
    assert!(srv.data_dir().join("taskstream.db").is_file());
    assert!(srv.data_dir().join("taskstream.lock").exists());

    let port2 = free_port();
    let mut cmd = command();
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(srv.data_dir())
        .arg("--http-addr")
        .arg(format!("127.0.0.1:{port2}"))
        .arg("--jwt-secret")
        .arg("other");
    let out = run(cmd, Duration::from_secs(20));
    let status = out
        .status
        .expect("second instance did not exit: it should refuse the locked data dir");
    assert_eq!(status.code(), Some(1), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("locked by another taskstream process"),
        "stderr: {}",
        out.stderr
    );
    assert!(!answers(port2).await);
    // The first instance is unaffected.
    assert_eq!(alice.list("").await, vec![t]);
}

#[tokio::test]
async fn sigterm_exits_zero_and_releases_the_lock() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "persist me" })).await;
    srv.sigterm();
    let st = srv
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("server did not exit after SIGTERM");
    assert_eq!(st.code(), Some(0), "stderr: {}", srv.stderr());
    srv.restart().await;
    let alice = srv.user("alice");
    assert_eq!(alice.list("").await, vec![t]);
}

#[tokio::test]
async fn sigint_exits_zero() {
    let mut srv = TestServer::start().await;
    srv.user("alice").create(json!({ "title": "x" })).await;
    srv.signal("INT");
    let st = srv
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("server did not exit after SIGINT");
    assert_eq!(st.code(), Some(0), "stderr: {}", srv.stderr());
}

#[tokio::test]
async fn generated_secret_file_is_0600_and_survives_restart() {
    let mut srv = TestServer::launch(Launch {
        secret_flag: false,
        ..Launch::default()
    })
    .await;
    let path = srv.data_dir().join("jwt-secret");
    let meta = std::fs::metadata(&path).expect("jwt-secret file generated on first run");
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "jwt-secret mode is {:o}",
        meta.permissions().mode() & 0o777
    );
    let secret = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(
        secret.len() >= 16,
        "secret too short: {} chars",
        secret.len()
    );

    let good = tok(&secret, "alice");
    assert_eq!(list_status(&srv, &good).await, 200);
    assert_eq!(list_status(&srv, &tok("guess", "alice")).await, 401);
    let created = Resp::from(
        srv.client()
            .post(srv.url("/api/tasks"))
            .bearer_auth(&good)
            .json(&json!({ "title": "t" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(created.status, 201);

    srv.restart().await;
    let again = std::fs::read_to_string(&path).unwrap();
    assert_eq!(again.trim(), secret, "secret changed across restart");
    assert_eq!(srv.secret(), secret);
    // A token minted before the restart still works.
    assert_eq!(list_status(&srv, &good).await, 200);
    assert_eq!(srv.user("alice").list("").await.len(), 1);
}

#[tokio::test]
async fn generated_secrets_differ_between_data_dirs() {
    let a = TestServer::launch(Launch {
        secret_flag: false,
        ..Launch::default()
    })
    .await;
    let b = TestServer::launch(Launch {
        secret_flag: false,
        ..Launch::default()
    })
    .await;
    assert!(!a.secret().is_empty());
    assert_ne!(a.secret(), b.secret());
    assert_eq!(list_status(&a, &tok(b.secret(), "x")).await, 401);
}

#[tokio::test]
async fn secret_from_env() {
    for var in ["TASKSTREAM_JWT_SECRET", "JWT_SECRET"] {
        let secret = format!("env-secret-{var}");
        let srv = TestServer::launch(Launch {
            secret_flag: false,
            secret: Some(secret.clone()),
            envs: vec![(var.to_string(), secret.clone())],
            ..Launch::default()
        })
        .await;
        assert_eq!(
            list_status(&srv, &tok(&secret, "alice")).await,
            200,
            "{var}"
        );
        assert_eq!(
            list_status(&srv, &tok("other", "alice")).await,
            401,
            "{var}"
        );
        if let Ok(file) = std::fs::read_to_string(srv.data_dir().join("jwt-secret")) {
            assert_eq!(
                list_status(&srv, &tok(file.trim(), "alice")).await,
                401,
                "{var} must override the generated secret"
            );
        }
    }
}

#[tokio::test]
async fn secret_precedence_flag_env_config() {
    let cfg_dir = TempDir::new().unwrap();
    let cfg = cfg_dir.path().join("conf.toml");
    write(&cfg, "jwt_secret = \"from-config\"\n");
    let cfg_arg = vec!["--config".to_string(), cfg.display().to_string()];
    let env = vec![("TASKSTREAM_JWT_SECRET".to_string(), "from-env".to_string())];

    // flag > env > config
    let srv = TestServer::launch(Launch {
        args: cfg_arg.clone(),
        envs: env.clone(),
        secret: Some("from-flag".into()),
        ..Launch::default()
    })
    .await;
    assert_eq!(list_status(&srv, &tok("from-flag", "a")).await, 200);
    assert_eq!(list_status(&srv, &tok("from-env", "a")).await, 401);
    assert_eq!(list_status(&srv, &tok("from-config", "a")).await, 401);
    drop(srv);

    // env > config
    let srv = TestServer::launch(Launch {
        args: cfg_arg.clone(),
        envs: env.clone(),
        secret_flag: false,
        secret: Some("from-env".into()),
        ..Launch::default()
    })
    .await;
    assert_eq!(list_status(&srv, &tok("from-env", "a")).await, 200);
    assert_eq!(list_status(&srv, &tok("from-config", "a")).await, 401);
    drop(srv);

    // config > generated
    let srv = TestServer::launch(Launch {
        args: cfg_arg,
        secret_flag: false,
        secret: Some("from-config".into()),
        ..Launch::default()
    })
    .await;
    assert_eq!(list_status(&srv, &tok("from-config", "a")).await, 200);
    assert_eq!(list_status(&srv, &tok("from-env", "a")).await, 401);
}

#[tokio::test]
async fn http_addr_precedence_flag_env_config() {
    let cfg_dir = TempDir::new().unwrap();
    let (p_cfg, p_env, p_flag) = (free_port(), free_port(), free_port());
    let cfg = cfg_dir.path().join("conf.toml");
    write(&cfg, &format!("http_addr = \"127.0.0.1:{p_cfg}\"\n"));
    let args = vec!["--config".to_string(), cfg.display().to_string()];
    let env = vec![(
        "TASKSTREAM_HTTP_ADDR".to_string(),
        format!("127.0.0.1:{p_env}"),
    )];

    let srv = TestServer::launch(Launch {
        args: args.clone(),
        envs: env.clone(),
        port: Some(p_flag),
        ..Launch::default()
    })
    .await;
    assert!(answers(p_flag).await);
    assert!(!answers(p_env).await, "env address used despite the flag");
    assert!(
        !answers(p_cfg).await,
        "config address used despite the flag"
    );
    drop(srv);

    let srv = TestServer::launch(Launch {
        args: args.clone(),
        envs: env,
        addr_flag: false,
        port: Some(p_env),
        ..Launch::default()
    })
    .await;
    assert!(answers(p_env).await);
    assert!(!answers(p_cfg).await, "config address used despite the env");
    drop(srv);

    let srv = TestServer::launch(Launch {
        args,
        addr_flag: false,
        port: Some(p_cfg),
        ..Launch::default()
    })
    .await;
    assert!(answers(p_cfg).await);
    assert_eq!(srv.user("a").list("").await.len(), 0);
}

#[tokio::test]
async fn data_dir_precedence_flag_env_config() {
    let base = TempDir::new().unwrap();
    let (d_cfg, d_env, d_flag) = (
        base.path().join("cfg"),
        base.path().join("env"),
        base.path().join("flag"),
    );
    for d in [&d_cfg, &d_env, &d_flag] {
        std::fs::create_dir_all(d).unwrap();
    }
    let cfg = base.path().join("conf.toml");
    write(&cfg, &format!("data_dir = \"{}\"\n", d_cfg.display()));
    let args = vec!["--config".to_string(), cfg.display().to_string()];
    let env = vec![(
        "TASKSTREAM_DATA_DIR".to_string(),
        d_env.display().to_string(),
    )];
    let db = |d: &Path| d.join("taskstream.db").exists();

    let srv = TestServer::launch(Launch {
        args: args.clone(),
        envs: env.clone(),
        data_dir: Some(d_flag.clone()),
        ..Launch::default()
    })
    .await;
    assert!(db(&d_flag) && !db(&d_env) && !db(&d_cfg));
    drop(srv);

    let srv = TestServer::launch(Launch {
        args: args.clone(),
        envs: env,
        data_dir_flag: false,
        data_dir: Some(d_env.clone()),
        ..Launch::default()
    })
    .await;
    assert!(db(&d_env) && !db(&d_cfg));
    drop(srv);

    let _srv = TestServer::launch(Launch {
        args,
        data_dir_flag: false,
        data_dir: Some(d_cfg.clone()),
        ..Launch::default()
    })
    .await;
    assert!(db(&d_cfg));
}

#[tokio::test]
async fn config_file_is_found_in_cwd_and_via_env() {
    // taskstream.toml in the working directory.
    let cwd = TempDir::new().unwrap();
    let port = free_port();
    write(
        &cwd.path().join("taskstream.toml"),
        &format!(
            "http_addr = \"127.0.0.1:{port}\"\njwt_secret = \"cwd-secret\"\ncors_origins = [\"http://cfg.example.test\"]\n"
        ),
    );
    let srv = TestServer::launch(Launch {
        addr_flag: false,
        secret_flag: false,
        port: Some(port),
        secret: Some("cwd-secret".into()),
        cwd: Some(cwd.path().to_path_buf()),
        ..Launch::default()
    })
    .await;
    assert_eq!(list_status(&srv, &tok("cwd-secret", "a")).await, 200);
    let r = srv
        .client()
        .request(reqwest::Method::OPTIONS, srv.url("/api/tasks"))
        .header("origin", "http://cfg.example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
            .as_deref(),
        Some("http://cfg.example.test"),
        "cors_origins from the config file"
    );
    drop(srv);

    // TASKSTREAM_CONFIG names the file.
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let cfg = dir.path().join("elsewhere.toml");
    write(
        &cfg,
        &format!("http_addr = \"127.0.0.1:{port}\"\njwt_secret = \"env-config-secret\"\n"),
    );
    let srv = TestServer::launch(Launch {
        addr_flag: false,
        secret_flag: false,
        port: Some(port),
        secret: Some("env-config-secret".into()),
        envs: vec![("TASKSTREAM_CONFIG".into(), cfg.display().to_string())],
        ..Launch::default()
    })
    .await;
    assert_eq!(list_status(&srv, &tok("env-config-secret", "a")).await, 200);
}

#[tokio::test]
async fn cache_sizes_come_from_flags_env_and_file_and_bad_ones_stop_the_start() {
    let cwd = TempDir::new().unwrap();
    write(
        &cwd.path().join("taskstream.toml"),
        "sqlite_readers = 2\nlog_cache_mib = 99\n",
    );
    let srv = TestServer::launch(Launch {
        args: vec!["--log-cache-mib".into(), "3".into()],
        envs: vec![("TASKSTREAM_STATE_CACHE_MIB".into(), "5".into())],
        cwd: Some(cwd.path().to_path_buf()),
        ..Launch::default()
    })
    .await;
    // The server works with small caches and says which sizes it took.
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "small caches" })).await;
    assert_eq!(alice.list("").await, vec![t]);
    let log = srv.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("cache sizes"))
        .unwrap_or_else(|| panic!("no cache sizes line in\n{log}"));
    for (key, value) in [
        ("sqlite_cache_mib", "8"),
        ("sqlite_reader_cache_mib", "4"),
        ("sqlite_readers", "2"),
        ("sqlite_mmap_mib", "0"),
        ("log_cache_mib", "3"),
        ("state_cache_mib", "5"),
    ] {
        assert!(line.contains(&format!("{key}={value}")), "{key}: {line}");
    }
    drop(srv);

    for (args, envs, named) in [
        (vec!["--sqlite-readers", "0"], vec![], "sqlite_readers"),
        (
            vec![],
            vec![("TASKSTREAM_LOG_CACHE_MIB", "65537")],
            "log_cache_mib",
        ),
        (
            vec!["--sqlite-cache-mib", "lots"],
            vec![],
            "--sqlite-cache-mib",
        ),
    ] {
        let data = TempDir::new().unwrap();
        let mut cmd = command();
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data.path())
            .args(["--http-addr", "127.0.0.1:0", "--jwt-secret", "s"])
            .args(&args);
        for (key, value) in &envs {
            cmd.env(key, value);
        }
        let out = run(cmd, Duration::from_secs(20));
        let code = out.status.and_then(|s| s.code());
        assert!(matches!(code, Some(1 | 2)), "{args:?} {envs:?}: {code:?}");
        assert!(out.stderr.contains(named), "{named}: {}", out.stderr);
    }
}

fn decode(token: &str, secret: &str) -> Value {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &v,
    )
    .unwrap_or_else(|e| panic!("token {token:?} does not verify: {e}"))
    .claims
}

#[tokio::test]
async fn token_subcommand_mints_accepted_tokens() {
    let srv = TestServer::launch(Launch {
        secret_flag: false,
        ..Launch::default()
    })
    .await;
    let mut cmd = command();
    cmd.arg("token")
        .arg("--data-dir")
        .arg(srv.data_dir())
        .args(["--sub", "alice"]);
    let out = run(cmd, Duration::from_secs(20));
    assert_eq!(
        out.status.and_then(|s| s.code()),
        Some(0),
        "stderr: {}",
        out.stderr
    );
    let token = out.stdout.trim();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {:?}", out.stdout);
    let claims = decode(token, srv.secret());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(list_status(&srv, token).await, 200);
    let r = Resp::from(
        srv.client()
            .post(srv.url("/api/tasks"))
            .bearer_auth(token)
            .json(&json!({ "title": "via cli token" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.expect(201)["user_id"], "alice");

    // --jwt-secret instead of --data-dir, and --ttl-secs.
    let srv2 = TestServer::start().await;
    let mut cmd = command();
    cmd.args([
        "token",
        "--jwt-secret",
        srv2.secret(),
        "--sub",
        "bob",
        "--ttl-secs",
        "120",
    ]);
    let out = run(cmd, Duration::from_secs(20));
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    let token = out.stdout.trim();
    let claims = decode(token, srv2.secret());
    assert_eq!(claims["sub"], "bob");
    let exp = claims["exp"].as_i64().expect("exp claim");
    assert!((exp - now() - 120).abs() < 60, "exp {exp} is not now+120");
    assert_eq!(list_status(&srv2, token).await, 200);
    assert_eq!(list_status(&srv, token).await, 401);
}

#[tokio::test]
async fn serve_help_mentions_every_variable() {
    let mut cmd = command();
    cmd.args(["serve", "--help"]);
    let out = run(cmd, Duration::from_secs(20));
    assert_eq!(out.status.and_then(|s| s.code()), Some(0), "{}", out.stderr);
    for var in [
        "TASKSTREAM_DATA_DIR",
        "TASKSTREAM_HTTP_ADDR",
        "TASKSTREAM_JWT_SECRET",
        "TASKSTREAM_CORS_ORIGINS",
        "TASKSTREAM_CONFIG",
        "TASKSTREAM_LOG_FORMAT",
        "TASKSTREAM_LOG_LEVEL",
    ] {
        assert!(
            out.stdout.contains(var),
            "serve --help lacks {var}:\n{}",
            out.stdout
        );
    }
    for flag in [
        "--data-dir",
        "--http-addr",
        "--jwt-secret",
        "--cors-origins",
        "--config",
    ] {
        assert!(out.stdout.contains(flag), "serve --help lacks {flag}");
    }
}

#[tokio::test]
async fn logs_say_listening_on_stderr() {
    let srv = TestServer::start().await;
    let addr = format!("127.0.0.1:{}", srv.port());
    let mut text = String::new();
    for _ in 0..100 {
        text = srv.stderr();
        if text
            .lines()
            .any(|l| l.contains("listening") && l.contains(&addr))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        text.lines()
            .any(|l| l.contains("listening") && l.contains(&addr)),
        "no 'listening ... {addr}' line on stderr:\n{text}"
    );
}

#[tokio::test]
async fn json_log_format() {
    let by_flag = TestServer::start_with(&["--log-format", "json"], &[]).await;
    check_json_logs(&by_flag).await;
    let by_env = TestServer::start_with(&[], &[("TASKSTREAM_LOG_FORMAT", "json")]).await;
    check_json_logs(&by_env).await;
}

async fn check_json_logs(srv: &TestServer) {
    srv.user("a").list("").await;
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = srv
            .stderr()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
        if lines.iter().any(|l| l.contains("listening")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!lines.is_empty(), "no log lines");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
        assert!(v.is_object(), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("listening")));
}
