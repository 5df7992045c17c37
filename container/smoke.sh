#!/usr/bin/env bash
# CI: builds the image, runs it with podman, waits for its health check,
# mints a token inside the container and calls the API through the
# published port.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/build.sh"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
name="agentry-smoke-$$"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
trap 'podman rm -f "$name" > /dev/null 2>&1 || true; podman volume rm -f "$name" > /dev/null 2>&1 || true' EXIT
podman run -d --name "$name" -p "127.0.0.1:$port:7171" -v "$name:/data" agentry:latest > /dev/null
# The image's HEALTHCHECK, run by hand: without systemd podman cannot
# schedule it (it says so on stderr; harmless here).
for _ in $(seq 100); do
  podman healthcheck run "$name" > /dev/null 2>&1 && break
  sleep 0.2
done
podman healthcheck run "$name"
[ "$(podman exec "$name" /agentry --version | cut -d' ' -f1)" = agentry ]
[ "$(podman inspect --format '{{.Config.User}}' "$name")" = "10001:10001" ]
token="$(podman exec "$name" /agentry token)"
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/beta/agentRegistry/agentInstances")"
[ "$status" = 200 ] || { echo "the API answered $status"; podman logs "$name"; exit 1; }
size="$(podman image inspect --format '{{.Size}}' agentry:latest)"
[ "$size" -lt 30000000 ] || { echo "the image is $size bytes, over 30 MB"; exit 1; }
echo "[container] agentry:latest ($size bytes) answers 200 on port $port with a token minted inside it"
