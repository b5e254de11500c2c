//! The [`StateStore`](taskstream_engine::ports::StateStore) conformance suite through a real
//! `daprd` with `state.redis` (the chart's component), the same suite redb and the test sidecar
//! pass. Needs the environment `cluster/it/env.sh` exports (`.ci/run` sources it); skips with a
//! message without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use taskstream_cluster::dapr::{DaprClient, DaprClientConfig, DaprStateStore};
use taskstream_tests::free_port;
use taskstream_tests::real_dapr::{
    Broker, Daprd, DaprdSpec, ItEnv, Scheduler, Scratch, Secrets, write_resources,
};

const API_TOKEN: &str = "state-suite-api-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dapr_state_store_passes_the_conformance_suite_on_real_daprd_and_redis() {
    let test = "the_dapr_state_store_passes_the_conformance_suite_on_real_daprd_and_redis";
    let Some(env) = ItEnv::from_env(test) else {
        return;
    };
    let scratch = Scratch::new("state-suite");
    let dir = scratch.path().to_owned();
    let secrets = Secrets {
        database_url: "postgres://db.invalid/tasks".to_owned(),
        jwt_secret: "state-suite-secret".to_owned(),
    };
    let config = write_resources(&dir, &env, Broker::Kafka, &secrets);
    let scheduler = Scheduler::start(&env, &dir).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let daprd = Daprd::start(
        &env,
        DaprdSpec {
            app_id: format!("state-suite-{suffix}"),
            // Nothing listens there: the state API needs no app.
            app_port: free_port(),
            resources: dir.join("resources"),
            config,
            scheduler: scheduler.address(),
            api_token: Some(API_TOKEN.to_owned()),
            app_token: None,
        },
        &dir,
    )
    .await;
    let client = DaprClient::new(
        DaprClientConfig::for_url(&daprd.url("")).with_token(Some(API_TOKEN.to_owned())),
    )
    .expect("client");
    taskstream_engine::conformance::state_store_suite(&DaprStateStore::new(client)).await;
}
