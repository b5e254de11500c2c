//! The sidecar HTTP client shared by every adapter: where the sidecar is, the API token, and
//! waiting for the sidecar before the first call (`dapr.md` §1.7, §1.8).

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use tokio::sync::watch;

use super::{DaprError, TOKEN_HEADER};

/// Port daprd listens on for HTTP when nothing says otherwise.
pub const DEFAULT_HTTP_PORT: u16 = 3500;
/// How long to wait for the sidecar by default (the SDKs' `DAPR_HEALTH_TIMEOUT`).
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-request timeout: sidecar calls are local, so a slow one means trouble.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const READY_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const READY_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Where the sidecar is and how to talk to it.
#[derive(Clone)]
pub struct DaprClientConfig {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    /// Sent as `dapr-api-token` on every call when set (`DAPR_API_TOKEN`).
    pub api_token: Option<String>,
    /// Per call: sidecar calls are local, so a slow one means trouble.
    pub request_timeout: Duration,
    /// Upper bound of [`DaprClient::wait_outbound_ready`] (`DAPR_HEALTH_TIMEOUT`, seconds).
    pub health_timeout: Duration,
}

impl std::fmt::Debug for DaprClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaprClientConfig")
            .field("base_url", &self.base_url)
            .field("api_token", &self.api_token.as_ref().map(|_| "<set>"))
            .field("request_timeout", &self.request_timeout)
            .field("health_timeout", &self.health_timeout)
            .finish()
    }
}

impl DaprClientConfig {
    /// A sidecar on `127.0.0.1:port` (the pod-local daprd), no token.
    pub fn for_port(port: u16) -> Self {
        Self::for_url(&format!("http://127.0.0.1:{port}"))
    }

    /// A sidecar at `url`, no token.
    pub fn for_url(url: &str) -> Self {
        Self {
            base_url: url.trim_end_matches('/').to_owned(),
            api_token: None,
            request_timeout: REQUEST_TIMEOUT,
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
        }
    }

    /// Sends `token` as `dapr-api-token` (empty means none).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.api_token = token.filter(|token| !token.is_empty());
        self
    }

    /// What the injector and the SDK conventions set: `DAPR_HTTP_ENDPOINT` (a full URL) wins
    /// over `DAPR_HTTP_PORT` (default 3500); `DAPR_API_TOKEN`; `DAPR_HEALTH_TIMEOUT` seconds.
    pub fn from_env() -> Result<Self, DaprError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any variable lookup (testable without touching the process).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DaprError> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let mut config = match (set("DAPR_HTTP_ENDPOINT"), set("DAPR_HTTP_PORT")) {
            (Some(endpoint), _) => {
                let endpoint = endpoint.trim();
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(DaprError::Config(format!(
                        "DAPR_HTTP_ENDPOINT must be an http(s) URL, got {endpoint:?}"
                    )));
                }
                Self::for_url(endpoint)
            }
            (None, Some(port)) => {
                let port = port.trim().parse::<u16>().map_err(|_| {
                    DaprError::Config(format!("DAPR_HTTP_PORT is not a port: {port:?}"))
                })?;
                Self::for_port(port)
            }
            (None, None) => Self::for_port(DEFAULT_HTTP_PORT),
        };
        config.api_token = set("DAPR_API_TOKEN");
        if let Some(seconds) = set("DAPR_HEALTH_TIMEOUT") {
            let seconds = seconds.trim().parse::<u64>().map_err(|_| {
                DaprError::Config(format!("DAPR_HEALTH_TIMEOUT is not seconds: {seconds:?}"))
            })?;
            config.health_timeout = Duration::from_secs(seconds);
        }
        Ok(config)
    }
}

/// A cheap-to-clone handle on the sidecar's HTTP API.
#[derive(Clone)]
pub struct DaprClient {
    http: reqwest::Client,
    config: DaprClientConfig,
}

impl std::fmt::Debug for DaprClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaprClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DaprClient {
    /// A client for the sidecar `config` describes (never through a proxy).
    pub fn new(config: DaprClientConfig) -> Result<Self, DaprError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            // The sidecar is next to us: a proxy from the environment must never sit between.
            .no_proxy()
            .build()
            .map_err(|error| DaprError::Config(format!("http client: {error}")))?;
        Ok(Self { http, config })
    }

    /// A client configured by [`DaprClientConfig::from_env`].
    pub fn from_env() -> Result<Self, DaprError> {
        Self::new(DaprClientConfig::from_env()?)
    }

    /// Where the sidecar is, for logs.
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// The settings in use.
    pub fn config(&self) -> &DaprClientConfig {
        &self.config
    }

    /// A request to `path` (starting with `/`), carrying the API token when one is set.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.config.base_url));
        match &self.config.api_token {
            Some(token) => builder.header(TOKEN_HEADER, token),
            None => builder,
        }
    }

    /// Sends `request`, turning transport failures into [`DaprError::Unreachable`].
    pub(crate) async fn send(
        &self,
        operation: &'static str,
        request: RequestBuilder,
    ) -> Result<Response, DaprError> {
        request
            .send()
            .await
            .map_err(|error| DaprError::Unreachable {
                operation,
                reason: error_chain(&error),
            })
    }

    /// Whether `GET /v1.0/healthz/outbound` says the components are ready (204).
    pub async fn outbound_ready(&self) -> Result<bool, DaprError> {
        let response = self
            .send(
                "healthz/outbound",
                self.request(Method::GET, "/v1.0/healthz/outbound"),
            )
            .await?;
        Ok(response.status().is_success())
    }

    /// Waits until the sidecar's components are ready, polling `healthz/outbound` with
    /// exponential backoff, at most [`DaprClientConfig::health_timeout`]; gives up early with
    /// [`DaprError::Cancelled`] when `shutdown` turns true. Call before the first state or
    /// pub/sub call: daprd accepts connections before its components are loaded.
    pub async fn wait_outbound_ready(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), DaprError> {
        let limit = self.config.health_timeout;
        let deadline = tokio::time::Instant::now() + limit;
        let mut backoff = READY_BACKOFF_FIRST;
        loop {
            if *shutdown.borrow() {
                return Err(DaprError::Cancelled);
            }
            match self.outbound_ready().await {
                Ok(true) => return Ok(()),
                Ok(false) => tracing::debug!("dapr sidecar not ready yet"),
                Err(error) => tracing::debug!(%error, "dapr sidecar not reachable yet"),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(DaprError::NotReady(limit));
            }
            let pause = backoff.min(deadline - now);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return Err(DaprError::Cancelled);
                    }
                }
            }
            backoff = (backoff * 2).min(READY_BACKOFF_MAX);
        }
    }
}

/// The error and its causes on one line (reqwest hides "connection refused" in a source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads a non-accepted answer into a [`DaprError::Status`] (body cut to 512 bytes).
pub(crate) async fn status_error(operation: &'static str, response: Response) -> DaprError {
    let status = response.status().as_u16();
    let mut body = response.text().await.unwrap_or_default();
    if body.len() > 512 {
        let mut cut = 512;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    DaprError::Status {
        operation,
        status,
        body,
    }
}

/// Percent-encodes one URL path segment (state keys, job and secret names).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `/ready`'s check of the sidecar: its components answer (`healthz/outbound`).
impl taskstream_engine::ports::Probe for DaprClient {
    fn check(&self) -> taskstream_engine::ports::ProbeFuture<'_> {
        Box::pin(async move {
            match self.outbound_ready().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("dapr sidecar outbound not ready".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn configuration_follows_the_injector_variables() {
        let config = DaprClientConfig::from_lookup(env(&[])).expect("defaults");
        assert_eq!(config.base_url, "http://127.0.0.1:3500");
        assert!(config.api_token.is_none());
        let config = DaprClientConfig::from_lookup(env(&[
            ("DAPR_HTTP_PORT", "3600"),
            ("DAPR_API_TOKEN", "t"),
            ("DAPR_HEALTH_TIMEOUT", "5"),
        ]))
        .expect("port");
        assert_eq!(config.base_url, "http://127.0.0.1:3600");
        assert_eq!(config.api_token.as_deref(), Some("t"));
        assert_eq!(config.health_timeout, Duration::from_secs(5));
        let config = DaprClientConfig::from_lookup(env(&[
            ("DAPR_HTTP_ENDPOINT", "http://dapr.local:80/"),
            ("DAPR_HTTP_PORT", "3600"),
            ("DAPR_API_TOKEN", ""),
        ]))
        .expect("endpoint");
        assert_eq!(config.base_url, "http://dapr.local:80");
        assert!(config.api_token.is_none(), "empty token means none");
        assert!(DaprClientConfig::from_lookup(env(&[("DAPR_HTTP_PORT", "x")])).is_err());
        assert!(DaprClientConfig::from_lookup(env(&[("DAPR_HTTP_ENDPOINT", "dapr:80")])).is_err());
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(
            segment("audit-processed:0f0e"),
            "audit-processed:0f0e",
            "keys stay readable"
        );
        assert_eq!(segment("a/b c?d"), "a%2Fb%20c%3Fd");
    }
}
