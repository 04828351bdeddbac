#!/usr/bin/env bash
# The CycloneDX SBOM (1.5, JSON) of every deployed binary, for the arm64 Lambda target, into
# target/sbom/<binary>.cdx.json: every crate compiled into it (build-time only dependencies
# left out), with version, licence, hashes and purl. cargo-cyclonedx is built once, pinned,
# into .tools/cargo-cyclonedx. `make sam-build` runs this beside the build (docs/supply-chain.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=0.5.9
dir="$root/.tools/cargo-cyclonedx"
bin="$dir/bin/cargo-cyclonedx"
if [ ! -x "$bin" ] || ! "$bin" cyclonedx --version 2>/dev/null | grep -q " $version\$"; then
  echo "==> building cargo-cyclonedx $version into .tools/cargo-cyclonedx (once)"
  cargo install cargo-cyclonedx --version "$version" --locked --quiet --root "$dir" --target-dir "$dir/target"
  rm -rf "$dir/target"
fi
cd "$root"
out="$root/target/sbom"
rm -rf "$out" && mkdir -p "$out"
"$bin" cyclonedx --format json --describe binaries --target aarch64-unknown-linux-gnu \
  --no-build-deps --spec-version 1.5 --quiet
# cargo-cyclonedx writes each SBOM beside its package's Cargo.toml: collect them.
find functions shared bench -name '*_bin.cdx.json' -print0 | while IFS= read -r -d '' f; do
  name="$(basename "$f" _bin.cdx.json)"
  mv "$f" "$out/$name.cdx.json"
done
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
files = sorted(os.listdir(out))
sizes = [len(json.load(open(os.path.join(out, f))).get("components", [])) for f in files]
print("SBOMs of %d binaries in %s (components per binary: %d to %d)" % (len(files), out, min(sizes), max(sizes)))
PY
