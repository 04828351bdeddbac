#!/usr/bin/env bash
# Runs every test: unit and handler tests, integration tests against moto, and the end-to-end
# tests over HTTP against a local stack started here on free ports (and stopped on exit).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/setup.sh

step() { printf '\n==> %s\n' "$*"; }
step "build (functions and tests)"
cargo build --workspace --bins --tests --quiet

state="$(mktemp -d "${TMPDIR:-/tmp}/city-events-test.XXXXXX")"
stack_pid=""
cleanup() {
  if [ -n "$stack_pid" ] && kill -0 "$stack_pid" 2>/dev/null; then
    kill -TERM "$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT

step "start the local stack (free ports; logs in $state/logs)"
.tools/stack/bin/python infra/local_stack.py --no-build --quiet --port 0 --moto-port 0 \
  --state-dir "$state" --ready-file "$state/ready.json" > "$state/stack.out" 2>&1 &
stack_pid=$!
for _ in $(seq 1 300); do
  [ -f "$state/ready.json" ] && break
  if ! kill -0 "$stack_pid" 2>/dev/null; then cat "$state/stack.out"; echo "the local stack failed to start" >&2; exit 1; fi
  sleep 0.1
done
[ -f "$state/ready.json" ] || { cat "$state/stack.out"; echo "the local stack did not become ready" >&2; exit 1; }
export CITY_EVENTS_STACK="$state/ready.json"
export MOTO_SERVER="$root/.tools/stack/bin/moto_server"

step "cargo test --workspace"
cargo test --workspace "$@"
