#!/usr/bin/env bash
# A2A's official Python SDK (`a2a-sdk`, both lines, pinned, into virtualenvs
# under target/) re-judges the card corpus of tests/a2a and fails when its
# verdicts differ from tests/a2a/expected.json, against which the Rust
# validator's unit test checks its own. Then it signs and verifies cards both
# ways with `agentry card sign`/`verify` (tests/a2a/check_signatures.py), and
# fetches the cards a running `agentry serve` serves at
# /a2a/{tenantId}/agents/{id}/.well-known/agent-card.json with the SDK's card
# resolver and signature verifier (tests/a2a/check_serving.py); last, it
# watches agents served by the SDK's server as they change, slow down, grow,
# redirect and stop (tests/a2a/check_watching.py).
# CI runs this. AGENTRY_BIN names a built agentry instead of building one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
if [ -z "${AGENTRY_BIN:-}" ]; then
  cargo build --quiet --manifest-path "$root/Cargo.toml"
  AGENTRY_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/agentry"
fi
for line in "0.3 a2a-sdk==0.3.26 pydantic==2.14.4 PyJWT==2.15.1" "1.0 a2a-sdk==1.3.0 protobuf==7.36.2 PyJWT==2.15.1 starlette==1.10.0 sse-starlette==3.7.1 uvicorn==0.55.0"; do
  read -r version pins <<< "$line"
  venv="$root/target/a2a-$version-venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  if [ "$(cat "$venv/pins" 2>/dev/null)" != "$pins" ]; then
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
    echo "$pins" > "$venv/pins"
  fi
  "$venv/bin/python" "$root/tests/a2a/check_cards.py" --version "$version"
  "$venv/bin/python" "$root/tests/a2a/check_signatures.py" --version "$version" --agentry "$AGENTRY_BIN"
  "$venv/bin/python" "$root/tests/a2a/check_serving.py" --version "$version" --agentry "$AGENTRY_BIN"
done
# Real A2A agents served by the 1.x SDK's own server routes (its HTTP server
# extra and uvicorn, pinned above), watched by Agentry's checker.
"$root/target/a2a-1.0-venv/bin/python" "$root/tests/a2a/check_watching.py" --agentry "$AGENTRY_BIN"
