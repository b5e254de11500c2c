# shellcheck shell=bash
# Sourced by .ci/run (and by hand: `. cluster/it/env.sh`) before `cargo test --workspace`:
# builds the real Dapr sidecar and scheduler (cluster/it/build.sh), starts a single-node Kafka
# (cluster/it/kafka.sh), checks Redis, and exports what tests/tests/real_dapr.rs reads:
#
#   TASKSTREAM_IT_DAPRD       path of daprd (components: pubsub.kafka, pubsub.redis,
#                             state.redis, secretstores.local.file/env)
#   TASKSTREAM_IT_SCHEDULER   path of the Dapr scheduler (Jobs API)
#   TASKSTREAM_IT_KAFKA       Kafka bootstrap address (127.0.0.1:19092)
#   TASKSTREAM_IT_REDIS       Redis address (127.0.0.1:6379), from .ci/services.sh
#
# Without them the suite says it skips. Everything is cached under $TASKSTREAM_IT_CACHE
# (/var/tmp/taskstream-it). A failure stops .ci/run when CI=true (the suite must run there);
# by hand it only says what is missing.
taskstream_it_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
taskstream_it_cache="${TASKSTREAM_IT_CACHE:-/var/tmp/taskstream-it}"
mkdir -p "$taskstream_it_cache/logs"

taskstream_it_fail() {
  echo "cluster/it/env.sh: $1" >&2
  if [ "${CI:-}" = true ]; then
    return 1
  fi
  return 0
}

echo "== real Dapr: daprd + scheduler from github.com/dapr/dapr (cluster/it/build.sh)"
taskstream_it_started=$(date +%s)
if taskstream_it_bins="$("$taskstream_it_dir/build.sh" 2>"$taskstream_it_cache/logs/build.log")"; then
  export TASKSTREAM_IT_DAPRD="$taskstream_it_bins/daprd"
  export TASKSTREAM_IT_SCHEDULER="$taskstream_it_bins/scheduler"
  echo "daprd $("$TASKSTREAM_IT_DAPRD" --version) in $taskstream_it_bins ($(( $(date +%s) - taskstream_it_started )) s)"
else
  tail -30 "$taskstream_it_cache/logs/build.log" >&2
  taskstream_it_fail "cannot build daprd/scheduler (log: $taskstream_it_cache/logs/build.log)"
fi

echo "== real Kafka: single-node KRaft broker from Maven Central jars (cluster/it/kafka.sh)"
taskstream_it_started=$(date +%s)
if taskstream_it_kafka="$("$taskstream_it_dir/kafka.sh" 2>"$taskstream_it_cache/logs/kafka.log")"; then
  export TASKSTREAM_IT_KAFKA="$taskstream_it_kafka"
  echo "kafka on $TASKSTREAM_IT_KAFKA ($(( $(date +%s) - taskstream_it_started )) s)"
else
  tail -30 "$taskstream_it_cache/logs/kafka.log" >&2
  taskstream_it_fail "cannot start Kafka (log: $taskstream_it_cache/logs/kafka.log)"
fi

if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  export TASKSTREAM_IT_REDIS="127.0.0.1:6379"
else
  taskstream_it_fail "no Redis on 127.0.0.1:6379 (.ci/services.sh starts it)"
fi
