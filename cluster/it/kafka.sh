#!/usr/bin/env bash
# Apache Kafka for the end-to-end suite: resolves the broker's jars from Maven Central
# (cluster/it/kafka/pom.xml, cached under /var/tmp) and starts a single-node KRaft broker on
# loopback. Prints the bootstrap address on stdout. Reuses a broker already listening there.
#
#   cluster/it/kafka.sh            # fetch (if needed) + format (if needed) + start
#   TASKSTREAM_IT_KAFKA_PORT=19092 TASKSTREAM_IT_CACHE=/var/tmp/taskstream-it  (defaults)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TASKSTREAM_IT_CACHE:-/var/tmp/taskstream-it}"
port="${TASKSTREAM_IT_KAFKA_PORT:-19092}"
controller_port=$((port + 1))
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")"
home="$cache/kafka-$version"
data="$cache/kafka-data-$port"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if listening "$port"; then
  echo "127.0.0.1:$port"
  exit 0
fi

# Kafka 4 brokers need Java 17 or newer.
java="${TASKSTREAM_IT_JAVA:-java}"
if ! command -v "$java" >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless maven >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q openjdk-17-jre-headless maven >/dev/null 2>&1; }
  fi
fi

stamp="$home/.complete-$(sha256sum "$here/kafka/pom.xml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  command -v mvn >/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q maven >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q maven >/dev/null 2>&1; }
  }
  echo "kafka.sh: resolving Kafka $version from Maven Central into $home" >&2
  rm -rf "$home"
  mkdir -p "$home"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$home/libs" >&2
  touch "$stamp"
fi
cp="$home/libs/*"

# A new broker starts empty: consumer groups of the suite start at the oldest offset, so old
# runs' events would be read again by every new app id.
rm -rf "$data"
mkdir -p "$data"
cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/logs
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=6
PROPS

cluster_id="$("$java" -cp "$cp" kafka.tools.StorageTool random-uuid)"
"$java" -cp "$cp" kafka.tools.StorageTool format -t "$cluster_id" -c "$data/server.properties" >&2

nohup "$java" -Xms256m -Xmx512m -cp "$cp" kafka.Kafka "$data/server.properties" \
  >"$data/broker.log" 2>&1 &
echo $! >"$data/broker.pid"
for _ in $(seq 600); do
  listening "$port" && break
  kill -0 "$(cat "$data/broker.pid")" 2>/dev/null || { tail -40 "$data/broker.log" >&2; exit 1; }
  sleep 0.1
done
listening "$port" || { echo "kafka.sh: broker did not listen on $port" >&2; tail -40 "$data/broker.log" >&2; exit 1; }
echo "127.0.0.1:$port"
