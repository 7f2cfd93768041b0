#!/usr/bin/env bash
# make test-deploy: the Docker image and the compose files, run under a Docker Engine.
#
# Installs Debian's docker.io, docker-compose and debootstrap when missing (as root), starts
# dockerd when none answers (without touching the host's network: no iptables, no default
# bridge), builds stand-in base images where no registry answers (scripts/docker_standins.sh;
# kept between runs), builds the project's images from this working tree once, then runs
# deploy/tests (docker-compose.yml, then docker-compose.scale.yml) against them.
# Where no engine can start it says so, and fails when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
PYTHON="${PYTHON:-.venv/bin/python}"

no_engine() {
  echo "test-deploy: NO DOCKER ENGINE: $*" >&2
  if [ "${CI:-}" = "true" ]; then
    echo "test-deploy: FAILED (CI=true: the image and compose files must be tested here)" >&2
    exit 1
  fi
  echo "test-deploy: the image and compose files were NOT tested on this machine" >&2
  exit 0
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || no_engine "missing ${missing[*]} and not root to install them"
  echo "test-deploy: installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || no_engine "apt-get install ${missing[*]} failed"
fi

if ! docker info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || no_engine "no daemon answers and not root to start one"
  echo "test-deploy: starting dockerd (--iptables=false --bridge=none, log /var/log/ciris-dockerd.log)"
  nohup setsid dockerd --iptables=false --bridge=none >/var/log/ciris-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 30); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || no_engine "dockerd did not start: $(tail -3 /var/log/ciris-dockerd.log)"
fi

scripts/docker_standins.sh
t_images=$(date +%s)
# The images the compose files name, from this working tree (the build needs the host's
# network: dockerd runs without a default bridge).
echo "test-deploy: building ciris-billing and ciris-billing-pgbouncer"
docker build --quiet --network host -t ciris-billing . >/dev/null
docker build --quiet --network host -t ciris-billing-pgbouncer deploy/pgbouncer >/dev/null
t_built=$(date +%s)

status=0
"$PYTHON" -m pytest -c deploy/pytest.ini --rootdir . deploy/tests -q -s "$@" || status=$?
now=$(date +%s)
echo "test-deploy: engine and base images $((t_images - started)) s, build $((t_built - t_images)) s, compose tests $((now - t_built)) s, total $((now - started)) s"
exit $status
