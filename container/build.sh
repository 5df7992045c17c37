#!/usr/bin/env bash
# Builds the container image `agentry:latest` without a daemon: the release
# binary with the few shared libraries it loads, then podman (or buildah) on
# container/Containerfile. Installs Debian's podman and runc when missing.
# Where rlimits cannot be raised (sandboxes), a containers.conf without
# default ulimits and with the runc runtime is used (container/containers.conf).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v podman > /dev/null && ! command -v buildah > /dev/null; then
  echo "[container] installing Debian's podman and runc" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc > /dev/null
fi
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/container/containers.conf}"

echo "[container] building agentry (release)" >&2
cargo build --release --locked
binary="${CARGO_TARGET_DIR:-$root/target}/release/agentry"
context="$root/target/container"
rm -rf "$context"
mkdir -p "$context/data" "$context/rootfs"
# The binary and the shared libraries it loads (the C library and its
# loader), at the paths it looks for them: self-contained on an empty base.
cp "$binary" "$context/agentry"
strip "$context/agentry" 2> /dev/null || true
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
  mkdir -p "$context/rootfs$(dirname "$lib")"
  cp -L "$lib" "$context/rootfs$lib"
done
# The system's CA certificates, for https notification receivers and an
# external OpenID Connect issuer's keys (the server starts without them).
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$context/rootfs/etc/ssl/certs"
  cp -L /etc/ssl/certs/ca-certificates.crt "$context/rootfs/etc/ssl/certs/"
fi

if command -v podman > /dev/null; then
  podman build --format docker -t agentry:latest -f container/Containerfile "$context"
else
  buildah build --format docker -t agentry:latest -f container/Containerfile "$context"
fi
echo "[container] built agentry:latest ($(du -h "$context/agentry" | cut -f1) binary)" >&2
