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

venv stack requirements-stack.txt
venv sam requirements-lint.txt

if ! rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$'; then
  echo "==> rustup target add aarch64-unknown-linux-gnu"
  rustup target add aarch64-unknown-linux-gnu || {
    echo "error: could not install the Rust target aarch64-unknown-linux-gnu (needed for the arm64 Lambda build)" >&2
    exit 1
  }
fi
