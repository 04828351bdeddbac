#!/usr/bin/env bash
# Line coverage of the domain rules by their unit tests alone (no moto, no network): the
# seating crate, the auth domain modules and the events rules (change, cancel). The adapters and handlers that only talk to AWS
# (seating's DynamoDB adapter, the auth store, the HTTP handlers, the rotation Lambda) are
# covered by the end-to-end suite instead and are left out here. Fails under 90 % of lines.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
version=0.9.1
tools="$root/.tools/cargo"
if ! "$tools/bin/cargo-llvm-cov" llvm-cov --version 2>/dev/null | grep -q "$version"; then
  echo "==> installing cargo-llvm-cov $version into .tools/cargo"
  rustup component add llvm-tools-preview || {
    echo "error: could not install the Rust component llvm-tools-preview (needed for coverage)" >&2
    exit 1
  }
  cargo install cargo-llvm-cov --version "$version" --locked --root "$tools"
fi
export PATH="$tools/bin:$PATH"
# Everything of the workspace but the domain modules named above.
ignore='(shared|tests|functions/(joins|notifications|ops))/'
ignore+='|functions/events/src/(api|store|model|text|openapi|lib)\.rs'
ignore+='|functions/seating/src/(dynamo|tests)\.rs'
ignore+='|functions/auth/src/(api|store|rotation|openapi|tests)\.rs|/bin/'
cargo llvm-cov --package seating --package auth --package events --lib \
  --ignore-filename-regex "$ignore" --fail-under-lines "${COVERAGE_MIN_LINES:-90}" "$@"
