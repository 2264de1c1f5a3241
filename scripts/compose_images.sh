#!/usr/bin/env bash
# Everything `docker compose up` needs on a machine with no registry: a running Docker engine (installed and
# started if needed), local base-image stand-ins (unless PYTHON_IMAGE etc. name other images), the wheelhouse,
# and the project's images built offline with WEIGHTS=random:0. Each step is cached; the build reuses Docker's
# layer cache. Exit 3 (reason on stderr) when no Docker engine can run here.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-resnet-compose-test}"
export PYTHON_IMAGE="${PYTHON_IMAGE:-local/python:3.11}" REDIS_IMAGE="${REDIS_IMAGE:-local/redis:7}"
export NGINX_IMAGE="${NGINX_IMAGE:-local/nginx:1}" WEIGHTS="${COMPOSE_WEIGHTS:-random:0}" INT8="${COMPOSE_INT8:-0}"
step() { local t0=$SECONDS; "$@"; log "$(basename "$1"): $((SECONDS - t0)) s"; }
step "$ROOT/scripts/docker_engine.sh"
case "$PYTHON_IMAGE $REDIS_IMAGE $NGINX_IMAGE" in *local/*) step "$ROOT/scripts/base_images.sh" ;; esac
step "$ROOT/scripts/wheelhouse.sh"
compose=(docker-compose); docker compose version >/dev/null 2>&1 && compose=(docker compose)
log "building the images offline with ${compose[*]} (PYTHON_IMAGE=$PYTHON_IMAGE, WEIGHTS=$WEIGHTS, INT8=$INT8)"
t0=$SECONDS
SECRET_KEY=build-only REDIS_PASSWORD=build-only "${compose[@]}" -f docker-compose.yml build -q
# The Kubernetes API pod's nginx sidecar (tests/containers/test_pod_spec.py runs it): the same templates, baked in.
docker build -q -f deploy/k8s/nginx-sidecar/Dockerfile --build-arg NGINX_IMAGE="$NGINX_IMAGE" \
  -t "$COMPOSE_PROJECT_NAME-nginx-sidecar" . >/dev/null
log "images built in $((SECONDS - t0)) s: $(docker images --format '{{.Repository}} {{.Size}}' \
  | grep "^$COMPOSE_PROJECT_NAME" | paste -sd, -)"
