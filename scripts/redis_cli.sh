#!/usr/bin/env bash
# redis-cli against `make run`'s Redis, authenticated with its password (REDISCLI_AUTH: never on the command line).
#   scripts/redis_cli.sh [redis-cli arguments...]      e.g. scripts/redis_cli.sh info memory
set -euo pipefail
source "$(dirname "$0")/common.sh"
RUN_DIR="${RUN_DIR:-$ROOT/.run}"
if [ -z "${REDIS_PASSWORD:-}" ]; then
  [ -r "$RUN_DIR/redis.password" ] || { log "no $RUN_DIR/redis.password: has make run started once?"; exit 1; }
  REDIS_PASSWORD="$(cat "$RUN_DIR/redis.password")"
fi
REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}" "$@"
