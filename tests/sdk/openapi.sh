#!/usr/bin/env bash
# Validates the server's /openapi.json with openapi-spec-validator (OpenAPI 3.1),
# installed into a virtualenv under target/. CI runs this.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv="${AGENTRY_OPENAPI_VENV:-$root/target/openapi-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator>=0.7,<1"

cargo build --quiet --manifest-path "$root/Cargo.toml"
"${CARGO_TARGET_DIR:-$root/target}/debug/agentry" serve --listen 127.0.0.1:0 --data-dir "$work" > "$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q http "$work/out" 2>/dev/null && break; sleep 0.1; done
origin="$(grep -o 'http://[^ ]*/beta' "$work/out" | head -1)"
origin="${origin%/beta}"
python3 -c 'import sys, urllib.request; open(sys.argv[2], "wb").write(urllib.request.urlopen(sys.argv[1]).read())' "$origin/openapi.json" "$work/openapi.json"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"
