# The table of contents: what a person can do with this repository. Each target calls a short script.
SHELL := /bin/bash
WEIGHTS ?= imagenet
PORT ?= 5000
REDIS_PORT ?= 6379
export WEIGHTS PORT REDIS_PORT WORKERS THREADS BATCH_SIZE BATCH_WAIT_MS MODEL_DIR INT8 MODEL_VARIANT
export LABELS MODEL_REPOSITORY MODEL_NAME MODEL_VERSION MODEL_KEEP_VERSIONS MODEL_POLL_S CALIBRATION INT8_FORCE INT8_MIN_AGREEMENT

.PHONY: setup model run status logs redis-cli test test-unit lint compose-check compose-test bench bench-peers bench-split bench-explain config-search matrix matrix-containers capacity perf report clean help

setup:            ## virtual environments, pinned packages, redis-server and nginx (with its Lua module) when missing
	scripts/install_system.sh
	scripts/make_venvs.sh

model: setup      ## add version N+1 to the model repository (model/repository/resnet50) unless the newest was made from WEIGHTS; serving workers switch to it (LABELS=<class names> INT8=1 CALIBRATION=<folder>)
	scripts/ensure_model.sh

run: model        ## serve the newest model version on http://127.0.0.1:$(PORT) under supervisord: Redis, model service, gunicorn, nginx (WEIGHTS=imagenet|random|<path>)
	scripts/run.sh

status:           ## state of each program of a running `make run`
	scripts/status.sh

logs:             ## tail and follow every program's log of `make run` (.run/logs/)
	scripts/logs.sh

redis-cli:        ## a redis-cli shell on `make run`'s Redis, with its password (REDISCLI_AUTH, never on the command line)
	scripts/redis_cli.sh

test:             ## the whole suite (what CI runs): lint, unit, worker on a real converted model, end-to-end, browser
	scripts/test.sh

test-unit:        ## the fast loop (< 1 min): shared package (common/), API, model and stress-tool suites on the tiny test model; needs `make setup` once
	scripts/test_unit.sh

lint:             ## ruff check + ruff format --check (pyproject.toml)
	scripts/lint.sh

compose-check:    ## validate docker-compose.yml offline
	docker-compose --env-file .env.example -f docker-compose.yml config -q

compose-test: setup  ## build the images offline and run the compose stack with 2 model containers (Docker engine started if needed)
	scripts/compose_test.sh

bench: model      ## model benchmark in one run: Keras baseline vs ONNX Runtime and OpenVINO, workers x threads x batch (~8 min)
	.venv/bin/python -m stress_test.bench_model

bench-peers: model  ## this service (ONNX Runtime, OpenVINO) vs BentoML, Ray Serve, MLServer: same model, cores, batch and load (~14 min; QUICK=1 shorter windows)
	bash scripts/peer_envs.sh
	.venv/bin/python -m stress_test.peers.driver $(if $(QUICK),--quick)

bench-split: model  ## the model service on a core of its own, the HTTP tier and the load on the others: fp32 and INT8 vs raw ONNX Runtime (~7 min)
	.venv/bin/python -m stress_test.split_cores

bench-explain: model  ## what class activation heatmaps cost per image, asked and not asked (~2 min; after bench)
	.venv/bin/python -m stress_test.bench_explain

config-search: model  ## recommend WORKERS / THREADS / BATCH_SIZE / RUNTIME for this machine and MODEL_VARIANT (~2 min)
	.venv/bin/python -m stress_test.config_search --save

matrix: model     ## Locust matrix (configurations using every core) + small / 12 MP workloads (~20 min; after bench); CONTAINERS=1 adds matrix-containers
	.venv/bin/python -m stress_test.run_matrix
	$(if $(filter 1,$(CONTAINERS)),scripts/compose_matrix.sh)

matrix-containers: model  ## the same load against the compose stack with 1 and 2 model containers at cpus: 1 each, raw ONNX Runtime before each (~5 min)
	scripts/compose_matrix.sh

capacity: setup   ## Redis throughput of the full job protocol at the real payload size, many clients (~1 min; after bench)
	.venv/bin/python -m stress_test.bench_queue

perf:             ## perf_analyzer (Triton's) on the Open Inference Protocol of the running `make run` (PORT): concurrency 1..64 (~3 min)
	scripts/perf.sh

report:           ## hardware_report.md and plots from the latest bench + matrix results
	.venv/bin/python -m stress_test.make_report

clean:            ## remove what runs leave behind: .run (logs, test model, wheel cache), uploads, feedback
	rm -rf .run api/uploads api/feedback

help:             ## this list (`make` alone runs setup)
	@awk -F':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
