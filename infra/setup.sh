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
venv load requirements-load.txt > "$log_dir/load.log" 2>&1 & load_pid=$!
failed=0
wait "$stack_pid" || failed=1
wait "$sam_pid" || failed=1
wait "$contract_pid" || failed=1
wait "$load_pid" || failed=1
cat "$log_dir/stack.log" "$log_dir/sam.log" "$log_dir/contract.log" "$log_dir/load.log"
rm -rf "$log_dir"
if [ "$failed" -ne 0 ]; then
  echo "error: installing the pinned tools failed (output above)" >&2
  exit 1
fi

# The local OpenID Connect provider (issue 18): oidc-provider from the npm registry, pinned by
# infra/oidc/package-lock.json, run by the machine's Node.js (20 or later).
oidc_dir="$tools/oidc"
oidc_stamp="$oidc_dir/.installed-$(cat "$root/infra/oidc/package.json" "$root/infra/oidc/package-lock.json" | sha256sum | cut -c1-16)"
if [ ! -f "$oidc_stamp" ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "error: Node.js 20+ and npm are needed for the local OpenID Connect provider (infra/oidc)" >&2
    exit 1
  fi
  echo "==> installing the local OpenID Connect provider from infra/oidc into .tools/oidc"
  rm -rf "$oidc_dir"
  mkdir -p "$oidc_dir"
  cp "$root/infra/oidc/package.json" "$root/infra/oidc/package-lock.json" "$oidc_dir/"
  (cd "$oidc_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || {
    echo "error: installing oidc-provider (npm ci in .tools/oidc) failed" >&2
    exit 1
  }
  touch "$oidc_stamp"
fi

if ! rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$'; then
  echo "==> rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu || {
    echo "error: could not install the Rust target aarch64-unknown-linux-gnu (needed for the arm64 Lambda build)" >&2
    exit 1
  }
fi
