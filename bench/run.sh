#!/usr/bin/env bash
# The benchmark harness: builds Agentry and the load generator in release mode,
# installs json-server (pinned in bench/package.json) into bench/node_modules,
# then runs every scenario and prints the table (also written to
# $CARGO_TARGET_DIR/bench/latest.md).
#
#   bench/run.sh            10k and 100k instances (a few minutes)
#   bench/run.sh --full     also 1M instances (loading alone takes several minutes)
#   bench/run.sh --smoke    a few seconds of load in all: what CI runs
#
# Other options go to the driver: bench/run.sh --help-driver lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
export CARGO_TARGET_DIR=$target

if [[ "${1:-}" == "--help-driver" ]]; then
    cargo run -q --release --manifest-path bench/Cargo.toml -- run --help
    exit 0
fi

echo "[bench] building agentry and the harness (release)" >&2
cargo build --release --quiet --bin agentry
cargo build --release --quiet --manifest-path bench/Cargo.toml

# json-server is the comparison point; without it the run goes on and says so.
json_args=()
if ! command -v npm >/dev/null 2>&1; then
    json_args=(--json-server-missing "npm is not installed")
elif [[ -x bench/node_modules/.bin/json-server ]] ||
    (cd bench && npm ci --no-audit --no-fund --loglevel=error >&2); then
    json_args=(--json-server "$repo/bench/node_modules/.bin/json-server")
else
    json_args=(--json-server-missing "npm could not install json-server")
fi
if [[ ${#json_args[@]} -eq 2 && "${json_args[0]}" == "--json-server-missing" ]]; then
    echo "[bench] json-server comparison skipped: ${json_args[1]}" >&2
fi

mkdir -p "$target/bench"
exec "$target/release/agentry-bench" run \
    --agentry "$target/release/agentry" \
    "${json_args[@]}" \
    --markdown "$target/bench/latest.md" \
    --command "bench/run.sh${*:+ $*}" \
    "$@"
