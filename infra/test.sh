#!/usr/bin/env bash
# Runs every test: unit and handler tests, integration tests against moto, and the end-to-end
# tests over HTTP against a local stack started here on free ports (and stopped on exit).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/setup.sh

step() { printf '\n==> %s\n' "$*"; }
step "no import cycles between the modules of a crate (infra/tools/module_cycles.py)"
python3 infra/tools/module_cycles.py

step "the local gateway under overload: throttling, hung-up clients, the integration timeout (infra/tools/gateway_selftest.py)"
.tools/stack/bin/python infra/tools/gateway_selftest.py

step "build (functions and tests)"
cargo build --workspace --bins --tests --quiet

state="$(mktemp -d "${TMPDIR:-/tmp}/city-events-test.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

# On the first gateway keys are re-read from Secrets Manager every second, so the signing
# functions use a new key right after a rotation test rotates it. The second gateway keeps the
# deployed TTL (300 s): a freshly rotated key must reach its warm verifiers without waiting it out.
stack_env=(--env "SECRETS_CACHE_TTL_SECONDS=${SECRETS_CACHE_TTL_SECONDS:-1}")
# The contract run's address (infra/contract/hooks.py) is an internal caller: its thousands of
# generated requests test the operations, not the rate limiter (the e2e tests do that).
stack_env+=(--env RATE_LIMIT_ALLOWLIST=127.0.0.88)
# Flags read again every 2 s (deployed: 30): the flag tests wait out the TTL after a flip.
stack_env+=(--env FLAGS_CACHE_TTL_SECONDS=2)
# Six instances per function: on two cores more processes only contend for the CPU (the
# 500-concurrent-joins test queues at the gateway instead, as a reserved concurrency would).
export LOCAL_MAX_INSTANCES="${LOCAL_MAX_INSTANCES:-6}"
start_stack() { # name, extra args...
  local name="$1"; shift
  .tools/stack/bin/python infra/local_stack.py --no-build --quiet --port 0 --realtime-port 0 \
    --state-dir "$state/$name" --ready-file "$state/$name.json" "$@" > "$state/$name.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    [ -f "$state/$name.json" ] && return 0
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then cat "$state/$name.out"; echo "the local stack $name failed to start" >&2; exit 1; fi
    sleep 0.1
  done
  cat "$state/$name.out"; echo "the local stack $name did not become ready" >&2; exit 1
}
step "start the local stack, and a second gateway on the same moto (free ports; logs in $state)"
mkdir -p "$state/stack" "$state/gateway2"
start_stack stack --moto-port 0 --queue-visibility-timeout 4 "${stack_env[@]}"
start_stack gateway2 --attach "$state/stack.json"
export CITY_EVENTS_STACK="$state/stack.json" CITY_EVENTS_STACK_2="$state/gateway2.json"
export MOTO_SERVER="$root/.tools/stack/bin/moto_server"

if [ "${CONTRACT_ONLY:-}" != 1 ]; then
  step "cargo test --workspace"
  # The output passes through as it comes; at the end, the slowest test binaries and their times.
  cargo test --workspace "$@" 2>&1 | .tools/stack/bin/python infra/slowest.py
fi

# The API contract: every operation of docs/openapi.json, generated requests, every check
# (only when the whole suite runs: extra arguments select some tests).
if [ "$#" -eq 0 ]; then
  step "API contract: schemathesis against the local stack (infra/contract.sh)"
  bash infra/contract.sh "$state/stack.json"
fi
