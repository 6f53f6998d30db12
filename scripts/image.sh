#!/usr/bin/env bash
# Build kfp-interop's images with Docker or podman, whichever answers:
#   full     ghcr.io/kfp-interop/kfp-interop:<version>          (every pipeline task)
#   serving  ghcr.io/kfp-interop/kfp-interop-serving:<version>  (the ServingRuntime)
# tagged with exactly the references the compiled YAML and manifests name.
#
# Usage: bash scripts/image.sh [--target full|serving|all] [--image REF]
#                              [--serving-image REF] [--base IMAGE] [--engine docker|podman]
#                              [--extras EXTRAS] [--push]
#   --image / --serving-image  other references (a private registry's); compile with
#                              `kfp-interop compile --all --image REF --serving-image REF`
#   --base                     another Debian/Ubuntu base with Python >= 3.10
# Where the default base (python:3.11-slim) cannot be pulled, a Debian base is made with
# debootstrap and kept as localhost/kfp-interop-base:bookworm (built once, then cached).
# The host's pip settings that a build needs here are passed through: a local wheel
# folder (PIP_FIND_LINKS, e.g. the CPU PyTorch wheel) and the CA bundle pip uses, both
# mounted read-only (podman); with them the PyTorch index is not asked.
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(python3 -c "exec(open('sdk/kfp_interop/_version.py').read()); print(__version__)")"
repo="$(python3 -c "exec(open('sdk/kfp_interop/constants.py').read()); print(IMAGE_REPOSITORY)")"
serving_repo="$(python3 -c "exec(open('sdk/kfp_interop/constants.py').read()); print(SERVING_IMAGE_REPOSITORY)")"
target=all image="$repo:$version" serving_image="$serving_repo:$version"
base="" engine="${KFP_INTEROP_ENGINE:-}" extras="" push=0
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --serving-image) serving_image="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --engine) engine="$2"; shift 2 ;;
    --extras) extras="$2"; shift 2 ;;
    --push) push=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$target" in full|serving|all) ;; *) echo "image.sh: --target full, serving or all, not $target" >&2; exit 2 ;; esac

if [ -z "$engine" ]; then
  # Docker's engine when one answers; podman when the engine behind `docker` is podman's
  # socket (the same image store, and podman's build takes read-only mounts)
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
    if docker version --format '{{range .Server.Components}}{{.Name}} {{end}}' 2>/dev/null \
        | grep -q Podman && command -v podman >/dev/null 2>&1; then engine=podman; fi
  elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
    engine=podman
  fi
fi
if [ -z "$engine" ]; then
  echo "image.sh: no container engine answers (docker info / podman info failed)." >&2
  echo "  Install Docker or podman; on Debian/Ubuntu as root: eval \"\$(bash scripts/containers.sh)\"" >&2
  exit 1
fi

make_base() {  # a Debian bookworm base (Python 3.11) from debootstrap, cached as an image
  local ref=localhost/kfp-interop-base:bookworm
  if "$engine" image inspect "$ref" >/dev/null 2>&1; then echo "$ref"; return; fi
  command -v debootstrap >/dev/null || { echo "image.sh: cannot pull python:3.11-slim and debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
  local dir; dir="$(mktemp -d /var/tmp/kfp-interop-base.XXXXXX)"
  echo "image.sh: making $ref with debootstrap (a few minutes, once)" >&2
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,libgomp1 \
    bookworm "$dir" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | "$engine" import - "$ref" >&2
  rm -rf "$dir"
  echo "$ref"
}

if [ -z "$base" ]; then
  base=python:3.11-slim
  if ! "$engine" image inspect "$base" >/dev/null 2>&1 && \
     ! "$engine" pull -q "$base" >/dev/null 2>&1; then
    echo "image.sh: $base cannot be pulled; using a debootstrap base" >&2
    base="$(make_base)"
  fi
fi

args=(--build-arg "BASE_IMAGE=$base")
[ -n "$extras" ] && args+=(--build-arg "EXTRAS=$extras")
# this machine's pip settings, passed through (read-only mounts are podman's; Docker's
# builder has none, and a machine with Docker reaches the public indexes anyway)
pip_cfg() { python3 -m pip config list 2>/dev/null | sed -n "s/^[^ ]*\.$1='\(.*\)'$/\1/p" | head -1; }
links="${PIP_FIND_LINKS:-$(pip_cfg find-links)}"
cert="${PIP_CERT:-$(pip_cfg cert)}"
if [ "$engine" = podman ]; then
  if [ -n "$links" ] && [ -d "$links" ]; then
    args+=(-v "$links:$links:ro" --build-arg "PIP_FIND_LINKS=$links" --build-arg "PIP_EXTRA_INDEX_URL=")
  fi
  if [ -n "$cert" ] && [ -f "$cert" ]; then
    args+=(-v "$cert:/etc/kfp-interop-build-ca.crt:ro" --build-arg PIP_CERT=/etc/kfp-interop-build-ca.crt)
  fi
  args+=(--network host)
fi

build() {  # build TARGET REF
  local start=$SECONDS
  echo "image.sh: building $2 (target $1, base $base, $engine)" >&2
  "$engine" build "${args[@]}" --target "$1" -t "$2" . >&2
  local v; v="$("$engine" run --rm "$2" kfp-interop --version)"
  [ "$v" = "kfp-interop $version" ] || { echo "image.sh: $2 says '$v', expected 'kfp-interop $version'" >&2; exit 1; }
  local size; size="$("$engine" image inspect "$2" --format '{{.Size}}')"
  echo "image.sh: $2 built in $((SECONDS - start)) s, $((size / 1000000)) MB" >&2
  [ "$push" = 1 ] && "$engine" push "$2" >&2
  echo "$2"
}

[ "$target" != serving ] && build full "$image"
[ "$target" != full ] && build serving "$serving_image"
exit 0
