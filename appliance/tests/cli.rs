//! The command line as a user meets it. Declaring this integration test also makes
//! `cargo test --workspace` build the `taskstream` binary that the end-to-end suite in `tests/`
//! spawns.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn taskstream(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_taskstream"))
        .args(args)
        .env_remove("TASKSTREAM_JWT_SECRET")
        .env_remove("JWT_SECRET")
        .env_remove("TASKSTREAM_DATA_DIR")
        .env_remove("TASKSTREAM_CONFIG")
        .output()
        .expect("run taskstream")
}

#[test]
fn help_lists_the_subcommands() {
    let output = taskstream(&["--help"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for subcommand in ["serve", "token", "bench"] {
        assert!(
            text.contains(subcommand),
            "--help should mention {subcommand}:\n{text}"
        );
    }
}

#[test]
fn serve_help_documents_every_setting_and_its_variable() {
    let output = taskstream(&["serve", "--help"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for (flag, variable) in [
        ("--data-dir", "TASKSTREAM_DATA_DIR"),
        ("--http-addr", "TASKSTREAM_HTTP_ADDR"),
        ("--jwt-secret", "TASKSTREAM_JWT_SECRET"),
        ("--cors-origins", "TASKSTREAM_CORS_ORIGINS"),
        ("--config", "TASKSTREAM_CONFIG"),
        ("--log-format", "TASKSTREAM_LOG_FORMAT"),
        ("--log-level", "TASKSTREAM_LOG_LEVEL"),
        ("--llm-api-key", "TASKSTREAM_LLM_API_KEY"),
        ("--llm-base-url", "TASKSTREAM_LLM_BASE_URL"),
        ("--llm-model", "TASKSTREAM_LLM_MODEL"),
        ("--llm-fallback-model", "TASKSTREAM_LLM_FALLBACK_MODEL"),
        ("--llm-timeout-secs", "TASKSTREAM_LLM_TIMEOUT_SECS"),
    ] {
        assert!(
            text.contains(flag) && text.contains(variable),
            "serve --help should document {flag} / {variable}:\n{text}"
        );
    }
}

#[test]
fn serve_help_never_shows_an_api_key_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_taskstream"))
        .args(["serve", "--help"])
        .env("TASKSTREAM_LLM_API_KEY", "gsk_secret_from_env")
        .output()
        .expect("run taskstream");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("GROQ_API_KEY"), "{text}");
    assert!(!text.contains("gsk_secret_from_env"), "{text}");
}

#[test]
fn token_signs_with_the_given_secret() {
    let output = taskstream(&[
        "token",
        "--jwt-secret",
        "s3cret-for-tests",
        "--sub",
        "alice",
        "--ttl-secs",
        "120",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(b"s3cret-for-tests"),
        &validation,
    )
    .expect("a valid HS256 token");
    assert_eq!(data.claims["sub"], "alice");
    let lifetime = data.claims["exp"].as_i64().unwrap() - data.claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 120);
}

#[test]
fn token_without_any_secret_explains_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = taskstream(&[
        "token",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--sub",
        "alice",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no JWT secret"), "{stderr}");
}

#[test]
fn a_broken_config_file_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("taskstream.toml");
    std::fs::write(&config, "http_adr = \"127.0.0.1:1\"\n").unwrap();
    let output = taskstream(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid configuration file") && stderr.contains("http_adr"),
        "{stderr}"
    );
}
