#!/usr/bin/env bash
# A container engine for images/tests on a Debian/Ubuntu machine without one: installs
# podman, runc and debootstrap from the distribution's packages (as root) and gives podman
# the settings this kind of machine needs. Skipped when a working engine is already there
# (`docker info` or `podman info` answers). Then starts podman's Docker-compatible API
# socket (kfp.local's DockerRunner talks to it) and prints `export DOCKER_HOST=...`.
#   Usage: eval "$(bash scripts/containers.sh)"
set -euo pipefail
if [ "$(id -u)" = 0 ]; then default_sock=/run/kfp-interop-podman.sock
else default_sock="${XDG_RUNTIME_DIR:-/tmp}/kfp-interop-podman.sock"; fi
sock="${KFP_INTEROP_PODMAN_SOCKET:-$default_sock}"
ping() {  # the Docker-compatible API answers on the socket
  python3 - "$sock" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
assert s.recv(64).split()[1] == b"200"
PY
}

if docker info >/dev/null 2>&1; then
  echo "# a Docker engine answers: nothing to install" >&2
  exit 0
fi
if ! command -v podman >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "No container engine: install Docker or podman (with runc) and debootstrap, or run this as root." >&2
    exit 1
  fi
  echo "# installing podman, runc, debootstrap" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  apt-get install -y -qq podman runc debootstrap uidmap >&2
fi
conf=/etc/containers/containers.conf
if [ "$(id -u)" = 0 ] && { [ ! -s "$conf" ] || grep -q "kfp-interop" "$conf"; }; then
  # crun fails on kernels with hybrid cgroups; runc works. Host networking (no bridge
  # or slirp here) and ulimits the sandbox allows.
  cat > "$conf" <<'CONF'
# written by kfp-interop scripts/containers.sh
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "host"
[engine]
runtime = "runc"
CONF
fi
podman info >/dev/null
if ! ping; then
  rm -f "$sock"
  nohup podman system service --time=0 "unix://$sock" >/tmp/kfp-interop-podman.log 2>&1 &
  for _ in $(seq 50); do
    ping && break
    sleep 0.2
  done
  ping || { echo "podman's API socket $sock does not answer (see /tmp/kfp-interop-podman.log)" >&2; exit 1; }
fi
echo "export DOCKER_HOST=unix://$sock"
