//! How the process stops: a signal ends the HTTP server (requests get a grace period), then
//! the background tasks (relay, scheduler, consumers) get theirs. Shared by both shapes.

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long in-flight requests get to finish after a shutdown signal.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long the relay and consumers get to stop after the HTTP server.
pub(crate) const BACKGROUND_GRACE: Duration = Duration::from_secs(5);

/// Serves `app` until `stop` turns true, then gives requests still running
/// [`SHUTDOWN_GRACE`] before returning anyway.
pub(crate) async fn serve_until_stopped(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    stop: watch::Receiver<bool>,
) {
    let mut server_stop = stop.clone();
    let server = crate::http_server::serve(listener, app, header_read_timeout, async move {
        let _ = server_stop.wait_for(|stopping| *stopping).await;
    });
    let forced = async move {
        let mut stop = stop;
        let _ = stop.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = server => {}
        () = forced => tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
}

pub(crate) async fn stop_all(mut background: JoinSet<()>) {
    let drained = tokio::time::timeout(BACKGROUND_GRACE, async {
        while background.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "background tasks still running after {BACKGROUND_GRACE:?}; stopping anyway"
        );
        background.abort_all();
    }
}

pub(crate) async fn wait_for_signal() {
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
