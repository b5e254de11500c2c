//! `taskstream serve`: wires the embedded shape together and runs it until a signal arrives.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use taskstream_engine::TaskService;
use taskstream_engine::store::SqliteTaskStore;
use taskstream_web::{AppState, JwtVerifier, Probe};
use tokio::net::TcpListener;

use crate::config::{LogFormat, ServeArgs, Settings};
use crate::data_dir;

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub fn init_logging(format: LogFormat, filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid log filter {filter:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

    data_dir::ensure(&settings.data_dir)?;
    let _lock = data_dir::lock(&settings.data_dir)?;
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
    let store = SqliteTaskStore::open(&database)
        .with_context(|| format!("cannot open the task store {}", database.display()))?;
    let tasks = TaskService::new(Arc::new(store));
    let probes: Vec<(&'static str, Arc<dyn Probe>)> = vec![("store", Arc::new(tasks.clone()))];
    let state = AppState {
        tasks,
        auth: Arc::new(JwtVerifier::new(secret.as_bytes())),
        metrics,
        probes: Arc::new(probes),
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

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let forced = async move {
        let mut stop_rx = stop_rx;
        let _ = stop_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.context("the HTTP server failed")?,
        () = forced => tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
    tracing::info!("stopped; every acknowledged write is on disk");
    Ok(())
}

async fn wait_for_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
