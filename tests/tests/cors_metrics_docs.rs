//! CORS, /health, /ready, /metrics, /openapi.json, /docs and x-request-id.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use taskstream_tests::{Resp, TestServer, assert_utc, id_of};

const DEFAULT_ORIGINS: &[&str] = &[
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://[::1]:3000",
    "http://localhost:3001",
    "http://127.0.0.1:3001",
    "https://frontend-sepia-alpha-94.vercel.app",
    "https://todo-chatbot-app.vercel.app",
];

async fn preflight(srv: &TestServer, path: &str, origin: &str, method: &str) -> Resp {
    let r = srv
        .client()
        .request(reqwest::Method::OPTIONS, srv.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    Resp::from(r).await
}

#[track_caller]
fn assert_allowed(r: &Resp, origin: &str) {
    assert!(
        (200..300).contains(&r.status),
        "preflight from {origin}: {}",
        r.status
    );
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(origin),
        "allow-origin for {origin}"
    );
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let methods = r
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_uppercase();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "allow-methods {methods:?} lacks {m}");
    }
    let headers = r
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "allow-headers {headers:?}"
    );
}

async fn preflight_from_default_origins_is_allowed(srv: TestServer) {
    let r = preflight(&srv, "/api/tasks", "http://localhost:3000", "POST").await;
    assert_allowed(&r, "http://localhost:3000");
    let id = uuid::Uuid::new_v4();
    for origin in DEFAULT_ORIGINS {
        for (path, m) in [
            ("/api/tasks".to_string(), "GET"),
            (format!("/api/tasks/{id}"), "PUT"),
            (format!("/api/tasks/{id}"), "DELETE"),
            (format!("/api/tasks/{id}/complete"), "PATCH"),
        ] {
            let r = preflight(&srv, &path, origin, m).await;
            assert_allowed(&r, origin);
        }
    }
}

async fn foreign_origin_gets_no_allow_origin(srv: TestServer) {
    for origin in [
        "http://evil.example",
        "http://localhost:3002",
        "https://localhost:3000",
        "http://localhost:3000.evil.example",
        "null",
    ] {
        let r = preflight(&srv, "/api/tasks", origin, "POST").await;
        assert_eq!(
            r.header("access-control-allow-origin"),
            None,
            "{origin} must not be allowed"
        );
        let r = srv
            .client()
            .get(srv.url("/health"))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
}

async fn actual_requests_carry_cors_headers(srv: TestServer) {
    let alice = srv.user("alice");
    let r = alice
        .req(reqwest::Method::POST, "/api/tasks")
        .header("origin", "http://localhost:3000")
        .json(&json!({ "title": "from the browser" }))
        .send()
        .await
        .unwrap();
    let r = Resp::from(r).await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    // Errors carry them too, so the browser can read the detail.
    let r = srv
        .client()
        .get(srv.url("/api/tasks"))
        .header("origin", "https://todo-chatbot-app.vercel.app")
        .send()
        .await
        .unwrap();
    let r = Resp::from(r).await;
    r.expect_detail(401, "Not authenticated");
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("https://todo-chatbot-app.vercel.app")
    );
}

#[tokio::test]
async fn cors_origins_flag_adds_origins() {
    let srv = TestServer::start_with(
        &[
            "--cors-origins",
            "http://example.test:8080,https://app.example.test",
        ],
        &[],
    )
    .await;
    for origin in ["http://example.test:8080", "https://app.example.test"] {
        let r = preflight(&srv, "/api/tasks", origin, "POST").await;
        assert_allowed(&r, origin);
    }
    // The defaults stay.
    let r = preflight(&srv, "/api/tasks", "http://localhost:3000", "POST").await;
    assert_allowed(&r, "http://localhost:3000");
    let r = preflight(&srv, "/api/tasks", "http://evil.example", "POST").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_origins_env_adds_origins() {
    let srv = TestServer::start_with(
        &[],
        &[("TASKSTREAM_CORS_ORIGINS", "http://env.example.test:9000")],
    )
    .await;
    let r = preflight(&srv, "/api/tasks", "http://env.example.test:9000", "GET").await;
    assert_allowed(&r, "http://env.example.test:9000");
    let r = preflight(&srv, "/api/tasks", "http://localhost:3000", "GET").await;
    assert_allowed(&r, "http://localhost:3000");
}

async fn health_and_ready(srv: TestServer) {
    let r = Resp::from(srv.client().get(srv.url("/health")).send().await.unwrap()).await;
    let v = r.expect(200);
    assert_eq!(v["status"], "healthy");
    let ts = assert_utc(&v["timestamp"]);
    let skew = (chrono::Utc::now() - ts).num_seconds().abs();
    assert!(skew < 600, "health timestamp is not now: {ts}");
    let r = Resp::from(srv.client().get(srv.url("/ready")).send().await.unwrap()).await;
    assert_eq!(r.expect(200)["status"], "ready");
}

async fn metrics_use_route_templates(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "m" })).await;
    let id = id_of(&t);
    alice.get_task(&id).await.expect(200);
    alice
        .get_task(&uuid::Uuid::new_v4().to_string())
        .await
        .expect(404);
    let stray = uuid::Uuid::new_v4().to_string();
    alice
        .get(&format!("/no/such/route/{stray}"))
        .await
        .expect(404);
    let r = Resp::from(srv.client().get(srv.url("/metrics")).send().await.unwrap()).await;
    r.expect(200);
    assert!(
        !r.text.contains(&stray),
        "unmatched paths must not become metric labels"
    );
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "metrics content-type"
    );
    let text = &r.text;
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .collect();
    assert!(!lines.is_empty(), "no http_requests_total in:\n{text}");
    let templ = |status: &str| {
        lines.iter().any(|l| {
            l.contains("path=\"/api/tasks/{task_id}\"")
                && l.contains("method=\"GET\"")
                && l.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(
        templ("200"),
        "no GET /api/tasks/{{task_id}} 200 sample:\n{text}"
    );
    assert!(
        templ("404"),
        "no GET /api/tasks/{{task_id}} 404 sample:\n{text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("path=\"/api/tasks\"")
            && l.contains("method=\"POST\"")
            && l.contains("status=\"201\"")),
        "no POST /api/tasks 201 sample:\n{text}"
    );
    assert!(
        !text.contains(&id),
        "raw task ids must not be metric labels"
    );
    assert!(
        text.contains("http_request_duration_seconds"),
        "no duration histogram:\n{text}"
    );
    // Counters count: a second GET increments the sample.
    let count = |text: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("http_requests_total{")
                    && l.contains("path=\"/api/tasks/{task_id}\"")
                    && l.contains("method=\"GET\"")
                    && l.contains("status=\"200\"")
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    let before = count(text);
    alice.get_task(&id).await.expect(200);
    alice.get_task(&id).await.expect(200);
    let r = Resp::from(srv.client().get(srv.url("/metrics")).send().await.unwrap()).await;
    assert_eq!(count(&r.text), before + 2.0);
}

async fn openapi_document(srv: TestServer) {
    let r = Resp::from(
        srv.client()
            .get(srv.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let doc = r.expect(200);
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with('3'),
        "not OpenAPI 3: {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");
    for (p, methods) in [
        ("/api/tasks", &["get", "post"][..]),
        ("/api/tasks/{task_id}", &["get", "put", "delete"][..]),
        ("/api/tasks/{task_id}/complete", &["patch"][..]),
    ] {
        let item = paths
            .get(p)
            .unwrap_or_else(|| panic!("openapi lacks {p}: {:?}", paths.keys()));
        for m in methods {
            assert!(item.get(*m).is_some(), "openapi {p} lacks {m}");
        }
    }
}

async fn docs_serve_html(srv: TestServer) {
    for p in ["/docs", "/docs/"] {
        let r = Resp::from(srv.client().get(srv.url(p)).send().await.unwrap()).await;
        r.expect(200);
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{p} content-type"
        );
        let lower = r.text.to_lowercase();
        assert!(
            lower.contains("<html") || lower.contains("<!doctype html"),
            "{p}"
        );
        assert!(lower.contains("swagger"), "{p} is not Swagger UI");
    }
}

async fn request_ids(srv: TestServer) {
    let alice = srv.user("alice");
    // Generated when absent, on success and on errors alike.
    let mut seen = std::collections::BTreeSet::new();
    for path in ["/health", "/api/tasks", "/nope"] {
        let r = alice.get(path).await;
        let rid = r.header("x-request-id").unwrap_or_default();
        assert!(!rid.is_empty(), "{path} has no x-request-id");
        seen.insert(rid);
    }
    assert_eq!(seen.len(), 3, "request ids should differ");
    let r = Resp::from(
        srv.client()
            .get(srv.url("/api/tasks"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.header("x-request-id").is_some());
    // Propagated when sent.
    for (path, want) in [("/health", 200), ("/api/tasks", 200), ("/nope", 404)] {
        let r = alice
            .req(reqwest::Method::GET, path)
            .header("x-request-id", "req-abc-123")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want);
        assert_eq!(
            r.headers().get("x-request-id").unwrap().to_str().unwrap(),
            "req-abc-123"
        );
    }
    let r = alice
        .req(reqwest::Method::POST, "/api/tasks")
        .header("x-request-id", "create-1")
        .json(&json!({ "title": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
    assert_eq!(r.headers().get("x-request-id").unwrap(), "create-1");
}

taskstream_tests::api_tests!(
    preflight_from_default_origins_is_allowed,
    foreign_origin_gets_no_allow_origin,
    actual_requests_carry_cors_headers,
    health_and_ready,
    metrics_use_route_templates,
    openapi_document,
    docs_serve_html,
    request_ids,
);
