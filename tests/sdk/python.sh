#!/usr/bin/env bash
# Microsoft's Python SDKs, unchanged but for the base URL and the token, each
# session on a server of its own: msgraph-beta-sdk over the Agent Registry,
# microsoft-agents-m365copilot(-beta) over agent registrations, the package
# catalog and JSON batching (with msgraph-core's batch builder), and over the
# Copilot admin settings. After each session, the operations its server
# carried out are checked against tests/fidelity/<session>.txt (see lib.sh).
# Installs the pinned SDKs once into a virtualenv under target/ (about 800 MB;
# the first install takes a minute). CI runs this.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

venv="${AGENTRY_SDK_VENV:-$sdk_root/target/sdk-venv}"
pins=(
  "msgraph-beta-sdk==1.66.0" "microsoft-agents-m365copilot-beta==1.0.0rc22"
  "microsoft-agents-m365copilot==1.11.0" "msgraph-core==1.5.2" "Deprecated==1.3.1"
)
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ "$(cat "$venv/pins" 2>/dev/null)" != "${pins[*]}" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" > "$venv/pins"
fi
python="$venv/bin/python"
seed="$sdk_root/examples/seed.json"
tenant="$(python3 -c 'import json,sys; print(next(iter(json.load(open(sys.argv[1]))["tenants"])))' "$seed")"

sdk_start python-msgraph-beta
"$python" "$sdk_here/graph_session.py" "$origin" "$(sdk_token)"
sdk_covered python-msgraph-beta
sdk_stop

sdk_start python-agent365 --seed "$seed"
"$python" "$sdk_here/agent365_session.py" "$origin" "$(sdk_token --tenant "$tenant")"
sdk_covered python-agent365
sdk_stop

sdk_start python-copilot-settings --seed "$seed"
"$python" "$sdk_here/copilot_settings_session.py" "$origin" "$(sdk_token --tenant "$tenant")"
sdk_covered python-copilot-settings
sdk_stop
