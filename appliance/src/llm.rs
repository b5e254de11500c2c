//! The chat assistant's language model over HTTP: any OpenAI-compatible chat-completions
//! endpoint (Groq by default), with a per-request timeout and a few retries for failures that
//! go away by themselves, so one dropped connection does not cost the user the model.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use taskstream_engine::assistant::llm::{
    ChatModel, ChatRequest, ChatResponse, LlmAssistant, ModelError,
};
use taskstream_engine::assistant::{Assistant, Tools};

use crate::config::{LlmSettings, Settings};

/// How failed requests are tried again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The first backoff; each retry doubles it, plus up to half again of random jitter.
    pub first_backoff: Duration,
    /// The longest wait: a backoff is cut to it, and a `Retry-After` longer than it is not
    /// waited for at all (the fallback model or the offline assistant answers sooner).
    pub max_wait: Duration,
    /// No retry starts once this much time has gone since the first attempt, so a dead
    /// provider costs the user a bounded wait.
    pub budget: Duration,
}

impl RetryPolicy {
    /// Two retries, 0.5 s then about 1 s apart, `Retry-After` up to 10 s, all within twice the
    /// request timeout.
    pub fn for_timeout(timeout: Duration) -> Self {
        Self {
            max_retries: 2,
            first_backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(10),
            budget: timeout.saturating_mul(2),
        }
    }

    /// How long to wait before retry number `retry` (0-based) after `error`; `None` when the
    /// provider asks for a longer pause than [`RetryPolicy::max_wait`].
    fn wait(&self, retry: u32, error: &ModelError) -> Option<Duration> {
        if let ModelError::RateLimited {
            retry_after: Some(asked),
            ..
        } = error
        {
            return (*asked <= self.max_wait).then_some(*asked);
        }
        let backoff = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_wait);
        let jitter_range = u64::try_from(backoff.as_millis() / 2).unwrap_or(u64::MAX);
        let jitter = match jitter_range {
            0 => 0,
            range => getrandom::u64().unwrap_or(0) % (range + 1),
        };
        Some(
            backoff
                .saturating_add(Duration::from_millis(jitter))
                .min(self.max_wait),
        )
    }
}

/// [`ChatModel`] over HTTP. Holds the API key; it has no `Debug` so the key cannot reach a log.
pub struct HttpChatModel {
    client: reqwest::Client,
    endpoint: String,
    api_key: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl HttpChatModel {
    /// A model at `{base_url}/chat/completions`, each request limited to `timeout`.
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("taskstream/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            endpoint: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            api_key: api_key.to_owned(),
            timeout,
            retry: RetryPolicy::for_timeout(timeout),
        })
    }

    /// Tests shorten the pauses; production keeps [`RetryPolicy::for_timeout`].
    #[cfg(test)]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// One request, no retry.
    async fn attempt(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let response = self
            .client
            .post(&self.endpoint)
            .bearer_auth(&self.api_key)
            .json(request)
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(error))?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|error| ModelError::Malformed(error.to_string()))
        } else {
            Err(ModelError::from_status(
                status.as_u16(),
                error_message(&body),
                retry_after,
            ))
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> ModelError {
        if error.is_timeout() {
            ModelError::Timeout(self.timeout)
        } else if error.is_decode() {
            ModelError::Malformed(error.without_url().to_string())
        } else {
            // The URL is the configured endpoint; the key travels in a header, never in it.
            ModelError::Connection(error.to_string())
        }
    }
}

#[async_trait]
impl ChatModel for HttpChatModel {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        let started = Instant::now();
        let mut retry = 0;
        loop {
            let error = match self.attempt(request).await {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            if !error.is_retryable() || retry >= self.retry.max_retries {
                return Err(error);
            }
            let Some(wait) = self.retry.wait(retry, &error) else {
                return Err(error);
            };
            if started.elapsed().saturating_add(wait) >= self.retry.budget {
                return Err(error);
            }
            tracing::info!(
                model = %request.model,
                %error,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying the language model"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }
}

/// `Retry-After` in seconds (possibly fractional) or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// The message of an OpenAI-style error body `{"error": {"message": …}}`, else the start of
/// the body.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if let Some(message) = parsed
        .as_ref()
        .and_then(|value| value.pointer("/error/message"))
        .and_then(serde_json::Value::as_str)
    {
        return message.to_owned();
    }
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// The chat assistant: the LLM tool loop when an API key is configured, else `offline`. Logs
/// which one answers (never the key). The LLM one falls back to `offline` when its provider
/// fails.
pub fn build_assistant(
    settings: &Settings,
    tools: Tools,
    offline: Arc<dyn Assistant>,
) -> Arc<dyn Assistant> {
    assistant_for(settings.llm.as_ref(), tools, offline)
}

fn assistant_for(
    llm: Option<&LlmSettings>,
    tools: Tools,
    offline: Arc<dyn Assistant>,
) -> Arc<dyn Assistant> {
    let Some(llm) = llm else {
        tracing::info!(
            "chat assistant: offline (set TASKSTREAM_LLM_API_KEY or GROQ_API_KEY to use a language model)"
        );
        return offline;
    };
    match llm_assistant(llm, tools, offline.clone()) {
        Ok(assistant) => {
            tracing::info!(
                base_url = %display_url(&llm.base_url),
                model = %llm.model,
                fallback_model = llm.fallback_model.as_deref().unwrap_or("none"),
                timeout_secs = llm.timeout.as_secs(),
                "chat assistant: language model, falling back to the offline assistant"
            );
            assistant
        }
        Err(error) => {
            tracing::error!(
                error = %format!("{error:#}"),
                "cannot set up the language model; the offline assistant answers"
            );
            offline
        }
    }
}

fn llm_assistant(
    llm: &LlmSettings,
    tools: Tools,
    offline: Arc<dyn Assistant>,
) -> anyhow::Result<Arc<dyn Assistant>> {
    let model = HttpChatModel::new(&llm.base_url, llm.api_key.expose(), llm.timeout)?;
    Ok(Arc::new(LlmAssistant::new(
        Arc::new(model),
        tools,
        llm.model.clone(),
        llm.fallback_model.clone(),
        offline,
    )))
}

/// The base URL without any user name or password in it, for the log.
fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "<invalid>".to_owned(),
    }
}

#[cfg(test)]
mod tests;
