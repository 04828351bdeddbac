#!/usr/bin/env bash
# Cold start, first invocation, warm invocations and peak RSS of every function's release
# binary, beside a bare lambda_runtime hello world built the same way, under a local Lambda
# Runtime API (infra/tools/lambda_bench.py). The functions talk to a real moto server from the
# local stack, so init includes the DynamoDB warm-up and the first request its real calls.
# Prints the table for docs/performance.md. Options go to lambda_bench.py (e.g. -k 5 -n 100).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash infra/setup.sh
echo "==> building release binaries (native, the release profile sam build uses)"
cargo build --release --workspace --bins --quiet
cargo build --workspace --bins --quiet

state="$(mktemp -d "${TMPDIR:-/tmp}/city-events-bench.XXXXXX")"
stack_pid=""
cleanup() { [ -n "$stack_pid" ] && kill -TERM "$stack_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
.tools/stack/bin/python infra/local_stack.py --no-build --quiet --port 0 --moto-port 0 \
  --state-dir "$state" --ready-file "$state/ready.json" > "$state/stack.out" 2>&1 &
stack_pid=$!
for _ in $(seq 1 300); do [ -f "$state/ready.json" ] && break; sleep 0.1; done
[ -f "$state/ready.json" ] || { cat "$state/stack.out"; exit 1; }

python3 - "$state" <<'PY'
import json, sys
state = sys.argv[1]
env = json.load(open(state + "/ready.json"))["env"]
subjects = [("hello", "hello", "apigw-get-healthz.json", None)]
subjects += [
    ("healthz", "healthz", "apigw-get-healthz.json", 200),
    ("readyz", "readyz", "apigw-get-readyz.json", 200),
    ("openapi", "openapi", "apigw-get-openapi.json", 200),
    ("not_found", "not_found", "apigw-unknown-route.json", 404),
    ("outbox_relay", "outbox_relay", "dynamodb-stream-outbox-insert.json", None),
    ("notifications_consumer", "notifications_consumer", "sqs-outbox-message.json", None),
]
# X-Ray (issue 15): every row above runs as Lambda does with active tracing and an unsampled
# invocation (Sampled=0: most requests under the default sampling rule). The rows below are
# the same binaries with X-Ray off (no daemon: spans as JSON log lines, what the code did
# before) and with a sampled invocation whose spans are exported to the stack's daemon.
xray = [
    ("healthz-xray-off", "healthz", "apigw-get-healthz.json", 200, "off"),
    ("healthz-sampled", "healthz", "apigw-get-healthz.json", 200, "sampled"),
    ("consumer-xray-off", "notifications_consumer", "sqs-outbox-message.json", None, "off"),
    ("consumer-sampled", "notifications_consumer", "sqs-outbox-message.json", None, "sampled"),
]
suite = {"subjects": []}
for name, binary, event, status, *mode in subjects + xray:
    s = {"name": name, "cmd": ["target/release/" + binary], "event": "events/" + event, "cwd": ".",
         # production runs without LOG_SPANS (the local stack sets it for its own logs)
         "env": {k: v for k, v in env.items() if k != "LOG_SPANS"}}
    if mode == ["off"]:
        s["env"]["AWS_XRAY_DAEMON_ADDRESS"] = ""
    if mode == ["sampled"]:
        s["trace_sampled"] = True
    if status:
        s["expect_status"] = status
    suite["subjects"].append(s)
json.dump(suite, open(state + "/suite.json", "w"))
PY
cp "$state/suite.json" "$root/target/bench-suite.json"
sed -i "s|\"target/release/|\"$root/target/release/|g; s|\"events/|\"$root/events/|g; s|\"cwd\": \".\"|\"cwd\": \"$root\"|g" "$root/target/bench-suite.json"
python3 infra/tools/lambda_bench.py --suite "$root/target/bench-suite.json" "$@"
ls -l target/release/{hello,healthz,readyz,openapi,not_found,outbox_relay,notifications_consumer} | awk '{printf "%-28s %6.1f MB\n", $9, $5/1048576}'
