#!/usr/bin/env bash
# The API contract test: schemathesis (pinned in .tools/contract) runs every operation of
# docs/openapi.json against a running local stack with every check, and fails on any finding.
# usage: infra/contract.sh STACK_JSON [extra schemathesis args]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
stack_json="$1"; shift
url="$(.tools/stack/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$stack_json")"
export CONTRACT_GATEWAY="${url#http://}" CONTRACT_STACK_JSON="$stack_json"
export SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$root/infra/contract"
# Seeded, so a failure can be replayed; 50 generated cases per operation and phase; bounded.
# One worker: hypothesis 6.170 races in its lambda-source cache across worker threads (a
# KeyError from get_pretty_function_description). The too_slow health check is off: it times
# data generation, which on a busy machine is noise, not a finding.
exec .tools/contract/bin/schemathesis --config-file infra/contract/schemathesis.toml run docs/openapi.json \
  --url "$url" --checks all --max-examples 50 --seed "${CONTRACT_SEED:-20261125}" \
  --phases examples,coverage,fuzzing --workers 1 --request-timeout 30 \
  --generation-database none --suppress-health-check too_slow "$@"
