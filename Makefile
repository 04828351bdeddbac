# The two commands a fresh machine needs are `make dev` and `make test`; the rest are parts.
SHELL := /bin/bash
PY := .tools/stack/bin/python
SAM := .tools/sam/bin/sam
CFN_LINT := .tools/sam/bin/cfn-lint
export SAM_CLI_TELEMETRY := 0

.PHONY: load-smoke load-load load-stress load-soak sbom restore-drill deny deny-advisories load-read dev listen trace test test-rounds test-fanout test-hot contract coverage setup lint fmt clippy template-lint build-arm64 sam-build openapi bench bench-middleware bench-auth bench-joins bench-hot

## Run the whole system locally: moto, every function, the HTTP API on http://127.0.0.1:3000.
## RELEASE=1 runs release builds (what deploys; for measuring).
dev: setup
	LOCAL_XRAY_SAMPLING=$${LOCAL_XRAY_SAMPLING:-1} $(PY) infra/local_stack.py --ready-file .local/ready.json $(if $(RELEASE),--release)

## Listen on the local WebSocket API as a user (make listen EMAIL=... PASSWORD=..., or TOKEN=...;
## FROM=<notification id> resumes first): every notification of theirs is printed as it arrives.
listen: setup
	$(PY) infra/tools/ws_listen.py $(if $(TOKEN),--token '$(TOKEN)',--email '$(EMAIL)' --password '$(PASSWORD)') $(if $(FROM),--resume-from '$(FROM)')

## Print one X-Ray trace of the local stack as a waterfall (make trace ID=1-...); without ID,
## the traces of the last 15 minutes (FILTER='annotation.user_id = "..."' narrows them). The
## id is the `trace_id` of the request's log lines.
trace: setup
	$(PY) infra/trace.py $(ID) $(if $(FILTER),--filter '$(FILTER)')

## Load tests (Locust, headless, a local stack of their own on 127.0.0.1, bounded): smoke (4
## users, 45 s; debug builds; in CI), load (20 users, 3 min), stress (+5 users every 20 s until
## reads' p95 > 200 ms or errors > 1 %, at most 5 min), soak (12 users, 10 min). Report: plots
## and summary.md in docs/load/<profile> (smoke: target/load/smoke).
load-smoke:
	bash infra/load/run.sh smoke
load-load:
	bash infra/load/run.sh load
load-stress:
	bash infra/load/run.sh stress
load-soak:
	bash infra/load/run.sh soak

## The restore drill against the running `make dev` stack (or STACK=<ready file>): write, note
## the time, damage, restore to that time into a new table, verify, switch (EVENT=<id>: an event
## it deletes and reads back through functions switched to the restored table).
restore-drill: setup
	$(PY) infra/restore_drill.py --stack $(or $(STACK),.local/ready.json) $(if $(EVENT),--event $(EVENT))

## Run every test (unit, handler, integration against moto, end to end through the local stack).
test:
	bash infra/test.sh

## The full waitlist soak: 20 rounds of 500 concurrent joins on a 50-seat event, each followed
## by 30 leaves that promote (make test runs 3 rounds). Its own local stack; ~10 minutes here.
test-rounds:
	JOIN_ROUNDS=20 bash infra/test.sh --test waitlist_rounds -- --nocapture

## Line coverage of the domain rules by their unit tests (seating, the auth domain modules):
## cargo-llvm-cov (pinned, into .tools/cargo); fails under 90 % of lines.
coverage:
	bash infra/coverage.sh

## The large fan-out: cancel an event with 10 000 attendees (seeded in the table); every inbox
## gets exactly one notification (make test runs 2 000). Its own local stack.
test-fanout:
	FANOUT_ATTENDEES=10000 bash infra/test.sh --test fanout -- --nocapture

## A hot event end to end: 2 000 joins of 500 seats through the ordered intake (make test runs
## 200 of 50). Its own local stack.
test-hot:
	LOCAL_MAX_INSTANCES=16 bash infra/test.sh --test hot -- --ignored --nocapture two_thousand

## Install the pinned tools into .tools/ (idempotent).
setup:
	bash infra/setup.sh

lint: fmt clippy template-lint deny

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

template-lint: setup
	$(CFN_LINT) template.yaml
	$(SAM) validate --lint -t template.yaml

## Cross-build every function for arm64 with the fast CI profile (no LTO), with the features
## sam build resolves (the default members: the functions, not the test or bench crates).
build-arm64: setup
	source .tools/stack/bin/activate && CARGO_ZIGBUILD_ZIG_PATH=.tools/stack/bin/python-zig \
	  cargo lambda build --arm64 --profile ci

## What deploys: sam build runs `cargo lambda build --release --arm64` per function.
sam-build: setup
	source .tools/stack/bin/activate && PATH="$$PWD/.tools/sam/bin:$$PATH" $(SAM) build
	bash infra/sbom.sh

## The CycloneDX SBOM of every deployed binary (arm64) into target/sbom/ (sam-build makes it too).
sbom:
	bash infra/sbom.sh

## Regenerate docs/openapi.json from the code.
openapi:
	UPDATE_OPENAPI=1 cargo test -p ops --lib openapi

## The API contract alone: schemathesis (every check, 50 cases per operation) against a local
## stack it starts (make test runs it after the other tests).
contract:
	CONTRACT_ONLY=1 bash infra/test.sh

## Cold start and warm latency of every function vs a bare lambda_runtime hello world.
bench:
	bash infra/bench.sh

## Waitlist contention as concurrent writers grow: its own local stack (32 instances per
## function), prints a table of transactions per join (docs/performance.md).
bench-joins:
	LOCAL_MAX_INSTANCES=32 bash infra/test.sh --test waitlist_rounds -- --ignored --nocapture contention

## Joins/s on ONE event as concurrent writers grow 1, 8, 32, 128, and the same joins spread over
## 100 events (issue 14's yardstick), and the AWS requests per join of the hot path: its own
## local stack, 32 instances per function, secrets cached as deployed (300 s).
bench-hot:
	LOCAL_XRAY_SAMPLING=1 LOCAL_MAX_INSTANCES=32 SECRETS_CACHE_TTL_SECONDS=300 bash infra/test.sh --test hot -- --ignored --nocapture joins_per_second

## Open-loop read load on a local stack of its own (release builds): GET /v1/events/{id} at
## 10, 25, 50, 100, 200, 50, a pause, 50 req/s, 10 s each; prints p50/p95/p99 per rate and the
## highest rate under p95 50 ms and 200 ms (docs/performance.md). Loopback only, bounded.
load-read:
	bash infra/load_read.sh $(ARGS)

## The middleware's own cost per request, in process around a no-op handler (criterion, then
## p50/p99 of single calls; issue 16's goal: p99 <= 50 µs).
bench-middleware:
	cargo bench -p shared --bench middleware

## Supply chain: cargo deny's offline checks (licences, bans, sources; deny.toml), in CI.
deny:
	bash infra/deny.sh

## RustSec advisories (needs the network to fetch the advisory database; not in CI here).
deny-advisories:
	bash infra/deny.sh advisories

## RS256 token verify/sign and argon2id hash cost per call (release build of one binary).
bench-auth:
	cargo run --release -q -p bench-auth-crypto
