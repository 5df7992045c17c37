#!/usr/bin/env bash
# Runs python_smoke.py with Microsoft's msgraph-beta-sdk against a fresh Agentry,
# then identity_check.py: Azure Identity's client-secret credential against
# Agentry's built-in identity provider over HTTPS (self-signed).
# Needs python3 and the package registry; the SDK is large (several hundred MB installed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv="${AGENTRY_SDK_VENV:-$root/target/sdk-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check msgraph-beta-sdk

cargo build --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/debug/agentry"
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work" > "$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 50); do grep -q http "$work/out" 2>/dev/null && break; sleep 0.1; done
base="$(grep -o 'http://[^ ]*/beta' "$work/out" | head -1)"
"$venv/bin/python" "$here/python_smoke.py" "$base" "$("$bin" token --data-dir "$work")"
kill "$pid"; wait "$pid" 2>/dev/null || true

tenant=c0ffee00-0000-4000-8000-000000000001
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work" --tls-self-signed true > "$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 50); do grep -q https "$work/out" 2>/dev/null && break; sleep 0.1; done
origin="$(grep -o 'https://[^ ]*/beta' "$work/out" | head -1)"
origin="${origin%/beta}"
app="$("$bin" app add --name sdk-check --tenant "$tenant" --data-dir "$work")"
client_id="$(echo "$app" | awk '/client id:/ {print $3}')"
secret="$(echo "$app" | awk '/client secret:/ {print $3}')"
"$venv/bin/python" "$here/identity_check.py" "$origin" "$tenant" "$client_id" "$secret" "$work/tls/cert.pem"
