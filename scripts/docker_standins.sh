#!/usr/bin/env bash
# Stand-ins for the public base images the Dockerfile and compose files name, built from
# Debian packages, for machines where no image registry answers (CI here).
#
#   scripts/docker_standins.sh            # build each missing image; present ones are kept
#   DOCKER_PULL=1 scripts/docker_standins.sh   # try `docker pull` first (a registry answers)
#
# Elsewhere, `docker compose up` pulls the real images and this script is not needed: the
# Dockerfile and compose files are the same everywhere. The stand-ins behave like the
# official images where the project relies on them (the same names, paths, variables,
# entrypoint conventions), nothing more:
#   python:3.11-slim-bookworm  Debian's python3 (3.11) in a venv at /usr/local/py, first on PATH
#   postgres:15                Debian's postgresql-15; initdb from POSTGRES_USER/PASSWORD/DB
#   redis:7                    Debian's redis-server (7.0), protected mode off
#   haproxy:2.6                Debian's haproxy (2.6), config at /usr/local/etc/haproxy/haproxy.cfg
#   debian:bookworm-slim       the debootstrap minbase system itself
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${STANDIN_CACHE:-/var/cache/ciris-standins}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base="local/debian:bookworm"

have() { docker image inspect "$1" >/dev/null 2>&1; }

pulled() {
  [ "${DOCKER_PULL:-0}" = "1" ] && timeout 120 docker pull -q "$1" >/dev/null 2>&1
}

ensure_base() {
  have "$base" && return
  if [ ! -x "$cache/rootfs/bin/sh" ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
    echo "stand-ins: debootstrap bookworm (about a minute)"
    rm -rf "$cache/rootfs.tmp"
    mkdir -p "$cache"
    debootstrap --variant=minbase bookworm "$cache/rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
      || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
    rm -rf "$cache/rootfs.tmp/var/cache/apt/archives/"*.deb "$cache/rootfs.tmp/var/lib/apt/lists/"*
    mv "$cache/rootfs.tmp" "$cache/rootfs"
  fi
  tar -C "$cache/rootfs" -c . | docker import - "$base" >/dev/null
}

# build NAME: a Dockerfile on stdin, the context is a directory with the host's CA bundle
# (pip in the python stand-in needs it where TLS is intercepted) and the entrypoints.
build() {
  local name="$1" context
  context="$(mktemp -d)"
  cp "$here"/standins/*.sh "$context/"
  cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca.crt"
  cat >"$context/Dockerfile"
  echo "stand-ins: building $name"
  docker build --quiet --network host -t "$name" "$context" >/dev/null
  rm -rf "$context"
}

standin() {
  local name="$1"
  if have "$name"; then return; fi
  if pulled "$name"; then echo "stand-ins: pulled $name"; return; fi
  ensure_base
  case "$name" in
    debian:bookworm-slim)
      docker tag "$base" "$name" ;;
    python:3.11-slim-bookworm)
      build "$name" <<'DOCKERFILE'
FROM local/debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* && python3 -m venv /usr/local/py
# After apt-get (ca-certificates rewrites the system bundle): the host's, for pip only.
COPY host-ca.crt /usr/local/share/standin/host-ca.crt
ENV PATH=/usr/local/py/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/usr/local/share/standin/host-ca.crt
CMD ["python3"]
DOCKERFILE
      ;;
    postgres:15)
      build "$name" <<'DOCKERFILE'
FROM local/debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
    && apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
DOCKERFILE
      ;;
    redis:7)
      build "$name" <<'DOCKERFILE'
FROM local/debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
DOCKERFILE
      ;;
    haproxy:2.6)
      build "$name" <<'DOCKERFILE'
FROM local/debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
DOCKERFILE
      ;;
    *)
      echo "stand-ins: no recipe for $name" >&2
      exit 1 ;;
  esac
}

for image in "${@:-python:3.11-slim-bookworm postgres:15 redis:7 haproxy:2.6 debian:bookworm-slim}"; do
  for name in $image; do standin "$name"; done
done
