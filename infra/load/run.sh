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
  if [ "$build" = debug ]; then
    # The same build as make test's (--tests too: the same features, so nothing is rebuilt
    # after it).
    cargo build --workspace --bins --tests --quiet
  else
    cargo build --workspace --bins --quiet "${release[@]}"
  fi
fi
out="${OUT:-$root/docs/load/$profile}"
[ "$profile" = smoke ] && out="${OUT:-$root/target/load/smoke}"
state="$(mktemp -d "${TMPDIR:-/tmp}/city-events-load.XXXXXX")"
stack_pid=""
cleanup() {
  if [ -n "$stack_pid" ]; then
    kill -TERM "$stack_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$stack_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$stack_pid" 2>/dev/null || true
  fi
  rm -rf "$state"
}
trap cleanup EXIT
# Four instances per function: on two cores more only contend with Locust for the CPU.
LOCAL_MAX_INSTANCES="${LOCAL_MAX_INSTANCES:-4}" .tools/stack/bin/python infra/local_stack.py --no-build "${release[@]}" \
  --quiet --port 0 --moto-port 0 --realtime-port 0 --state-dir "$state/stack" --ready-file "$state/ready.json" \
  --exit-with-parent > "$state/stack.out" 2>&1 &
stack_pid=$!
for _ in $(seq 1 600); do
  [ -f "$state/ready.json" ] && break
  kill -0 "$stack_pid" 2>/dev/null || break
  sleep 0.1
done
[ -f "$state/ready.json" ] || { cat "$state/stack.out"; echo "the local stack did not start" >&2; exit 1; }
timeout -k 10 120 .tools/load/bin/python infra/load/seed.py --stack "$state/ready.json" > "$state/seed.json"
url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$state/ready.json")"
logs="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["log_dir"])' "$state/ready.json")"
# Response bytes of a list page by encoding (the report's compression line).
timeout -k 10 60 .tools/load/bin/python - "$state/seed.json" > "$state/bytes.json" <<'PY'
import json, sys, urllib.request, urllib.parse
seed = json.load(open(sys.argv[1]))
assert seed["url"].startswith("http://127.0.0.1:"), "loopback only"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
out = {}
for enc in ("identity", "gzip", "br"):
    q = urllib.parse.urlencode({"city": seed["cities"][0], "limit": 20})
    req = urllib.request.Request(seed["url"] + "/v1/events?" + q, headers={"Accept-Encoding": enc})
    with opener.open(req, timeout=30) as r:
        out[enc] = len(r.read())
print(json.dumps(out))
PY
mkdir -p "$out"
since="$(date +%s)"
echo "==> locust: profile $profile against $url"
# Each profile stops itself (locustfile.py's shape); the timeout is the backstop.
case "$profile" in smoke) limit=75 ;; load) limit=240 ;; stress) limit=400 ;; *) limit=700 ;; esac
LOAD_SEED="$state/seed.json" LOAD_PROFILE="$profile" LOAD_STRESS_OUT="$state/stress.json" \
  timeout -k 10 "$limit" .tools/load/bin/locust -f infra/load/locustfile.py --headless --host "$url" \
  --csv "$state/locust" --csv-full-history --only-summary --loglevel WARNING --exit-code-on-error 0 2>&1 | tail -25
.tools/load/bin/python infra/load/report.py --csv "$state/locust" --logs "$logs" --profile "$profile" \
  --out "$out" --since "$since" --build "$build" --bytes "$state/bytes.json" \
  $( [ -f "$state/stress.json" ] && echo --stress "$state/stress.json" )
.tools/load/bin/python - "$state/locust" "$profile" <<'PY'
import csv, sys
total = next(r for r in csv.DictReader(open(sys.argv[1] + "_stats.csv")) if r["Name"] == "Aggregated")
n, failed = int(total["Request Count"]), int(total["Failure Count"])
exceptions = list(csv.DictReader(open(sys.argv[1] + "_exceptions.csv")))
if exceptions:
    sys.exit("load %s: the test itself raised: %s" % (sys.argv[2], exceptions[0]))
# The stress profile goes past the budget on purpose; the others hold it.
allowed = 0 if sys.argv[2] == "smoke" else (n if sys.argv[2] == "stress" else 0.01 * n)
if n == 0 or failed > allowed:
    sys.exit("load %s: %d of %d requests failed (allowed %d)" % (sys.argv[2], failed, n, allowed))
print("load %s: %d requests, %d failed: ok (report in the output directory)" % (sys.argv[2], n, failed))
PY
echo "==> report: $out/summary.md"
