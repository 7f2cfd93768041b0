#!/bin/sh
# Writes pgbouncer.ini and its auth file from the environment, then runs pgbouncer.
# The image (docker-compose.scale.yml) and the scale-out tests (tests/topology.py) use it.
#
#   DB_HOST, DB_PORT (5432), DB_NAME ("*": any database, named by the client),
#   DB_USER, DB_PASSWORD            how PgBouncer reaches PostgreSQL, and who may connect
#   DB_STATEMENT_TIMEOUT_MS (5000)  statement_timeout and lock_timeout of every server
#                                   connection, idle_in_transaction_session_timeout twice
#                                   that: what the app passes as startup options without
#                                   PgBouncer, which PgBouncer cannot forward
#   PGBOUNCER_LISTEN_ADDR (*), PGBOUNCER_PORT (6432), PGBOUNCER_AUTH_TYPE (scram-sha-256),
#   PGBOUNCER_POOL_SIZE (20), PGBOUNCER_MAX_CLIENT_CONN (500), PGBOUNCER_DIR (/tmp/pgbouncer)
set -eu
: "${DB_HOST:?DB_HOST is required}" "${DB_USER:?DB_USER is required}"
dir="${PGBOUNCER_DIR:-/tmp/pgbouncer}"
timeout_ms="${DB_STATEMENT_TIMEOUT_MS:-5000}"
mkdir -p "$dir"
umask 077
db="${DB_NAME:-*}"
target="host=${DB_HOST} port=${DB_PORT:-5432}"
if [ "$db" != "*" ]; then target="$target dbname=$db"; fi
connect_query="SET statement_timeout = ${timeout_ms}; SET lock_timeout = ${timeout_ms}; SET idle_in_transaction_session_timeout = $((timeout_ms * 2))"
printf '"%s" "%s"\n' "$DB_USER" "${DB_PASSWORD:-}" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
$db = $target user=${DB_USER} connect_query='${connect_query}'

[pgbouncer]
listen_addr = ${PGBOUNCER_LISTEN_ADDR:-*}
listen_port = ${PGBOUNCER_PORT:-6432}
unix_socket_dir =
auth_type = ${PGBOUNCER_AUTH_TYPE:-scram-sha-256}
auth_file = $dir/userlist.txt
; Each transaction takes any server connection: nothing may live in a session (the
; app's DB_PGBOUNCER=1 settings); the pool is per database and user.
pool_mode = transaction
default_pool_size = ${PGBOUNCER_POOL_SIZE:-20}
max_client_conn = ${PGBOUNCER_MAX_CLIENT_CONN:-500}
; A client waits at most this long for a server connection, then gets an error (503).
query_wait_timeout = 10
server_connect_timeout = 3
server_login_retry = 1
ignore_startup_parameters = extra_float_digits
logfile =
pidfile =
admin_users =
log_connections = 0
log_disconnections = 0
INI
exec pgbouncer "$dir/pgbouncer.ini"
