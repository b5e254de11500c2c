//! `taskstream serve --mode cluster`: one role of the Dapr deployment over a shared PostgreSQL.
//! No embedded log, Fluvio listeners or embedded scheduler: events leave through the outbox
//! relay to Dapr pub/sub, reminders are Dapr jobs, the consumers' marks are Dapr state; the
//! live stream and the periodic jobs' once-per-period record are PostgreSQL's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use taskstream_cluster::dapr::subscribe::{decode_event, process};
use taskstream_cluster::dapr::{
    AppToken, ConsumerDeps, ConsumerRole, DaprClient, DaprClientConfig, DaprError,
    DaprJobScheduler, DaprJobs, DaprPublisher, DaprSecrets, DaprStateStore, DeliveryStatus,
    JobCallbackDeps, PUBSUB, SecretRef, TOKEN_HEADER, consumer_router, job_callback_router,
    producer_router,
};
use taskstream_cluster::postgres::{PgOptions, PostgresStore};
use taskstream_engine::TaskService;
use taskstream_engine::accounts::AccountService;
use taskstream_engine::assistant::offline::OfflineAssistant;
use taskstream_engine::assistant::{Assistant, ChatService, Tools};
use taskstream_engine::consumers::apply::{EffectApplier, RetryPolicy};
use taskstream_engine::consumers::{self, runner};
use taskstream_engine::event::Topic;
use taskstream_engine::jobs::Jobs;
use taskstream_engine::ports::{
    AccountStore, ConversationStore, EventBus, SettingsStore, TaskStore,
};
use taskstream_engine::state::StateStore;
use taskstream_web::{AppState, JwtVerifier, Probe, ProbeFuture, TokenSigner};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Role, ServeArgs, Settings};
use crate::serve::{BACKGROUND_GRACE, SHUTDOWN_GRACE, channels, stop_all, wait_for_signal};

/// Outbox rows one relay round claims.
const RELAY_BATCH: usize = 256;
const RELAY_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const RELAY_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A relay round also runs this often without a wake-up, in case a `NOTIFY` was lost with the
/// listening connection.
const RELAY_SAFETY_POLL: Duration = Duration::from_secs(5);
/// Pause when every claimed row waits on another replica's older event of the same key.
const RELAY_DEFERRED_PAUSE: Duration = Duration::from_millis(50);
const NO_DATABASE_URL: &str = "cluster mode needs a PostgreSQL URL: set --database-url \
     (TASKSTREAM_DATABASE_URL, DATABASE_URL) or --database-url-secret NAME/KEY";
/// Every replica must verify the same tokens, so a per-process generated secret will not do.
const NO_JWT_SECRET: &str = "cluster mode needs a JWT secret shared by every replica: set \
     --jwt-secret (TASKSTREAM_JWT_SECRET, JWT_SECRET) or --jwt-secret-secret NAME/KEY";
/// The `all` role's delivery route prefix: one subscription per topic, every consumer of it.
const ALL_ROUTE_PREFIX: &str = "/api/v1/all/";

pub async fn run(args: ServeArgs, settings: Settings, started: Instant) -> anyhow::Result<()> {
    // Settings errors first, before minutes of waiting for a sidecar.
    if settings.database_url.is_none() && settings.database_url_secret.is_none() {
        anyhow::bail!("{NO_DATABASE_URL}");
    }
    if settings.jwt_secret.is_none() && settings.jwt_secret_secret.is_none() {
        anyhow::bail!("{NO_JWT_SECRET}");
    }
    let metrics =
        taskstream_web::install_recorder().context("cannot install the metrics recorder")?;
    // Turns true on SIGINT/SIGTERM: cancels the wait for the sidecar, then stops the server.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });

    let dapr_config = DaprClientConfig::from_env().context("invalid Dapr sidecar settings")?;
    let client = DaprClient::new(dapr_config).context("cannot build the Dapr sidecar client")?;
    match client.wait_outbound_ready(&mut stop_rx.clone()).await {
        Ok(()) => {}
        Err(DaprError::Cancelled) => {
            tracing::info!("stopped while waiting for the Dapr sidecar");
            return Ok(());
        }
        Err(error) => {
            return Err(error).with_context(|| {
                format!("the Dapr sidecar at {} is not ready", client.base_url())
            });
        }
    }
    let (settings, database_url) = resolve_secrets(&client, args, settings).await?;
    let Some(secret) = settings.jwt_secret.clone() else {
        anyhow::bail!("{NO_JWT_SECRET}");
    };

    let options = PgOptions {
        schema: settings.database_schema.clone(),
        ..PgOptions::default()
    };
    let postgres = Arc::new(
        PostgresStore::connect(&database_url, options)
            .await
            .context("cannot connect to PostgreSQL (DATABASE_URL)")?,
    );
    let store: Arc<dyn TaskStore> = postgres.clone();
    let tasks = TaskService::new(Arc::clone(&store)).with_write_limit(settings.task_write_limit);
    let app_token = AppToken::from_env();
    let probes: Vec<(&'static str, Arc<dyn Probe>)> = vec![
        ("store", Arc::new(tasks.clone())),
        ("sidecar", Arc::new(SidecarProbe(client.clone()))),
    ];
    let probes = Arc::new(probes);

    let role = settings.role;
    let serves_api = matches!(role, Role::Api | Role::All);
    let mut background = JoinSet::new();
    // The digest and retention jobs run in the api role (see `jobs::cluster_periodic_jobs`).
    let mut periodic = None;
    let mut app = if serves_api {
        let conversations: Arc<dyn ConversationStore> = postgres.clone();
        let user_settings: Arc<dyn SettingsStore> = postgres.clone();
        let account_store: Arc<dyn AccountStore> = postgres.clone();
        let tools = Tools::new(tasks.clone());
        let offline: Arc<dyn Assistant> = Arc::new(OfflineAssistant::new(tools.clone()));
        let assistant = crate::llm::build_assistant(&settings, tools, offline);
        let state = AppState {
            shutdown: stop_rx.clone(),
            chat: ChatService::new(conversations, assistant),
            settings: user_settings,
            tasks: tasks.clone(),
            auth: Arc::new(JwtVerifier::new(secret.as_bytes())),
            // Failed log-ins are counted in PostgreSQL, so the limits hold across replicas.
            accounts: AccountService::with_login_attempts(
                account_store,
                secret.as_bytes(),
                settings.signup,
                postgres.clone(),
            ),
            signer: Arc::new(TokenSigner::new(secret.as_bytes())),
            metrics: metrics.clone(),
            live: Arc::new(postgres.live_feed()),
            probes: Arc::clone(&probes),
            ui: taskstream_web::UiOptions {
                behind_https: settings.behind_https,
                webhook_configured: settings.notify_webhook_url.is_some(),
            },
        };
        let jobs = DaprJobs::new(client.clone());
        let callbacks = JobCallbackDeps::new(Arc::clone(&store), jobs.clone())
            .with_missed_window(settings.missed_reminder_window)
            .with_app_token(app_token.clone());
        background.spawn(relay(
            Arc::clone(&postgres),
            DaprPublisher::new(client.clone()),
            stop_rx.clone(),
        ));
        background.spawn(DaprJobScheduler::new(Arc::clone(&store), jobs).run(stop_rx.clone()));
        periodic = Some(
            Jobs::start(crate::jobs::with_schedules(
                crate::jobs::cluster_periodic_jobs(
                    Arc::clone(&postgres),
                    settings.notification_retention,
                ),
                &settings.job_schedules,
            )?)
            .await
            .context("cannot start the periodic jobs")?,
        );
        taskstream_web::router(state, &settings.cors_origins).merge(job_callback_router(callbacks))
    } else {
        ops_router(metrics, Arc::clone(&probes))
    };

    let effects = || -> anyhow::Result<EffectApplier> {
        Ok(EffectApplier::new(tasks.clone())
            .with_channels(channels(&settings)?, RetryPolicy::default()))
    };
    let state: Arc<dyn StateStore> = Arc::new(DaprStateStore::new(client.clone()));
    app = match role {
        Role::Api => app.merge(producer_router(app_token)),
        Role::Notification | Role::Recurring | Role::Audit => {
            let consumer = match role {
                Role::Notification => ConsumerRole::Notification,
                Role::Recurring => ConsumerRole::Recurring,
                _ => ConsumerRole::Audit,
            };
            let deps = ConsumerDeps::new(state, effects()?).with_app_token(app_token);
            app.merge(consumer_router(consumer, deps))
        }
        Role::All => app.merge(all_consumers_router(AllConsumers {
            state,
            effects: effects()?,
            app_token,
        })),
    };

    let listener = TcpListener::bind(&settings.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
    let address = listener.local_addr()?;
    tracing::info!(
        address = %address,
        role = ?role,
        sidecar = client.base_url(),
        started_in_ms = started.elapsed().as_millis() as u64,
        "cluster mode: listening on http://{address}"
    );
    let mut server_stop = stop_rx.clone();
    let server = crate::http_server::serve(
        listener,
        app,
        settings.http_header_read_timeout,
        async move {
            let _ = server_stop.wait_for(|stopping| *stopping).await;
        },
    );
    let forced = async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = server => {}
        () = forced => tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
    tracing::debug!("waiting up to {BACKGROUND_GRACE:?} for the relay and the job scheduler");
    if let Some(periodic) = periodic {
        periodic.stop().await;
    }
    stop_all(background).await;
    tracing::info!("stopped; undelivered events stay in the outbox for the next replica");
    Ok(())
}

/// Reads the secrets named by `--*-secret NAME/KEY` from the sidecar. A secret stands in for
/// the flag, so it beats every other source, and the settings are resolved again with it.
async fn resolve_secrets(
    client: &DaprClient,
    mut args: ServeArgs,
    settings: Settings,
) -> anyhow::Result<(Settings, String)> {
    let secrets = DaprSecrets::new(client.clone()).with_store(&settings.secret_store);
    let fetch = |flag: &'static str, reference: Option<String>| {
        let secrets = &secrets;
        async move {
            let Some(reference) = reference else {
                return Ok::<_, anyhow::Error>(None);
            };
            let parsed: SecretRef = reference
                .parse()
                .with_context(|| format!("invalid --{flag}"))?;
            let value = secrets
                .resolve(&parsed)
                .await
                .with_context(|| format!("cannot read --{flag} {parsed}"))?;
            Ok(Some(value))
        }
    };
    let database_secret =
        fetch("database-url-secret", settings.database_url_secret.clone()).await?;
    let jwt_secret = fetch("jwt-secret-secret", settings.jwt_secret_secret.clone()).await?;
    let llm_key = fetch("llm-api-key-secret", settings.llm_api_key_secret.clone()).await?;
    let settings = if jwt_secret.is_some() || llm_key.is_some() {
        if jwt_secret.is_some() {
            args.common.jwt_secret = jwt_secret;
        }
        if llm_key.is_some() {
            args.llm_api_key = llm_key;
        }
        Settings::resolve(&args)?
    } else {
        settings
    };
    let database_url = database_secret
        .or_else(|| settings.database_url.clone())
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .context(NO_DATABASE_URL)?;
    Ok((settings, database_url))
}

/// Moves outbox rows to Dapr pub/sub. Rows are claimed with `SKIP LOCKED`, so every `api`
/// replica may run this; a failed publish leaves the rows in the outbox and is retried with
/// backoff, so a sidecar that is down loses nothing.
async fn relay(
    store: Arc<PostgresStore>,
    publisher: DaprPublisher,
    mut shutdown: watch::Receiver<bool>,
) {
    // Fires on this process's commits and, through LISTEN/NOTIFY, on other replicas'.
    let committed = TaskStore::commit_signal(store.as_ref());
    let mut backoff = RELAY_BACKOFF_FIRST;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let woken = committed.notified();
        let publisher = &publisher;
        let round = store
            .relay_batch(RELAY_BATCH, |batch| async move {
                publisher.publish(&batch).await
            })
            .await;
        let pause = match round {
            Ok(round) => {
                backoff = RELAY_BACKOFF_FIRST;
                if round.published > 0 {
                    metrics::counter!("outbox_relayed_events_total")
                        .increment(round.published as u64);
                    continue;
                }
                if round.deferred > 0 {
                    RELAY_DEFERRED_PAUSE
                } else {
                    RELAY_SAFETY_POLL
                }
            }
            Err(error) => {
                metrics::counter!("outbox_relay_failures_total").increment(1);
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "outbox relay to Dapr failed; retrying");
                let pause = backoff;
                backoff = (backoff * 2).min(RELAY_BACKOFF_MAX);
                pause
            }
        };
        // After a failure only the backoff wakes the relay: a commit must not hammer a sidecar
        // that is down.
        let failing = backoff > RELAY_BACKOFF_FIRST;
        tokio::select! {
            () = woken, if !failing => {}
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::debug!("outbox relay stopped");
}

/// `/ready`'s check of the sidecar: its components answer (`healthz/outbound`).
struct SidecarProbe(DaprClient);

impl Probe for SidecarProbe {
    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            match self.0.outbound_ready().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("dapr sidecar outbound not ready".to_owned()),
                Err(error) => Err(error.to_string()),
            }
        })
    }
}

/// `/health`, `/ready` and `/metrics` of a consumer role, which serves no REST API.
fn ops_router(
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    probes: Arc<Vec<(&'static str, Arc<dyn Probe>)>>,
) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async {
                axum::Json(json!({
                    "status": "healthy",
                    "timestamp": chrono::Utc::now()
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                }))
            }),
        )
        .route(
            "/ready",
            get(move || {
                let probes = Arc::clone(&probes);
                async move {
                    let mut checks = serde_json::Map::new();
                    let mut ready = true;
                    for (name, probe) in probes.iter() {
                        let check = match probe.check().await {
                            Ok(()) => json!("ok"),
                            Err(reason) => {
                                ready = false;
                                json!(reason)
                            }
                        };
                        checks.insert((*name).to_owned(), check);
                    }
                    let status = if ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let word = if ready { "ready" } else { "not ready" };
                    (
                        status,
                        axum::Json(json!({ "status": word, "checks": checks })),
                    )
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
}

/// The `all` role's consumers behind one sidecar. Dapr allows one subscription per topic and
/// app, so each topic gets one route that runs every consumer of it, each with its own marks.
#[derive(Clone)]
struct AllConsumers {
    state: Arc<dyn StateStore>,
    effects: EffectApplier,
    app_token: AppToken,
}

fn all_consumers_router(consumers: AllConsumers) -> Router {
    let subscriptions: Vec<Value> = [Topic::TaskEvents, Topic::Reminders]
        .into_iter()
        .map(|topic| {
            json!({
                "pubsubname": PUBSUB,
                "topic": topic.name(),
                "route": format!("{ALL_ROUTE_PREFIX}{}", topic.name()),
                "deadLetterTopic": runner::dead_letter_topic(topic),
            })
        })
        .collect();
    let subscriptions = Value::Array(subscriptions);
    let token = consumers.app_token.clone();
    Router::new()
        .route(
            "/dapr/subscribe",
            get(move |headers: HeaderMap| {
                let token = token.clone();
                let subscriptions = subscriptions.clone();
                async move {
                    if !admits(&token, &headers) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    axum::Json(subscriptions).into_response()
                }
            }),
        )
        .route(
            "/dapr/config",
            get(|| async {
                axum::Json(json!({
                    "entities": [], "drainRebalancedActors": false,
                    "reentrancy": { "enabled": false },
                }))
            }),
        )
        .route(
            &format!("{ALL_ROUTE_PREFIX}{}", Topic::TaskEvents.name()),
            post(|state, headers, body| deliver_all(Topic::TaskEvents, state, headers, body)),
        )
        .route(
            &format!("{ALL_ROUTE_PREFIX}{}", Topic::Reminders.name()),
            post(|state, headers, body| deliver_all(Topic::Reminders, state, headers, body)),
        )
        .with_state(consumers)
}

fn admits(token: &AppToken, headers: &HeaderMap) -> bool {
    token.admits(headers.get(TOKEN_HEADER).map(|value| value.as_bytes()))
}

/// Runs every consumer of `topic` on one delivery: RETRY when any asks for it (the ones done
/// skip the copy by their mark), DROP when one can never process it, else SUCCESS.
async fn deliver_all(
    topic: Topic,
    State(all): State<AllConsumers>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !admits(&all.app_token, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let event = match decode_event(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, topic = topic.name(), "undecodable delivery; dropping it");
            return axum::Json(json!({ "status": DeliveryStatus::Drop.as_str() })).into_response();
        }
    };
    let mut verdict = DeliveryStatus::Success;
    for spec in consumers::ALL {
        if !spec.topics.contains(&topic) {
            continue;
        }
        let status = process(spec, all.state.as_ref(), &all.effects, &event).await;
        verdict = match (verdict, status) {
            (DeliveryStatus::Retry, _) | (_, DeliveryStatus::Retry) => DeliveryStatus::Retry,
            (DeliveryStatus::Drop, _) | (_, DeliveryStatus::Drop) => DeliveryStatus::Drop,
            _ => DeliveryStatus::Success,
        };
    }
    axum::Json(json!({ "status": verdict.as_str(), "event_id": event.event_id })).into_response()
}
