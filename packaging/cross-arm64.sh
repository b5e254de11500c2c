#!/usr/bin/env bash
# Cross-builds the taskstream binary for linux/arm64 (OKE Ampere A1, Raspberry Pi 4/5) and runs it
# under qemu-aarch64 as a smoke test: `taskstream --version` and `taskstream serve` answering
# /health on an emulated arm64 CPU.
#
# Needs (Debian/Ubuntu):
#   rustup target add aarch64-unknown-linux-gnu
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
#
# Usage: packaging/cross-arm64.sh [--release]   (default: a debug build, faster to compile)
# Env:   CARGO_TARGET_DIR (default /var/tmp/taskstream-target-arm64), SKIP_SERVE=1 to only run --version.
set -euo pipefail
cd "$(dirname "$0")/.."

target=aarch64-unknown-linux-gnu
profile=debug
cargo_flags=()
if [ "${1:-}" = "--release" ]; then
  profile=release
  cargo_flags+=(--release)
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/taskstream-target-arm64}"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# C code (bundled SQLite, ring) is compiled with the cross compiler too.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar

for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)" >&2; exit 2; }
done
rustup target list --installed 2>/dev/null | grep -qx "$target" \
  || { echo "missing Rust target $target: rustup target add $target" >&2; exit 2; }

echo "== cargo build --target $target -p taskstream ($profile)"
cargo build --locked --target "$target" -p taskstream --bin taskstream "${cargo_flags[@]}"
bin="$CARGO_TARGET_DIR/$target/$profile/taskstream"
file "$bin" 2>/dev/null || true

run() { qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" "$@"; }

echo "== qemu-aarch64 taskstream --version"
run --version

if [ "${SKIP_SERVE:-0}" != 1 ]; then
  echo "== qemu-aarch64 taskstream serve: /health and /ready"
  data="$(mktemp -d)"
  port=$((20000 + RANDOM % 20000))
  # qemu itself in the background (not the `run` function, whose subshell would be the pid
  # killed at exit while the server lived on).
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" serve --data-dir "$data" --http-addr "127.0.0.1:$port" \
    --fluvio-sc-addr "127.0.0.1:$((port + 1))" --fluvio-spu-addr "127.0.0.1:$((port + 2))" >"$data/log" 2>&1 &
  pid=$!
  trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$data/log"; exit 1; }
    sleep 0.5
  done
  curl -fsS "http://127.0.0.1:$port/health"; echo
  curl -fsS "http://127.0.0.1:$port/ready"; echo
fi
echo "arm64 build runs under qemu"
