#!/usr/bin/env bash
# Azure Identity's client-secret credential against Agentry's built-in identity
# provider over HTTPS: obtains a token, then calls the API with it.
# Installs azure-identity into a virtualenv under target/ (small; CI runs this).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv="${AGENTRY_IDENTITY_VENV:-$root/target/identity-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "azure-identity>=1.15,<2"

cargo build --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/agentry"
tenant=c0ffee00-0000-4000-8000-000000000001
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work" --tls-self-signed true > "$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q https "$work/out" 2>/dev/null && break; sleep 0.1; done
origin="$(grep -o 'https://[^ ]*/beta' "$work/out" | head -1)"
origin="${origin%/beta}"
app="$("$bin" app add --name identity-check --tenant "$tenant" --data-dir "$work")"
client_id="$(echo "$app" | awk '/client id:/ {print $3}')"
secret="$(echo "$app" | awk '/client secret:/ {print $3}')"
"$venv/bin/python" "$here/identity_check.py" "$origin" "$tenant" "$client_id" "$secret" "$work/tls/cert.pem"
