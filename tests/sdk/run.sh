#!/usr/bin/env bash
# Runs python_smoke.py with Microsoft's msgraph-beta-sdk and copilot_smoke.py with
# microsoft-agents-m365copilot-beta against fresh servers, then identity.sh
# (Azure Identity against the built-in identity provider).
# Needs python3 and the package registry; the SDK is large (several hundred MB installed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv="${AGENTRY_SDK_VENV:-$root/target/sdk-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check msgraph-beta-sdk microsoft-agents-m365copilot-beta

cargo build --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/agentry"
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work" > "$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 50); do grep -q http "$work/out" 2>/dev/null && break; sleep 0.1; done
base="$(grep -o 'http://[^ ]*/beta' "$work/out" | head -1)"
"$venv/bin/python" "$here/python_smoke.py" "$base" "$("$bin" token --data-dir "$work")"
kill "$pid"; wait "$pid" 2>/dev/null || true

seeded="$work/seeded"
"$bin" serve --listen 127.0.0.1:0 --data-dir "$seeded" --seed "$root/examples/seed.json" > "$work/out2" 2>/dev/null &
pid=$!
for _ in $(seq 50); do grep -q http "$work/out2" 2>/dev/null && break; sleep 0.1; done
base="$(grep -o 'http://[^ ]*/beta' "$work/out2" | head -1)"
tenant="$(python3 -c 'import json,sys; print(next(iter(json.load(open(sys.argv[1]))["tenants"])))' "$root/examples/seed.json")"
"$venv/bin/python" "$here/copilot_smoke.py" "$base" "$("$bin" token --data-dir "$seeded" --tenant "$tenant")"
kill "$pid"; wait "$pid" 2>/dev/null || true

AGENTRY_IDENTITY_VENV="$venv" "$here/identity.sh"
