//! The secrets API (`dapr.md` §1.5): `GET /v1.0/secrets/{store}/{name}` answers every key of a
//! secret, so settings such as `--database-url-secret taskstream-db/url` name a secret and a key.

use std::collections::BTreeMap;
use std::str::FromStr;

use reqwest::{Method, StatusCode};

use super::client::{DaprClient, segment, status_error};
use super::{DaprError, SECRET_STORE};

/// A `name/key` reference to one value of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The secret (a Kubernetes `Secret` name).
    pub name: String,
    /// The key inside it.
    pub key: String,
}

impl FromStr for SecretRef {
    type Err = DaprError;

    /// `name/key`, both non-empty (Kubernetes secret names and keys contain no `/`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().split_once('/') {
            Some((name, key)) if !name.is_empty() && !key.is_empty() && !key.contains('/') => {
                Ok(Self {
                    name: name.to_owned(),
                    key: key.to_owned(),
                })
            }
            _ => Err(DaprError::Config(format!(
                "secret reference {text:?} is not of the form name/key"
            ))),
        }
    }
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.name, self.key)
    }
}

/// Reads secrets through the sidecar, from the `kubernetes` store unless told otherwise.
#[derive(Debug, Clone)]
pub struct DaprSecrets {
    client: DaprClient,
    store: String,
}

impl DaprSecrets {
    /// Reads from the `kubernetes` store daprd preloads.
    pub fn new(client: DaprClient) -> Self {
        Self {
            client,
            store: SECRET_STORE.to_owned(),
        }
    }

    /// Reads from another secret store component.
    pub fn with_store(mut self, store: &str) -> Self {
        self.store = store.to_owned();
        self
    }

    /// Every key of secret `name`; [`DaprError::SecretNotFound`] when the store has none
    /// (daprd answers 204).
    pub async fn get(&self, name: &str) -> Result<BTreeMap<String, String>, DaprError> {
        let path = format!("/v1.0/secrets/{}/{}", segment(&self.store), segment(name));
        let response = self
            .client
            .send("secret get", self.client.request(Method::GET, &path))
            .await?;
        match response.status() {
            // The documented "not found"; local.file and kubernetes answer a missing secret
            // with a 500 ERR_SECRET_GET instead, which stays a status error.
            StatusCode::NO_CONTENT => Err(DaprError::SecretNotFound(name.to_owned())),
            StatusCode::FORBIDDEN => Err(DaprError::SecretDenied {
                store: self.store.clone(),
                name: name.to_owned(),
            }),
            status if status.is_success() => response
                .json::<BTreeMap<String, String>>()
                .await
                .map_err(|error| DaprError::Decode {
                    operation: "secret get",
                    reason: error.to_string(),
                }),
            _ => Err(status_error("secret get", response).await),
        }
    }

    /// The value `reference` points at.
    pub async fn resolve(&self, reference: &SecretRef) -> Result<String, DaprError> {
        let mut secret = self.get(&reference.name).await?;
        secret
            .remove(&reference.key)
            .ok_or_else(|| DaprError::SecretKeyMissing {
                name: reference.name.clone(),
                key: reference.key.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_name_slash_key() {
        let parsed: SecretRef = "taskstream-db/url".parse().expect("valid");
        assert_eq!(
            parsed,
            SecretRef {
                name: "taskstream-db".into(),
                key: "url".into()
            }
        );
        assert_eq!(parsed.to_string(), "taskstream-db/url");
        for bad in ["", "db", "/url", "db/", "a/b/c"] {
            assert!(bad.parse::<SecretRef>().is_err(), "{bad:?}");
        }
    }
}
