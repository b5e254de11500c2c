//! The webhook notification channel: a JSON POST per notification, signed with HMAC-SHA256 when
//! a secret is configured, so the receiver can check it came from this server.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use ring::hmac;
use serde_json::json;
use taskstream_engine::activity::Notification;
use taskstream_engine::ports::NotificationChannel;

use crate::config::Settings;

/// Header carrying `sha256=<hex HMAC of the raw body>`.
pub const SIGNATURE_HEADER: &str = "x-taskstream-signature";
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct WebhookChannel {
    client: reqwest::Client,
    url: String,
    key: Option<hmac::Key>,
}

impl WebhookChannel {
    pub fn new(url: String, secret: Option<&str>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(TIMEOUT).build()?;
        Ok(Self {
            client,
            url,
            key: secret.map(|secret| hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())),
        })
    }
}

/// `sha256=` followed by the lowercase hex HMAC-SHA256 of `body`.
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    let tag = hmac::sign(key, body);
    let hex: String = tag
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[async_trait]
impl NotificationChannel for WebhookChannel {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, notification: &Notification) -> Result<String, String> {
        let body = json!({
            "type": "notification.created",
            "user_id": notification.user_id,
            "notification": notification.view(),
        })
        .to_string();
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-taskstream-delivery", notification.id.to_string());
        if let Some(key) = &self.key {
            request = request.header(SIGNATURE_HEADER, signature(key, body.as_bytes()));
        }
        match request.body(body).send().await {
            Ok(response) if response.status().is_success() => {
                Ok(format!("HTTP {}", response.status().as_u16()))
            }
            Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
            Err(error) => Err(format!("request failed: {error}")),
        }
    }
}

/// Outside notification channels from the configuration.
pub(crate) fn notification_channels(
    settings: &Settings,
) -> anyhow::Result<Vec<Arc<dyn NotificationChannel>>> {
    let mut channels: Vec<Arc<dyn NotificationChannel>> = Vec::new();
    if let Some(url) = &settings.notify_webhook_url {
        let parsed =
            reqwest::Url::parse(url).with_context(|| format!("invalid webhook URL {url:?}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            anyhow::bail!("the webhook URL must be http or https: {url}");
        }
        if settings.notify_webhook_secret.is_none() {
            tracing::warn!(
                "webhook notifications are not signed: set TASKSTREAM_NOTIFY_WEBHOOK_SECRET"
            );
        }
        let webhook = WebhookChannel::new(url.clone(), settings.notify_webhook_secret.as_deref())?;
        tracing::info!(
            host = parsed.host_str().unwrap_or(""),
            "notifications are also sent to a webhook"
        );
        channels.push(Arc::new(webhook));
    }
    Ok(channels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_sha256() {
        // RFC 4231 test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
