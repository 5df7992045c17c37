# Shared by the SDK session scripts (sourced, not run): a server per
# session, and the operations each session covered.
#
#   sdk_start NAME [serve options...]   starts a server on a fresh data folder;
#                                       sets $origin (no version), $pid, $data
#   sdk_token [token options...]        a token for the server's default tenant
#   sdk_covered NAME                    after a session passed: the operations its
#                                       server answered (from /metrics) must be
#                                       those listed in tests/fidelity/NAME.txt,
#                                       which docs/fidelity.md counts as covered
#   sdk_stop                            stops the server
#
# AGENTRY_UPDATE_FIDELITY=1 rewrites the lists instead of checking them.

sdk_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdk_root="$(cd "$sdk_here/../.." && pwd)"
sdk_work="$(mktemp -d)"
trap 'sdk_stop; rm -rf "$sdk_work"' EXIT

sdk_build() {
  cargo build --quiet --manifest-path "$sdk_root/Cargo.toml"
  sdk_bin="${CARGO_TARGET_DIR:-$sdk_root/target}/debug/agentry"
}

sdk_start() {
  local name="$1"
  shift
  [ -n "${sdk_bin:-}" ] || sdk_build
  data="$sdk_work/$name"
  "$sdk_bin" serve --listen 127.0.0.1:0 --data-dir "$data" "$@" > "$sdk_work/$name.out" 2>"$sdk_work/$name.err" &
  pid=$!
  for _ in $(seq 100); do grep -q http "$sdk_work/$name.out" 2>/dev/null && break; sleep 0.1; done
  origin="$(grep -o 'http://[^ ]*/beta' "$sdk_work/$name.out" | head -1)"
  origin="${origin%/beta}"
  [ -n "$origin" ] || { cat "$sdk_work/$name.err" >&2; return 1; }
}

sdk_token() {
  "$sdk_bin" token --data-dir "$data" "$@"
}

sdk_stop() {
  if [ -n "${pid:-}" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}

# The `METHOD /route` lines of /metrics' request counters for the Graph
# roots that the server carried out (a success answer, below 400).
sdk_covered() {
  local name="$1" list="$sdk_root/tests/fidelity/$1.txt" got="$sdk_work/$1.covered"
  python3 - "$origin/metrics" > "$got" <<'EOF'
import re, sys, urllib.request
seen = set()
for line in urllib.request.urlopen(sys.argv[1]).read().decode().splitlines():
    m = re.match(r'agentry_http_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)"\}', line)
    if m and m[2].startswith(("/beta/", "/v1.0/")) and int(m[3]) < 400:
        seen.add(f"{m[1]} {m[2]}")
print("\n".join(sorted(seen)))
EOF
  if [ "${AGENTRY_UPDATE_FIDELITY:-}" = 1 ]; then
    mkdir -p "$(dirname "$list")"
    cp "$got" "$list"
  elif ! diff -u "$list" "$got"; then
    echo "tests/fidelity/$name.txt is not what the session covers (above: - listed, + covered);" >&2
    echo "rerun with AGENTRY_UPDATE_FIDELITY=1, then regenerate docs/fidelity.md" >&2
    return 1
  fi
}
