#!/usr/bin/env bash
# Cold start, first invocation, warm invocations and peak RSS of every function's release
# binary, beside two baselines built the same way (a bare lambda_runtime hello world, and a bare
# CRUD function: lambda_http + one DynamoDB GetItem, bench/crud), under a local Lambda Runtime
# API (infra/tools/lambda_bench.py). The functions talk to a real moto server from a local
# stack of their own, so init includes the DynamoDB warm-up and each request its real calls;
# what they replay (callers, events, keys) is made through that stack first
# (tests/tests/bench_fixtures.rs). Then a second, short run through a counting proxy gives the
# AWS requests per call, and the report gives issue 16's ratios and every deploy zip's size.
#
# Options go to the timing run of lambda_bench.py (e.g. -k 5 -n 100); ONLY=get_event,crud
# measures those subjects alone; PROFILE=debug checks the suite quickly on the debug binaries; ARM64=1 also cross-builds the release arm64 binaries
# (cargo lambda, ~25 minutes here) for their zip sizes; SKIP_BUILD=1 times the release binaries
# already in target/release (e.g. after `cargo build --release --bin get_event` and
# `cargo build --release -p bench-hello -p bench-crud`, with ONLY=get_event,crud,hello).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/setup.sh
profile="${PROFILE:-release}"
if [ "$profile" = release ] && [ "${SKIP_BUILD:-}" != 1 ]; then
  echo "==> building release binaries (native, the release profile sam build uses)"
  # The functions as sam build makes them (default members: no test crate's features), then
  # the two baselines.
  cargo build --release --bins --quiet
  cargo build --release -p bench-hello -p bench-crud --quiet
fi
echo "==> building the local stack's debug binaries and the fixtures"
cargo build --workspace --bins --quiet
cargo test --no-run -q -p e2e --test bench_fixtures 2>/dev/null
if [ "${ARM64:-}" = 1 ]; then
  echo "==> cross-building the release arm64 binaries (target/lambda)"
  source .tools/stack/bin/activate
  CARGO_ZIGBUILD_ZIG_PATH=.tools/stack/bin/python-zig cargo lambda build --release --arm64
  CARGO_ZIGBUILD_ZIG_PATH=.tools/stack/bin/python-zig cargo lambda build --release --arm64 -p bench-hello -p bench-crud
fi

state="$(mktemp -d "${TMPDIR:-/tmp}/city-events-bench.XXXXXX")"
stack_pid=""
cleanup() { [ -n "$stack_pid" ] && kill -TERM "$stack_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
# The limits are counted as in production but never reached by the fixtures' sign-ups.
.tools/stack/bin/python infra/local_stack.py --no-build --quiet --port 0 --moto-port 0 --realtime-port 0 \
  --env RATE_LIMIT_API_PER_MINUTE=1000000 --env RATE_LIMIT_AUTH_PER_MINUTE=1000000 \
  --state-dir "$state" --ready-file "$state/ready.json" > "$state/stack.out" 2>&1 &
stack_pid=$!
for _ in $(seq 1 300); do [ -f "$state/ready.json" ] && break; sleep 0.1; done
[ -f "$state/ready.json" ] || { cat "$state/stack.out"; exit 1; }

echo "==> fixtures (callers, events, keys) through the stack"
CITY_EVENTS_STACK="$state/ready.json" BENCH_FIXTURES="$state/fixtures.json" \
  cargo test -q -p e2e --test bench_fixtures -- --ignored > "$state/fixtures.out" 2>&1 \
  || { cat "$state/fixtures.out"; exit 1; }

python3 infra/tools/bench_suite.py suite --ready "$state/ready.json" --fixtures "$state/fixtures.json" \
  --root "$root" --out "$root/target/bench-suite.json" --profile "$profile" ${ONLY:+--only "$ONLY"}
status=0
python3 infra/tools/lambda_bench.py --suite "$root/target/bench-suite.json" --quiet \
  --json "$root/target/bench.json" "$@" || status=$?
echo
echo "==> AWS requests per call (one cold start, 10 warm invocations each, through a counting proxy)"
python3 infra/tools/lambda_bench.py --suite "$root/target/bench-suite.json" --quiet --count-requests \
  -k 1 -n 10 --warmup 0 --json "$root/target/bench-requests.json" || true
python3 infra/tools/bench_suite.py report --timing "$root/target/bench.json" \
  --requests "$root/target/bench-requests.json" --root "$root"
exit $status
