#!/usr/bin/env bash
# The test command of the README: installs what the tests need when it is
# missing (Debian's PostgreSQL server binaries, from which the tests start a
# throwaway cluster of their own), then runs every test, and the HTTP suite a
# second time on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL's server binaries (the tests start a cluster of their own),
# curl (the README test runs the README's curl lines), and headless Chromium
# with chromedriver (the console's browser tests drive it over WebDriver), and
# npm for axe-core, which those tests run in each view of the console.
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
command -v curl > /dev/null || missing+=(curl)
command -v chromium > /dev/null || [ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
command -v chromedriver > /dev/null || missing+=(chromium-driver)
command -v npm > /dev/null || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[tests] installing Debian's ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
# axe-core at the version tests/console/package.json pins (and its lock file checks).
want=$(sed -n 's/.*"axe-core": "\(.*\)".*/\1/p' tests/console/package.json)
have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' tests/console/node_modules/axe-core/package.json 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "[tests] installing axe-core into tests/console/node_modules" >&2
  (cd tests/console && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

if [ "$#" -gt 0 ]; then
  cargo test "$@"
  AGENTRY_TEST_BACKEND=postgres cargo test --test api "$@"
  exit
fi

# A whole run also records the Graph operations the HTTP tests call (see
# tests/api/support.rs), and checks them against tests/fidelity/http.txt, the
# list docs/fidelity.md counts as covered; AGENTRY_UPDATE_FIDELITY=1 rewrites it.
mkdir -p target/fidelity
recorded="$PWD/target/fidelity/http.recorded"
rm -f "$recorded"
AGENTRY_RECORD_OPERATIONS="$recorded" cargo test
AGENTRY_TEST_BACKEND=postgres cargo test --test api
LC_ALL=C sort -u "$recorded" > "$recorded.sorted"
if [ "${AGENTRY_UPDATE_FIDELITY:-}" = 1 ]; then
  cp "$recorded.sorted" tests/fidelity/http.txt
elif ! diff -u tests/fidelity/http.txt "$recorded.sorted"; then
  echo "tests/fidelity/http.txt is not what the HTTP tests call (above: - listed, + called);" >&2
  echo "rerun with AGENTRY_UPDATE_FIDELITY=1, then regenerate docs/fidelity.md" >&2
  exit 1
fi
