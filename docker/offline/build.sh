#!/usr/bin/env bash
# Build every image docker/compose.yaml runs, on a host that reaches no container registry (only Debian's
# package mirror and PyPI), then tag them with the names the compose file uses:
#
#   scaleladder/debian-rootfs:bookworm   Debian bookworm minbase + python3, python3-venv, ca-certificates
#                                        (debootstrap into a directory, then `docker import`)
#   scaleladder/base:py311-bookworm      + the Ray image's user layout: user `ray`, a venv on PATH
#   scaleladder/postgres:15-bookworm     Debian's postgresql-15 with the official image's env contract
#   scaleladder/ray:$VERSION-cpu         docker/Dockerfile --target ray-node,      FROM the local base
#   scaleladder/control-plane:$VERSION   docker/Dockerfile --target control-plane, FROM the local base
#
# Usage (root, a running Docker engine): docker/offline/build.sh
# then:  cd docker && POSTGRES_IMAGE=scaleladder/postgres:15-bookworm docker compose up -d   (no --build)
#
# Environment: SCALELADDER_VERSION (0.1.0); DEBIAN_MIRROR (http://deb.debian.org/debian); HOST_CA_BUNDLE
# (/etc/ssl/certs/ca-certificates.crt: copied into the root, so pip inside the build trusts what the host
# trusts); TORCH_WHEEL (default: torch-$TORCH_VERSION+cpu for cp311 from pip's find-links on this host;
# without one pip downloads torch from PyPI's CPU-less default, so set it); REBUILD_ROOTFS=1 to redo the
# debootstrap even when the rootfs image exists (it is reused otherwise: only Debian security updates
# change it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
version="${SCALELADDER_VERSION:-0.1.0}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
torch_version="${TORCH_VERSION:-2.13.0}"
rootfs_image="scaleladder/debian-rootfs:${suite}"
base_image="scaleladder/base:py311-${suite}"
postgres_image="scaleladder/postgres:15-${suite}"
ray_image="scaleladder/ray:${version}-cpu"
control_plane_image="scaleladder/control-plane:${version}"

log() { printf '\n== %s\n' "$*" >&2; }

docker info >/dev/null 2>&1 || { echo "no Docker engine answers (docker info failed)" >&2; exit 2; }
# Without the buildx plugin a current docker CLI cannot use BuildKit; the Dockerfiles need nothing of it.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

# 1. The Debian root, from Debian's packages only.
if [ "${REBUILD_ROOTFS:-0}" = 1 ] || ! docker image inspect "$rootfs_image" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 2; }
  work="$(mktemp -d /var/tmp/scaleladder-rootfs.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
  log "debootstrap $suite from $mirror into $work (about 2 minutes)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
  [ -f "$ca_bundle" ] && cp "$ca_bundle" "$work/root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
  log "docker import -> $rootfs_image"
  tar --numeric-owner -C "$work/root" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' - "$rootfs_image" >/dev/null
  rm -rf "$work"; trap - EXIT
else
  log "reusing $rootfs_image (REBUILD_ROOTFS=1 redoes it)"
fi

# 2. The Python base with the Ray image's user layout, and PostgreSQL.
log "build $base_image"
docker build -q -f "$here/base.Dockerfile" --build-arg ROOTFS_IMAGE="$rootfs_image" -t "$base_image" "$here" >/dev/null
log "build $postgres_image"
docker build -q -f "$here/postgres.Dockerfile" --build-arg ROOTFS_IMAGE="$rootfs_image" -t "$postgres_image" "$here" >/dev/null

# 3. The CPU torch wheel into the build context (docker/wheels/, ignored by git).
wheels="$repo/docker/wheels"
if [ -z "${TORCH_WHEEL:-}" ]; then
  dirs="${PIP_FIND_LINKS:-} $(python3 -m pip config get global.find-links 2>/dev/null || true) /opt/wheels"
  for dir in $dirs; do
    dir="${dir#file://}"
    for wheel in "$dir"/torch-"${torch_version}"+cpu-cp311-cp311-*linux*x86_64.whl; do
      [ -f "$wheel" ] && { TORCH_WHEEL="$wheel"; break 2; }
    done
  done
fi
if [ -n "${TORCH_WHEEL:-}" ]; then
  name="$(basename "$TORCH_WHEEL")"
  [ -f "$wheels/$name" ] || cp "$TORCH_WHEEL" "$wheels/$name"
  log "torch wheel: $wheels/$name"
else
  echo "warning: no torch-${torch_version}+cpu cp311 wheel found (set TORCH_WHEEL); pip will look on PyPI" >&2
fi

# 4. The project's images, from the repository's own Dockerfile, on the local base. TORCH_INDEX_URL is
# emptied: the torch wheel comes from docker/wheels, and PyTorch's index is not reachable here. Both targets
# are built from one snapshot of the working tree (the .dockerignore patterns left out), so files edited
# while the build runs cannot make the control plane and the Ray nodes carry different code.
context="$(mktemp -d /var/tmp/scaleladder-context.XXXXXX)"
trap 'rm -rf "$context"' EXIT
tar -C "$repo" --exclude=./.git --exclude=./.venv --exclude=__pycache__ --exclude='*.pyc' \
  --exclude='*.egg-info' --exclude=.pytest_cache --exclude=./bench/results --exclude=./build \
  --exclude=./dist -cf - . | tar -C "$context" -xf -
for target in ray-node control-plane; do
  tag="$ray_image"; [ "$target" = control-plane ] && tag="$control_plane_image"
  log "build $tag (docker/Dockerfile --target $target, BASE_IMAGE=$base_image)"
  docker build -f "$context/docker/Dockerfile" --target "$target" \
    --build-arg BASE_IMAGE="$base_image" --build-arg TORCH_INDEX_URL= \
    -t "$tag" "$context"
done
rm -rf "$context"; trap - EXIT

# Layers replaced by this build (dangling images) take disk for nothing.
docker image prune -f >/dev/null
log "images:"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep '^scaleladder/' >&2
