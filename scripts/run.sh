#!/usr/bin/env bash
# Runs the whole service in the foreground under supervisord: Redis (unless one already answers on REDIS_PORT),
# the model service, gunicorn on a unix socket and nginx on HOST:PORT in front of it. Any one of them that dies
# is restarted; Ctrl-C or SIGTERM stops them all. Configs are rendered into RUN_DIR from the services' settings.
set -euo pipefail
source "$(dirname "$0")/common.sh"
export RUN_DIR="${RUN_DIR:-$ROOT/.run}"
export PORT="${PORT:-5000}" HOST="${HOST:-127.0.0.1}"   # nginx's public address: loopback unless asked otherwise
export REDIS_HOST="${REDIS_HOST:-127.0.0.1}" REDIS_PORT="${REDIS_PORT:-6379}"
[ -n "${WORKERS:-}" ] && export WORKERS
[ -n "${THREADS:-}" ] && export THREADS
export PROMETHEUS_MULTIPROC_DIR="$RUN_DIR/prometheus"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
# Private: it holds the Redis password and the unix sockets behind nginx's public server (gunicorn's and the
# admission server's), which other local users must not reach past nginx's limits and its own headers.
chmod 700 "$RUN_DIR"
# Redis password: REDIS_PASSWORD if set, else the one generated into the run folder on first start (mode 0600).
# It reaches every program through the environment supervisord passes on, never a command line.
password_file="$RUN_DIR/redis.password"
if [ -z "${REDIS_PASSWORD:-}" ]; then
  if [ ! -s "$password_file" ]; then
    (umask 077; "$VENV/bin/python" -c "import secrets; print(secrets.token_hex(24))" >"$password_file.tmp")
    mv "$password_file.tmp" "$password_file"
  fi
  chmod 600 "$password_file"
  REDIS_PASSWORD="$(cat "$password_file")"
fi
export REDIS_PASSWORD
# A Redis already answering on REDIS_PORT is used only if it asks for this password; an unprotected one (or one
# with another password) is refused: anyone on the host could read uploads and forge cached answers.
redis_reply() { REDISCLI_AUTH="${1:-}" redis-cli --no-auth-warning -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>&1 || true; }
anonymous="$(env -u REDISCLI_AUTH redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>&1 || true)"
if [ "$anonymous" = PONG ]; then
  log "a Redis without a password answers on $REDIS_HOST:$REDIS_PORT: protect it (requirepass) or choose another REDIS_PORT"
  exit 1
elif [ "$(redis_reply "$REDIS_PASSWORD")" = PONG ]; then
  log "using the Redis already answering on $REDIS_HOST:$REDIS_PORT"
  export START_REDIS=0
elif [[ "$anonymous" == *NOAUTH* || "$anonymous" == *WRONGPASS* ]]; then
  log "the Redis on $REDIS_HOST:$REDIS_PORT refuses this password (REDIS_PASSWORD or $password_file)"
  exit 1
else
  export START_REDIS=1 REDIS_HOST=127.0.0.1
fi
# Stops before writing anything when a port nginx needs is taken, naming the setting.
PYTHONPATH="$ROOT/api" "$VENV/bin/python" "$ROOT/deploy/render.py" "$RUN_DIR"
set -a; source "$RUN_DIR/admission.env"; set +a   # the API's 503s give the Retry-After nginx gives
log "serving on http://$HOST:$PORT (Ctrl-C stops; make status, make logs; logs in $RUN_DIR/logs)"
# supervisord's first turn (the one that starts the programs) waits up to 1 s for an event: a connection wakes it.
# Started from a subshell, so that supervisord never reaps a child it does not know.
( "$VENV/bin/python" -S "$ROOT/deploy/supervisor/wake.py" "$RUN_DIR/supervisor.sock" >/dev/null 2>&1 & )
exec "$VENV/bin/supervisord" -n -c "$RUN_DIR/supervisord.conf"
