#!/usr/bin/env bash
# Installs every tool the project needs, pinned, into .tools/ (git-ignored). Idempotent:
# a venv whose requirements file has not changed since its last install is left alone.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"

venv() { # name requirements-file
  local dir="$tools/$1" req="$root/infra/$2"
  local stamp="$dir/.installed-$(sha256sum "$req" | cut -c1-16)"
  if [ -f "$stamp" ]; then return 0; fi
  echo "==> installing $1 tools from infra/$2 into .tools/$1"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  touch "$stamp"
}

# The venvs install side by side (downloads and unpacking overlap); each logs to its own
# file so that a failure shows the right output.
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/city-events-setup.XXXXXX")"
venv stack requirements-stack.txt > "$log_dir/stack.log" 2>&1 & stack_pid=$!
venv sam requirements-lint.txt > "$log_dir/sam.log" 2>&1 & sam_pid=$!
venv contract requirements-contract.txt > "$log_dir/contract.log" 2>&1 & contract_pid=$!
failed=0
wait "$stack_pid" || failed=1
wait "$sam_pid" || failed=1
wait "$contract_pid" || failed=1
cat "$log_dir/stack.log" "$log_dir/sam.log" "$log_dir/contract.log"
rm -rf "$log_dir"
if [ "$failed" -ne 0 ]; then
  echo "error: installing the pinned tools failed (output above)" >&2
  exit 1
fi

if ! rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$'; then
  echo "==> rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu || {
    echo "error: could not install the Rust target aarch64-unknown-linux-gnu (needed for the arm64 Lambda build)" >&2
    exit 1
  }
fi
