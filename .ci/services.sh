#!/usr/bin/env bash
# Installs (Debian packages) and starts the services the tests use, on a machine that starts
# none: PostgreSQL (127.0.0.1:5432, trust on loopback, database `test`), Redis (127.0.0.1:6379)
# and NATS with JetStream (127.0.0.1:4222). Sourced by .ci/run, so the variables it exports
# reach the tests. Each service that was already running is left as it is.
#
# PostgreSQL is required (its tests must run in CI); Redis and NATS are started when their
# packages can be had, and only said to be missing otherwise.

ci_apt_install() {
  command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; }
}

echo "== PostgreSQL (TASKSTREAM_TEST_DATABASE_URL)"
if ! command -v pg_ctlcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  ci_apt_install postgresql postgresql-client || echo "cannot install PostgreSQL"
fi
pg_version="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)"
if [ -n "$pg_version" ]; then
  hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
  if [ -f "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust # taskstream-ci' "$hba"; then
    # The tests connect as postgres over TCP without a password: trust loopback, first match.
    sed -i '1i host all all 127.0.0.1/32 trust # taskstream-ci\nhost all all ::1/128 trust # taskstream-ci' "$hba"
    pg_ctlcluster "$pg_version" main reload 2>/dev/null || true
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster "$pg_version" main start
  pg_isready -h 127.0.0.1 -p 5432 -t 30
  psql -h 127.0.0.1 -U postgres -Atc "SELECT 1 FROM pg_database WHERE datname='test'" </dev/null | grep -q 1 \
    || createdb -h 127.0.0.1 -U postgres test </dev/null
  export TASKSTREAM_TEST_DATABASE_URL="${TASKSTREAM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
else
  echo "no PostgreSQL server here: the PostgreSQL tests will say they skip"
  unset TASKSTREAM_TEST_DATABASE_URL
fi

echo "== Redis (TASKSTREAM_TEST_REDIS_URL)"
command -v redis-server >/dev/null || ci_apt_install redis-server || true
if command -v redis-server >/dev/null; then
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping || echo "redis-server did not start"
  export TASKSTREAM_TEST_REDIS_URL="${TASKSTREAM_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
else
  echo "redis-server unavailable"
fi

echo "== NATS with JetStream (TASKSTREAM_TEST_NATS_URL)"
command -v nats-server >/dev/null || ci_apt_install nats-server || true
if command -v nats-server >/dev/null; then
  if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    mkdir -p /var/tmp/taskstream-nats
    nohup nats-server -js -a 127.0.0.1 -p 4222 -sd /var/tmp/taskstream-nats \
      >/var/tmp/taskstream-nats/server.log 2>&1 &
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
  fi
  (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && echo "nats-server on 127.0.0.1:4222"
  export TASKSTREAM_TEST_NATS_URL="${TASKSTREAM_TEST_NATS_URL:-nats://127.0.0.1:4222}"
else
  echo "nats-server unavailable"
fi
