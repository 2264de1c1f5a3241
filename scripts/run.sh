#!/usr/bin/env bash
# Runs the whole service in the foreground: Redis (unless one already answers on REDIS_PORT), the model
# worker processes and gunicorn. Ctrl-C or SIGTERM stops everything this script started.
set -euo pipefail
source "$(dirname "$0")/common.sh"
PORT="${PORT:-5000}"
REDIS_PORT="${REDIS_PORT:-6379}"
RUN_DIR="$ROOT/.run"
mkdir -p "$RUN_DIR/redis" "$RUN_DIR/prometheus"
export REDIS_HOST="${REDIS_HOST:-127.0.0.1}" REDIS_PORT PORT
export HOST="${HOST:-127.0.0.1}"   # gunicorn's bind address: loopback unless asked otherwise
[ -n "${WORKERS:-}" ] && export WORKERS
[ -n "${THREADS:-}" ] && export THREADS
if [ -z "${SECRET_KEY:-}" ]; then   # one random key per checkout, kept out of git
  [ -s "$RUN_DIR/secret_key" ] || "$VENV/bin/python" -c "import secrets; print(secrets.token_hex(32))" > "$RUN_DIR/secret_key"
  SECRET_KEY="$(cat "$RUN_DIR/secret_key")"
fi
export SECRET_KEY
export PROMETHEUS_MULTIPROC_DIR="$RUN_DIR/prometheus"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db

pids=()        # worker supervisor and gunicorn
redis_pid=""   # stopped last, so workers can still remove their heartbeats
stop() {
  trap - INT TERM EXIT
  log "stopping"
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  [ ${#pids[@]} -gt 0 ] && wait "${pids[@]}" 2>/dev/null || true
  [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
}
trap stop INT TERM EXIT

if redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ${REDIS_PASSWORD:+-a "$REDIS_PASSWORD"} ping >/dev/null 2>&1; then
  log "using the Redis already answering on $REDIS_HOST:$REDIS_PORT"
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" --save "" --appendonly no \
    ${REDIS_PASSWORD:+--requirepass "$REDIS_PASSWORD"} --loglevel warning &
  redis_pid=$!
fi
(cd "$ROOT/model" && exec "$VENV/bin/python" ml_service.py) &
pids+=($!)
(cd "$ROOT/api" && exec "$VENV/bin/gunicorn" -c gunicorn.conf.py app:app) &
pids+=($!)
log "serving on http://127.0.0.1:$PORT (Ctrl-C stops)"
wait -n "${pids[@]}" ${redis_pid:+"$redis_pid"} || true   # whichever part stops first stops the rest
