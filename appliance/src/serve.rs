//! `taskstream serve`: wires the embedded shape together and runs it until a signal arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use taskstream_engine::TaskService;
use taskstream_engine::accounts::AccountService;
use taskstream_engine::assistant::offline::OfflineAssistant;
use taskstream_engine::assistant::{Assistant, ChatService, Tools};
use taskstream_engine::consumers::apply::{EffectApplier, RetryPolicy};
use taskstream_engine::consumers::{self, runner};
use taskstream_engine::embedded::SqliteTaskStore;
use taskstream_engine::embedded::fluvio::{self, ConnectionLimits, FluvioConfig};
use taskstream_engine::embedded::live::LogLiveFeed;
use taskstream_engine::embedded::log::{EventLog, LogConfig, LogError, Retention};
use taskstream_engine::embedded::log_bus::LogBus;
use taskstream_engine::embedded::state::RedbStateStore;
use taskstream_engine::event::Topic;
use taskstream_engine::jobs::Jobs;
use taskstream_engine::ports::StateStore;
use taskstream_engine::ports::{AccountStore, ConversationStore, Outbox, SettingsStore, TaskStore};
use taskstream_engine::relay::OutboxRelay;
use taskstream_engine::scheduler::ReminderScheduler;
use taskstream_web::{AppState, JwtVerifier, Probe, TokenSigner};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{LogFormat, Mode, ServeArgs, Settings};
use crate::data_dir;
use crate::shutdown;
use crate::webhook::notification_channels;

const EVENT_LOG_FILE: &str = "events.redb";
const STATE_FILE: &str = "state.redb";
/// Dead-letter topics keep a week, like the topics they serve.
const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    // Colours only on a terminal: a journal or a log file gets plain `key=value` fields.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = Settings::resolve(&args)?;
    init_logging(settings.log_format, &settings.log_level)?;
    if settings.mode == Mode::Cluster {
        return crate::cluster::run(args, settings, started).await;
    }

    data_dir::ensure(&settings.data_dir)?;
    let _lock = data_dir::lock(&settings.data_dir)?;
    for file in [data_dir::DATABASE_FILE, EVENT_LOG_FILE, STATE_FILE] {
        data_dir::private_file(&settings.data_dir.join(file))?;
    }
    let secret = match &settings.jwt_secret {
        Some(secret) => secret.clone(),
        None => data_dir::load_or_create_secret(&settings.data_dir)?,
    };
    if secret.len() < 32 {
        tracing::warn!("the JWT secret is shorter than 32 characters; use a long random secret");
    }

    let metrics =
        taskstream_web::install_recorder().context("cannot install the metrics recorder")?;
    let database = settings.data_dir.join(data_dir::DATABASE_FILE);
    let sqlite = Arc::new(
        SqliteTaskStore::open_with(&database, &settings.caches)
            .with_context(|| format!("cannot open the task store {}", database.display()))?,
    );
    let conversations: Arc<dyn ConversationStore> = sqlite.clone();
    let user_settings: Arc<dyn SettingsStore> = sqlite.clone();
    let account_store: Arc<dyn AccountStore> = sqlite.clone();
    let backup_sqlite = Arc::clone(&sqlite);
    let store: Arc<dyn TaskStore> = sqlite;
    let log_path = settings.data_dir.join(EVENT_LOG_FILE);
    let log_config = LogConfig {
        cache_bytes: settings.caches.log_bytes,
        ..LogConfig::default()
    };
    let log = EventLog::open(&log_path, log_config)
        .with_context(|| format!("cannot open the event log {}", log_path.display()))?;
    ensure_dead_letter_topics(&log).await?;
    let state_path = settings.data_dir.join(STATE_FILE);
    let redb_state = Arc::new(
        RedbStateStore::open_with_cache(&state_path, settings.caches.state_bytes)
            .with_context(|| format!("cannot open the state store {}", state_path.display()))?,
    );
    let state: Arc<dyn StateStore> = redb_state.clone();
    log_cache_sizes(&settings.caches);
    let tasks = TaskService::new(Arc::clone(&store)).with_write_limit(settings.task_write_limit);

    let (stop_background, background_stopped) = watch::channel(false);
    let effects = EffectApplier::new(tasks.clone())
        .with_channels(notification_channels(&settings)?, RetryPolicy::default());
    let mut background = start_background(
        &store,
        &log,
        &state,
        effects,
        settings.missed_reminder_window,
        &background_stopped,
    );
    start_fluvio(&settings, &log, &background_stopped, &mut background).await?;
    // `taskstream backup` asks this server for a consistent copy through DATA_DIR/control.sock.
    background.spawn(crate::backup::serve_control(
        crate::backup::Stores {
            sqlite: backup_sqlite,
            log: log.clone(),
            state: redb_state,
            data_dir: settings.data_dir.clone(),
        },
        background_stopped.clone(),
    ));
    let periodic = Jobs::start(crate::jobs::with_schedules(
        crate::jobs::periodic_jobs(
            log.clone(),
            Arc::clone(&state),
            Arc::clone(&store),
            Arc::clone(&user_settings),
            settings.notification_retention,
        ),
        &settings.job_schedules,
    )?)
    .await
    .context("cannot start the periodic jobs")?;

    let probes: Vec<(&'static str, Arc<dyn Probe>)> = vec![
        ("store", Arc::new(tasks.clone())),
        ("log", Arc::new(log.clone())),
    ];
    // Turns true when a shutdown signal arrives; long-lived responses (SSE) end on it.
    let (stop_tx, stop_rx) = watch::channel(false);
    let tools = Tools::new(tasks.clone());
    let offline: Arc<dyn Assistant> = Arc::new(OfflineAssistant::new(tools.clone()));
    let assistant = crate::llm::build_assistant(&settings, tools, offline);
    let state = AppState {
        shutdown: stop_rx.clone(),
        chat: ChatService::new(conversations, assistant),
        settings: user_settings,
        tasks,
        auth: Arc::new(JwtVerifier::new(secret.as_bytes())),
        accounts: AccountService::new(account_store, secret.as_bytes(), settings.signup),
        signer: Arc::new(TokenSigner::new(secret.as_bytes())),
        metrics,
        live: Arc::new(LogLiveFeed::new(log.clone())),
        probes: Arc::new(probes),
        ui: taskstream_web::UiOptions {
            behind_https: settings.behind_https,
            webhook_configured: settings.notify_webhook_url.is_some(),
        },
    };
    let app = taskstream_web::router(state, &settings.cors_origins);

    let listener = TcpListener::bind(&settings.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.http_addr))?;
    let address = listener.local_addr()?;
    tracing::info!(
        address = %address,
        data_dir = %settings.data_dir.display(),
        started_in_ms = started.elapsed().as_millis() as u64,
        "listening on http://{address} (API /api, docs /docs, metrics /metrics)"
    );

    tokio::spawn(async move {
        shutdown::wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    shutdown::serve_until_stopped(listener, app, settings.http_header_read_timeout, stop_rx).await;
    let _ = stop_background.send(true);
    periodic.stop().await;
    shutdown::stop_all(background).await;
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}

/// The Fluvio-compatible SC and SPU listeners over the event log.
async fn start_fluvio(
    settings: &Settings,
    log: &EventLog,
    stopped: &watch::Receiver<bool>,
    background: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    let sc = TcpListener::bind(&settings.fluvio_sc_addr)
        .await
        .with_context(|| format!("cannot listen for Fluvio SC on {}", settings.fluvio_sc_addr))?;
    let spu = TcpListener::bind(&settings.fluvio_spu_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen for Fluvio SPU on {}",
                settings.fluvio_spu_addr
            )
        })?;
    let (sc_address, spu_address) = (sc.local_addr()?, spu.local_addr()?);
    let advertised = settings
        .fluvio_spu_advertised_addr
        .clone()
        .unwrap_or_else(|| spu_address.to_string());
    tracing::info!(sc = %sc_address, spu = %spu_address, advertised = %advertised, read_only = settings.fluvio_read_only, "Fluvio listeners up");
    let config = FluvioConfig {
        spu_advertised_addr: advertised,
        read_only: settings.fluvio_read_only,
        limits: ConnectionLimits {
            idle_timeout: settings.fluvio_idle_timeout,
            max_connections_per_peer: settings.fluvio_max_connections_per_peer,
        },
    };
    let (sc_log, sc_stopped, sc_config) = (log.clone(), stopped.clone(), config.clone());
    background.spawn(async move {
        if let Err(error) = fluvio::serve_sc(sc, sc_log, sc_config, sc_stopped).await {
            tracing::error!(%error, "the Fluvio SC listener failed");
        }
    });
    let (spu_log, spu_stopped) = (log.clone(), stopped.clone());
    background.spawn(async move {
        if let Err(error) = fluvio::serve_spu(spu, spu_log, config, spu_stopped).await {
            tracing::error!(%error, "the Fluvio SPU listener failed");
        }
    });
    Ok(())
}

async fn ensure_dead_letter_topics(log: &EventLog) -> anyhow::Result<()> {
    for topic in [Topic::TaskEvents, Topic::Reminders] {
        let name = runner::dead_letter_topic(topic);
        let retention = Retention {
            max_age: DEAD_LETTER_RETENTION,
            max_bytes: None,
        };
        match log.create_topic(&name, 1, retention).await {
            Ok(()) | Err(LogError::AlreadyExists(_)) => {}
            Err(error) => return Err(error).with_context(|| format!("cannot create topic {name}")),
        }
    }
    Ok(())
}

/// The outbox relay, the reminder scheduler, one runner per consumer and topic partition, and
/// periodic maintenance.
fn start_background(
    store: &Arc<dyn TaskStore>,
    log: &EventLog,
    state: &Arc<dyn StateStore>,
    effects: EffectApplier,
    missed_reminder_window: chrono::Duration,
    stopped: &watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut background = JoinSet::new();
    let outbox: Arc<dyn Outbox> = Arc::<dyn TaskStore>::clone(store);
    let relay = OutboxRelay::new(outbox, Arc::new(LogBus::new(log.clone())));
    background.spawn(relay.run(stopped.clone()));
    let scheduler = ReminderScheduler::new(Arc::clone(store), missed_reminder_window);
    background.spawn(scheduler.run(stopped.clone()));
    let context = runner::ConsumerContext {
        log: log.clone(),
        state: Arc::clone(state),
        effects,
    };
    let partitions = |topic: Topic| {
        log.topics()
            .into_iter()
            .find(|info| info.name == topic.name())
            .map_or(1, |info| info.partitions)
    };
    for spec in consumers::ALL {
        for &topic in spec.topics {
            for partition in 0..partitions(topic) {
                background.spawn(runner::run(
                    spec,
                    topic,
                    partition,
                    context.clone(),
                    stopped.clone(),
                ));
            }
        }
    }
    background
}

/// Says at start how much memory the caches may take, so an operator sizing a host can see it.
fn log_cache_sizes(caches: &taskstream_engine::CacheSizes) {
    let mib = |bytes: u64| bytes / (1024 * 1024);
    tracing::info!(
        sqlite_cache_mib = mib(caches.sqlite_writer_bytes),
        sqlite_reader_cache_mib = mib(caches.sqlite_reader_bytes),
        sqlite_readers = caches.sqlite_readers,
        sqlite_mmap_mib = mib(caches.sqlite_mmap_bytes),
        log_cache_mib = mib(caches.log_bytes),
        state_cache_mib = mib(caches.state_bytes),
        "cache sizes"
    );
}
