#!/usr/bin/env bash
# cargo deny's offline checks (licenses, bans, sources; deny.toml), with cargo-deny built once,
# pinned, into .tools/cargo-deny (crates.io is reachable; its release binaries are not).
# Advisories need the RustSec database from GitHub: `make deny-advisories` where the network
# allows (docs/supply-chain.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=0.20.2
dir="$root/.tools/cargo-deny"
bin="$dir/bin/cargo-deny"
if [ ! -x "$bin" ] || [ "$("$bin" --version 2>/dev/null)" != "cargo-deny $version" ]; then
  echo "==> building cargo-deny $version into .tools/cargo-deny (once)"
  # An unoptimised build: a fraction of the compile time (CI builds it on every fresh
  # machine); its checks of this graph still take seconds.
  cargo install cargo-deny --version "$version" --locked --debug --quiet --root "$dir" --target-dir "$dir/target"
  rm -rf "$dir/target"
fi
cd "$root"
if [ "${1:-}" = "advisories" ]; then
  exec "$bin" check advisories
fi
exec "$bin" --offline check licenses bans sources
