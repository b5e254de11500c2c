//! Dapr adapters of the engine's ports for cluster mode, over the sidecar's HTTP API
//! (`docs/CONTRACT.md` §5, `docs/reference/dapr.md` §1):
//!
//! * [`client`]: the sidecar client (address, API token, waiting for `healthz/outbound`);
//! * [`pubsub`]: [`DaprPublisher`], the [`EventBus`](taskstream_engine::ports::EventBus) that
//!   publishes outbox events as CloudEvents;
//! * [`state`]: [`DaprStateStore`], the [`StateStore`](taskstream_engine::ports::StateStore) of
//!   the consumers' "processed" marks;
//! * [`subscribe`]: the consumer roles' app routes (`/dapr/subscribe`, delivery routes), the
//!   `all` role's too;
//! * [`jobs`]: reminders as Dapr jobs ([`DaprJobScheduler`], the `/job/…` callbacks);
//! * [`secrets`]: the secrets API and `name/key` references.
//!
//! Plain HTTP with `reqwest` rather than the gRPC-only alpha Rust SDK (`dapr.md` §4).

pub mod client;
pub mod jobs;
pub mod pubsub;
pub mod secrets;
pub mod state;
pub mod subscribe;
mod token;

use std::time::Duration;

use taskstream_engine::EngineError;

pub use client::{DaprClient, DaprClientConfig};
pub use jobs::{DaprJobScheduler, DaprJobs, JobCallbackDeps, job_callback_router};
pub use pubsub::DaprPublisher;
pub use secrets::{DaprSecrets, SecretRef};
pub use state::DaprStateStore;
pub use subscribe::{
    ConsumerDeps, ConsumerRole, DeliveryStatus, all_consumers_router, consumer_router,
    producer_router,
};
pub use token::AppToken;

/// The pub/sub component the reference used (CONTRACT §5).
pub const PUBSUB: &str = "pubsub";
/// The state store component of the consumers' marks (CONTRACT §5).
pub const STATE_STORE: &str = "statestore";
/// The secret store daprd preloads in Kubernetes mode (`dapr.md` §1.5).
pub const SECRET_STORE: &str = "kubernetes";
/// The header carrying API tokens in both directions (`dapr.md` §1.8).
pub const TOKEN_HEADER: &str = "dapr-api-token";

/// What can go wrong talking to the sidecar, kept apart so callers can tell "retry later"
/// (sidecar down, 5xx) from "this request is wrong".
#[derive(Debug, thiserror::Error)]
pub enum DaprError {
    /// No answer: connection refused, reset or timed out.
    #[error("dapr sidecar unreachable during {operation}: {reason}")]
    Unreachable {
        /// What was being done.
        operation: &'static str,
        /// The transport error.
        reason: String,
    },
    /// An answer with a status the operation does not accept.
    #[error("dapr sidecar answered {status} to {operation}: {body}")]
    Status {
        /// What was being done.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The start of the body (daprd's `errorCode` and message).
        body: String,
    },
    /// `healthz/outbound` did not turn ready in time.
    #[error("dapr sidecar not ready after {0:?}")]
    NotReady(Duration),
    /// Shutdown was asked for while waiting on the sidecar.
    #[error("cancelled while waiting for the dapr sidecar")]
    Cancelled,
    /// The secret store has no such secret.
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    /// The Configuration's `secrets.scopes` refuses the secret (daprd's 403
    /// `ERR_PERMISSION_DENIED`): a deployment mistake, never worth retrying.
    #[error(
        "secret {name:?} is not allowed by the Dapr Configuration's secrets.scopes of store \
         {store:?}: add it to allowedSecrets"
    )]
    SecretDenied {
        /// The secret store.
        store: String,
        /// The secret.
        name: String,
    },
    /// The secret exists but lacks the key.
    #[error("secret {name:?} has no key {key:?}")]
    SecretKeyMissing {
        /// The secret.
        name: String,
        /// The key it lacks.
        key: String,
    },
    /// A setting (environment variable, reference) that cannot be used.
    #[error("invalid dapr setting: {0}")]
    Config(String),
    /// A 2xx answer whose body is not what the API promises.
    #[error("unexpected reply from the dapr sidecar to {operation}: {reason}")]
    Decode {
        /// What was being done.
        operation: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl DaprError {
    /// Whether trying again later may succeed (sidecar down or a 5xx), as opposed to a request
    /// the sidecar will keep refusing.
    pub fn is_transient(&self) -> bool {
        match self {
            DaprError::Unreachable { .. } | DaprError::NotReady(_) => true,
            DaprError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl From<DaprError> for EngineError {
    fn from(error: DaprError) -> Self {
        if error.is_transient() {
            EngineError::Unavailable(error.to_string())
        } else {
            EngineError::Store(error.to_string())
        }
    }
}
