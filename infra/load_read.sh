#!/usr/bin/env bash
# `make load-read`: open-loop read load (infra/load_read.py) on a local stack of its own, release
# builds (what deploys; DEBUG=1 for debug ones; SKIP_BUILD=1 to use those already built), loopback only, bounded (~90 s, ~4 850 requests
# with the default steps). Options go to load_read.py (e.g. --rates 25,50 --seconds 20).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/setup.sh
release=(--release)
if [ "${DEBUG:-}" = 1 ]; then release=(); fi
if [ "${SKIP_BUILD:-}" != 1 ]; then  # SKIP_BUILD=1: the binaries already built
  echo "==> building (${release[*]:-debug})"
  cargo build --workspace --bins --quiet "${release[@]}"
  cargo build --workspace --bins --quiet
fi
cargo test --no-run -q -p e2e --test bench_fixtures 2>/dev/null
state="$(mktemp -d "${TMPDIR:-/tmp}/city-events-load.XXXXXX")"
stack_pid=""
cleanup() { [ -n "$stack_pid" ] && kill -TERM "$stack_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
.tools/stack/bin/python infra/local_stack.py --no-build "${release[@]}" --quiet --port 0 --moto-port 0 --realtime-port 0 \
  --state-dir "$state" --ready-file "$state/ready.json" > "$state/stack.out" 2>&1 &
stack_pid=$!
for _ in $(seq 1 300); do [ -f "$state/ready.json" ] && break; sleep 0.1; done
[ -f "$state/ready.json" ] || { cat "$state/stack.out"; exit 1; }
CITY_EVENTS_STACK="$state/ready.json" BENCH_FIXTURES="$state/fixtures.json" \
  cargo test -q -p e2e --test bench_fixtures -- --ignored > "$state/fixtures.out" 2>&1 \
  || { cat "$state/fixtures.out"; exit 1; }
url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$state/ready.json")"
event="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["event"])' "$state/fixtures.json")"
echo "==> GET /v1/events/$event at each rate ($url)"
python3 infra/load_read.py --url "$url" --event "$event" "$@"
