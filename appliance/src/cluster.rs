//! `taskstream serve --mode cluster`: one role of the Dapr deployment over a shared PostgreSQL.
//! No embedded log, Fluvio listeners or embedded scheduler: events leave through the outbox
//! relay to Dapr pub/sub, reminders are Dapr jobs, the consumers' marks are Dapr state; the
//! live stream and the periodic jobs' once-per-period record are PostgreSQL's.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use taskstream_cluster::dapr::{
    AppToken, ConsumerDeps, ConsumerRole, DaprClient, DaprClientConfig, DaprError,
    DaprJobScheduler, DaprJobs, DaprPublisher, DaprSecrets, DaprStateStore, JobCallbackDeps,
    SecretRef, all_consumers_router, consumer_router, job_callback_router, producer_router,
};
use taskstream_cluster::postgres::{PgOptions, PostgresStore};
use taskstream_engine::TaskService;
use taskstream_engine::accounts::AccountService;
use taskstream_engine::assistant::offline::OfflineAssistant;
use taskstream_engine::assistant::{Assistant, ChatService, Tools};
use taskstream_engine::consumers::apply::{EffectApplier, RetryPolicy};
use taskstream_engine::jobs::Jobs;
use taskstream_engine::ports::StateStore;
use taskstream_engine::ports::{AccountStore, ConversationStore, SettingsStore, TaskStore};
use taskstream_web::{AppState, JwtVerifier, Probe, TokenSigner};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Role, ServeArgs, Settings};
use crate::shutdown;
use crate::webhook::notification_channels;

const NO_DATABASE_URL: &str = "cluster mode needs a PostgreSQL URL: set --database-url \
     (TASKSTREAM_DATABASE_URL, DATABASE_URL) or --database-url-secret NAME/KEY";
/// Every replica must verify the same tokens, so a per-process generated secret will not do.
const NO_JWT_SECRET: &str = "cluster mode needs a JWT secret shared by every replica: set \
     --jwt-secret (TASKSTREAM_JWT_SECRET, JWT_SECRET) or --jwt-secret-secret NAME/KEY";

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
        shutdown::wait_for_signal().await;
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
        ("sidecar", Arc::new(client.clone())),
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
        background.spawn(taskstream_cluster::relay::relay_to_dapr(
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
        taskstream_web::ops_router(metrics, Arc::clone(&probes))
    };

    let effects = || -> anyhow::Result<EffectApplier> {
        Ok(EffectApplier::new(tasks.clone())
            .with_channels(notification_channels(&settings)?, RetryPolicy::default()))
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
        Role::All => app.merge(all_consumers_router(
            ConsumerDeps::new(state, effects()?).with_app_token(app_token),
        )),
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
    shutdown::serve_until_stopped(listener, app, settings.http_header_read_timeout, stop_rx).await;
    tracing::debug!(
        "waiting up to {:?} for the relay and the job scheduler",
        shutdown::BACKGROUND_GRACE
    );
    if let Some(periodic) = periodic {
        periodic.stop().await;
    }
    shutdown::stop_all(background).await;
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
