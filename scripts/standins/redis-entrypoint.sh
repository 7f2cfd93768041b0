#!/bin/sh
# Stand-in for the official redis image's entrypoint: redis-server as the redis user,
# protected mode off (other containers connect over the compose network).
set -eu
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "${1:-}" = "redis-server" ]; then
  case " $* " in *" --protected-mode "*) ;; *) set -- "$@" --protected-mode no ;; esac
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
