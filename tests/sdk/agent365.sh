#!/usr/bin/env bash
# Agent registrations, the package catalog, JSON batching and the Copilot
# admin settings through Microsoft's Python SDKs (microsoft-agents-m365copilot-beta
# and microsoft-agents-m365copilot, and msgraph-core's batch builder, pinned,
# from the package registry into a virtualenv under target/), against a server
# seeded with examples/seed.json. CI runs this.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv="${AGENTRY_A365_VENV:-$root/target/a365-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "microsoft-agents-m365copilot-beta==1.0.0rc22" "microsoft-agents-m365copilot==1.11.0" \
  "msgraph-core==1.5.2" "Deprecated==1.3.1"

cargo build --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/agentry"
"$bin" serve --listen 127.0.0.1:0 --data-dir "$work" --seed "$root/examples/seed.json" > "$work/out" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q http "$work/out" 2>/dev/null && break; sleep 0.1; done
origin="$(grep -o 'http://[^ ]*/beta' "$work/out" | head -1)"
origin="${origin%/beta}"
tenant="$(python3 -c 'import json,sys; print(next(iter(json.load(open(sys.argv[1]))["tenants"])))' "$root/examples/seed.json")"
token="$("$bin" token --data-dir "$work" --tenant "$tenant")"
"$venv/bin/python" "$here/agent365_session.py" "$origin" "$token"
# The Copilot admin settings session, on the same seeded server and SDK.
"$venv/bin/python" "$here/copilot_smoke.py" "$origin/beta" "$token"
