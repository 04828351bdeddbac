#!/usr/bin/env bash
# `make load-smoke|load-load|load-stress|load-soak`: Locust (headless) against a local stack of
# its own on 127.0.0.1, the profile's users and time bounded (infra/load/locustfile.py), then the
# report (infra/load/report.py): plots and summary.md into OUT (smoke: target/load/smoke; the
# others: docs/load/<profile>, committed once). smoke uses the debug builds `make test` made
# (CI); the others release builds (what deploys; DEBUG=1 for debug ones). SKIP_BUILD=1 uses the
# binaries already built. Fails when the run's failure rate is above 1 % (smoke: any failure).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
profile="${1:?usage: run.sh smoke|load|stress|soak}"
bash infra/setup.sh > /dev/null
release=(--release)
build="release"
if [ "$profile" = smoke ] || [ "${DEBUG:-}" = 1 ]; then release=(); build="debug"; fi
if [ "${SKIP_BUILD:-}" != 1 ]; then
  echo "==> building the functions ($build)"
  cargo build --workspace --bins --quiet "${release[@]}"
fi
out="${OUT:-$root/docs/load/$profile}"
[ "$profile" = smoke ] && out="${OUT:-$root/target/load/smoke}"
state="$(mktemp -d "${TMPDIR:-/tmp}/city-events-load.XXXXXX")"
stack_pid=""
cleanup() { [ -n "$stack_pid" ] && kill -TERM "$stack_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
# Four instances per function: on two cores more only contend with Locust for the CPU.
LOCAL_MAX_INSTANCES="${LOCAL_MAX_INSTANCES:-4}" .tools/stack/bin/python infra/local_stack.py --no-build "${release[@]}" \
  --quiet --port 0 --moto-port 0 --realtime-port 0 --state-dir "$state/stack" --ready-file "$state/ready.json" \
  > "$state/stack.out" 2>&1 &
stack_pid=$!
for _ in $(seq 1 600); do [ -f "$state/ready.json" ] && break; sleep 0.1; done
[ -f "$state/ready.json" ] || { cat "$state/stack.out"; echo "the local stack did not start" >&2; exit 1; }
.tools/load/bin/python infra/load/seed.py --stack "$state/ready.json" > "$state/seed.json"
url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$state/ready.json")"
logs="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["log_dir"])' "$state/ready.json")"
# Response bytes of a list page by encoding (the report's compression line).
.tools/load/bin/python - "$state/seed.json" > "$state/bytes.json" <<'PY'
import json, sys, urllib.request, urllib.parse
seed = json.load(open(sys.argv[1]))
out = {}
for enc in ("identity", "gzip", "br"):
    q = urllib.parse.urlencode({"city": seed["cities"][0], "limit": 20})
    req = urllib.request.Request(seed["url"] + "/v1/events?" + q, headers={"Accept-Encoding": enc})
    with urllib.request.urlopen(req, timeout=30) as r:
        out[enc] = len(r.read())
print(json.dumps(out))
PY
mkdir -p "$out"
since="$(date +%s)"
echo "==> locust: profile $profile against $url"
limit=900; [ "$profile" = soak ] && limit=900; [ "$profile" = smoke ] && limit=120
LOAD_SEED="$state/seed.json" LOAD_PROFILE="$profile" LOAD_STRESS_OUT="$state/stress.json" \
  timeout "$limit" .tools/load/bin/locust -f infra/load/locustfile.py --headless --host "$url" \
  --csv "$state/locust" --only-summary --loglevel WARNING --exit-code-on-error 0 2>&1 | tail -25
.tools/load/bin/python infra/load/report.py --csv "$state/locust" --logs "$logs" --profile "$profile" \
  --out "$out" --since "$since" --build "$build" --bytes "$state/bytes.json" \
  $( [ -f "$state/stress.json" ] && echo --stress "$state/stress.json" )
.tools/load/bin/python - "$state/locust_stats.csv" "$profile" <<'PY'
import csv, sys
total = next(r for r in csv.DictReader(open(sys.argv[1])) if r["Name"] == "Aggregated")
n, failed = int(total["Request Count"]), int(total["Failure Count"])
allowed = 0 if sys.argv[2] == "smoke" else 0.01 * n
if n == 0 or failed > allowed:
    sys.exit("load %s: %d of %d requests failed (allowed %d)" % (sys.argv[2], failed, n, allowed))
print("load %s: %d requests, %d failed: ok (report in the output directory)" % (sys.argv[2], n, failed))
PY
echo "==> report: $out/summary.md"
