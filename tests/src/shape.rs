//! The two shapes of the binary an API test can run against: embedded (SQLite, embedded log) and
//! cluster (`--mode cluster --role all` on PostgreSQL behind the in-process Dapr test sidecar).
//!
//! [`api_tests!`](crate::api_tests) turns one `async fn name(srv: TestServer)` per test into an
//! `embedded::name` and a `cluster::name` test, so a suite is written once and both shapes must
//! answer it the same way. The cluster variants need `TASKSTREAM_TEST_DATABASE_URL`; without it
//! they print that they skipped and pass.

use std::time::Duration;

use crate::dapr_sidecar::{DaprSidecar, SidecarConfig};
use crate::{Launch, TestServer, free_port};

/// The variable naming the PostgreSQL database cluster-mode tests may use.
pub const DATABASE_URL_VAR: &str = "TASKSTREAM_TEST_DATABASE_URL";

/// A PostgreSQL schema of one test's own, dropped (best effort) when it drops, panics included.
pub struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    /// A fresh schema name on the test database; `None` (after saying so) when no test database
    /// is configured.
    pub fn new(what: &str) -> Option<Self> {
        match std::env::var(DATABASE_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(Self {
                url,
                name: format!("ts_{what}_{}", uuid::Uuid::new_v4().simple()),
            }),
            _ => {
                println!("skipping the cluster-mode variant: {DATABASE_URL_VAR} is not set");
                None
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.name.clone());
        // Its own thread and runtime: this may run inside the test's runtime, or while panicking.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let plain = url.replace("sslmode=require", "sslmode=prefer");
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&plain, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    if let Err(error) = client.batch_execute(&drop).await {
                        eprintln!("could not drop test schema {schema}: {error}");
                    }
                }
            });
        })
        .join();
    }
}

/// What a cluster-shaped [`TestServer`] owns besides the child process.
pub(crate) struct ClusterParts {
    /// Declared first: the sidecar stops before the schema goes.
    pub(crate) sidecar: DaprSidecar,
    pub(crate) _schema: PgSchema,
}

impl TestServer {
    /// `taskstream serve --mode cluster --role all` in a schema of its own, with an in-process
    /// Dapr test sidecar (started in the current runtime, so use a multi-threaded test), once
    /// the sidecar has discovered its subscriptions. `None` when no test database is configured.
    pub async fn start_cluster() -> Option<TestServer> {
        Self::start_cluster_with(&[]).await
    }

    /// [`TestServer::start_cluster`] with extra arguments after `serve ...`.
    pub async fn start_cluster_with(args: &[&str]) -> Option<TestServer> {
        let schema = PgSchema::new("api")?;
        let port = free_port();
        let sidecar = DaprSidecar::start(SidecarConfig::new().app_port(port)).await;
        let mut all: Vec<String> = ["--mode", "cluster", "--role", "all", "--database-schema"]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        all.push(schema.name().to_owned());
        all.extend(args.iter().map(|arg| (*arg).to_owned()));
        let mut srv = TestServer::launch(Launch {
            args: all,
            envs: vec![
                (
                    "TASKSTREAM_DATABASE_URL".to_owned(),
                    schema.url().to_owned(),
                ),
                ("DAPR_HTTP_PORT".to_owned(), sidecar.port().to_string()),
            ],
            // The sidecar calls the app on this port, so a restart must keep it.
            port: Some(port),
            ..Launch::default()
        })
        .await;
        sidecar
            .wait_for("the app's subscriptions", Duration::from_secs(10), |s| {
                s.discovered().then_some(())
            })
            .await;
        srv.cluster = Some(ClusterParts {
            sidecar,
            _schema: schema,
        });
        Some(srv)
    }

    /// The Dapr test sidecar of a cluster-shaped server (`None` for an embedded one).
    pub fn sidecar(&self) -> Option<&DaprSidecar> {
        self.cluster.as_ref().map(|parts| &parts.sidecar)
    }

    /// Whether this server runs in cluster mode.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }
}

/// Generates, for each `async fn name(srv: TestServer)` named, the tests `embedded::name` (a
/// default server) and `cluster::name` (a cluster-mode server, skipped without
/// `TASKSTREAM_TEST_DATABASE_URL`).
#[macro_export]
macro_rules! api_tests {
    ($($name:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::TestServer::start().await).await;
                }
            )+
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(srv) = $crate::TestServer::start_cluster().await else {
                        return;
                    };
                    super::$name(srv).await;
                }
            )+
        }
    };
}
