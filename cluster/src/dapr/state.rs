//! [`DaprStateStore`]: the consumers' [`StateStore`] over the sidecar's state API
//! (`dapr.md` §1.4), on the `statestore` component (Redis in the chart).
//!
//! Values: the port stores bytes, Dapr stores JSON. Bytes that are compact JSON with sorted keys
//! (what the consumers write) are stored as that JSON, readable in Redis; anything else goes in
//! a `{"taskstream:b64": …}` wrapper. Reads re-serialise canonically, so a value reads back
//! byte for byte whatever formatting the store applies.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use taskstream_engine::EngineError;
use taskstream_engine::ports::StateStore;

use super::client::{DaprClient, segment, status_error};
use super::{DaprError, STATE_STORE};

/// The wrapper key of values that are not canonical JSON.
const BYTES_KEY: &str = "taskstream:b64";

/// [`StateStore`] on a Dapr state component. Expiry is the component's (`ttlInSeconds`), so
/// [`StateStore::purge_expired`] has nothing to do.
#[derive(Debug, Clone)]
pub struct DaprStateStore {
    client: DaprClient,
    store: String,
}

impl DaprStateStore {
    /// On the `statestore` component.
    pub fn new(client: DaprClient) -> Self {
        Self {
            client,
            store: STATE_STORE.to_owned(),
        }
    }

    /// On another state component.
    pub fn with_store(mut self, name: &str) -> Self {
        self.store = name.to_owned();
        self
    }

    fn collection(&self) -> String {
        format!("/v1.0/state/{}", segment(&self.store))
    }

    fn item(&self, key: &str) -> String {
        format!("{}/{}", self.collection(), segment(key))
    }

    /// Reads a key: `Some(raw body)` on 200, `None` on 204.
    pub async fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, DaprError> {
        let response = self
            .client
            .send(
                "state get",
                self.client.request(Method::GET, &self.item(key)),
            )
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(None),
            status if status.is_success() => {
                let body = response
                    .bytes()
                    .await
                    .map_err(|error| DaprError::Unreachable {
                        operation: "state get",
                        reason: error.to_string(),
                    })?;
                Ok(Some(body.to_vec()))
            }
            _ => Err(status_error("state get", response).await),
        }
    }

    /// Saves one item; `first_write` asks for insert-only (see [`StateStore::set_if_absent`]).
    async fn save(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        first_write: bool,
    ) -> Result<reqwest::Response, DaprError> {
        let mut item = json!({
            "key": key,
            "value": encode(value),
            "metadata": { "ttlInSeconds": ttl_seconds(ttl) },
        });
        if first_write {
            item["options"] = json!({ "concurrency": "first-write" });
        }
        let request = self
            .client
            .request(Method::POST, &self.collection())
            .json(&json!([item]));
        self.client.send("state save", request).await
    }
}

/// `ttlInSeconds` metadata: whole seconds rounded up (so a TTL never shortens), `-1` for
/// "never", which also overrides a default TTL set on the component.
fn ttl_seconds(ttl: Option<Duration>) -> String {
    match ttl {
        None => "-1".to_owned(),
        Some(ttl) => {
            let whole = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
            whole.max(1).to_string()
        }
    }
}

fn is_wrapper(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|fields| fields.len() == 1 && fields.contains_key(BYTES_KEY))
}

/// The JSON a value is stored as.
pub(crate) fn encode(bytes: &[u8]) -> Value {
    if let Ok(value) = serde_json::from_slice::<Value>(bytes)
        && !is_wrapper(&value)
        && serde_json::to_vec(&value).is_ok_and(|canonical| canonical == bytes)
    {
        return value;
    }
    json!({ BYTES_KEY: BASE64.encode(bytes) })
}

/// The bytes a stored body stands for (inverse of [`encode`]).
pub(crate) fn decode(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if is_wrapper(&value) => value
            .get(BYTES_KEY)
            .and_then(Value::as_str)
            .and_then(|text| BASE64.decode(text).ok())
            .unwrap_or_else(|| body.to_vec()),
        Ok(value) => serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec()),
        // Written by someone else as non-JSON: hand it over as is.
        Err(_) => body.to_vec(),
    }
}

#[async_trait]
impl StateStore for DaprStateStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.get_raw(key).await?.map(|body| decode(&body)))
    }

    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<(), EngineError> {
        let response = self.save(key, &value, ttl, false).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error("state save", response).await.into())
        }
    }

    /// Insert-only save: `options.concurrency: first-write` without an ETag. What real daprd
    /// 1.18.3 with state.redis does (seen by `tests/tests/real_dapr.rs`): the save writes
    /// when the key is absent or was written WITHOUT first-write, and a key once written with
    /// first-write refuses every save without its ETag (plain ones too) with a 500
    /// `ERR_STATE_SAVE`; 409 only comes with an ETag. So keys claimed here must only ever be
    /// written here. 2xx is a win, 409 a loss, and after any other answer the key is read
    /// back: present means someone else holds it (a loss), absent means the save really
    /// failed (an error).
    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, EngineError> {
        let response = self.save(key, &value, ttl, true).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        if status == StatusCode::CONFLICT {
            return Ok(false);
        }
        let refused = status_error("state save", response).await;
        match self.get_raw(key).await {
            Ok(Some(_)) => Ok(false),
            Ok(None) | Err(_) => Err(refused.into()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), EngineError> {
        let response = self
            .client
            .send(
                "state delete",
                self.client.request(Method::DELETE, &self.item(key)),
            )
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error("state delete", response).await.into())
        }
    }

    async fn purge_expired(&self) -> Result<u64, EngineError> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_byte_for_byte() {
        let samples: [&[u8]; 7] = [
            br#"{"event_id":"e","processed_at":"t"}"#,
            br#"{ "b": 1, "a": 2 }"#,
            b"plain text",
            b"",
            &[0, 159, 146, 150],
            br#"{"taskstream:b64":"AAAA"}"#,
            b"42",
        ];
        for bytes in samples {
            let stored = serde_json::to_vec(&encode(bytes)).expect("json");
            assert_eq!(decode(&stored), bytes, "{bytes:?}");
        }
        assert_eq!(
            encode(br#"{"event_id":"e","processed_at":"t"}"#),
            json!({"event_id": "e", "processed_at": "t"}),
            "canonical JSON is stored readable"
        );
    }

    #[test]
    fn ttls_round_up_and_none_means_never() {
        assert_eq!(ttl_seconds(None), "-1");
        assert_eq!(ttl_seconds(Some(Duration::from_secs(86_400))), "86400");
        assert_eq!(ttl_seconds(Some(Duration::from_millis(1_500))), "2");
        assert_eq!(ttl_seconds(Some(Duration::ZERO)), "1");
    }
}
