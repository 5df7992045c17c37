#!/usr/bin/env bash
# The test command of the README: installs what the tests need when it is
# missing (Debian's PostgreSQL server binaries, from which the tests start a
# throwaway cluster of their own), then runs every test, and the HTTP suite a
# second time on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL's server binaries (the tests start a cluster of their own) and
# curl (the README test runs the README's curl lines).
missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
command -v curl > /dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[tests] installing Debian's ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi

cargo test "$@"
AGENTRY_TEST_BACKEND=postgres cargo test --test api "$@"
