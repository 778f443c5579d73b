# The local platform and the project's checks. `make help` lists the targets.
# OBSERVABILITY=1 (make up/restart): also run Zipkin and Prometheus, and send every
# service's spans to Zipkin. make hands a variable given on
# its command line to the recipes' environment, where deploy.local reads it.
SHELL := /bin/bash
PY := .venv/bin/python
SERVICES := account product order payment purchase orchestrator

.DEFAULT_GOAL := help
.PHONY: help bootstrap up restart down clean status logs test lint format staff superuser lock proto

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## install what is missing (OS packages, .venv, Kafka jars)
	@deploy/bin/bootstrap

up: bootstrap ## install what is missing, start everything, wait until healthy (OBSERVABILITY=1: traces, Prometheus; REPLICAS=2: two copies of each process)
	@$(PY) -m deploy.local up

restart: ## after a code change: migrate, restart the service processes, wait until healthy (OBSERVABILITY=1 as for up)
	@$(PY) -m deploy.local restart

down: ## stop every process, keep the data
	@if [ -x $(PY) ]; then $(PY) -m deploy.local down; fi

clean: ## stop everything and remove the data (keeps downloaded jars)
	@if [ -x $(PY) ]; then $(PY) -m deploy.local clean; else rm -rf var; fi

status: ## what runs, where, and whether it is healthy
	@$(PY) -m deploy.local status

# P=<process> follows one log (the names are var/log's files: make logs P=nosuch lists them).
logs: ## follow every log (P=<process>: only that one, e.g. P=orchestrator-worker)
ifdef P
	@if [ -f "var/log/$(P).log" ]; then exec tail -n 50 -F "var/log/$(P).log"; fi; \
	echo "no log of a process named '$(P)'; the processes:" >&2; \
	ls var/log/*.log 2>/dev/null | xargs -rn1 basename | sed 's/\.log$$//' | fmt -w 90 >&2; exit 2
else
	@$(PY) -m deploy.local logs
endif

# The trace tests need Zipkin: the platform and the suite run with it (a value
# exported here reaches the prerequisite `up` too, and the tests that run make up).
# One copy of each process: the tests stop and kill processes by name (make chaos
# FAULTS=kill-replicas checks the copies; docs/adr/0023).
test: export OBSERVABILITY = 1
test: export REPLICAS = 1
test: up ## start what the tests need (make up OBSERVABILITY=1) and run the whole suite
	@deploy/bin/run-tests

lint: ## ruff and mypy
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy

format: ## apply ruff's fixes and formatting
	@.venv/bin/ruff check --fix .
	@.venv/bin/ruff format .

staff: ## grant the staff role: make staff EMAIL=you@example.com
	@test -n "$(EMAIL)" || { echo "usage: make staff EMAIL=you@example.com"; exit 2; }
	@$(PY) account_svc/manage.py grant_staff "$(EMAIL)"

superuser: ## grant the staff and superuser roles (every admin's changes and actions): make superuser EMAIL=you@example.com
	@test -n "$(EMAIL)" || { echo "usage: make superuser EMAIL=you@example.com"; exit 2; }
	@$(PY) account_svc/manage.py grant_staff --superuser "$(EMAIL)"

proto: ## regenerate the gRPC stubs from proto/src/saga_proto/*.proto
	@proto/generate.sh

lock: ## re-resolve requirements.in into requirements.lock
	@rm -rf /tmp/saga-lock && python3 -m venv /tmp/saga-lock
	@/tmp/saga-lock/bin/pip install -q -r requirements.in
	@/tmp/saga-lock/bin/pip freeze > requirements.lock

# make bench PURCHASES=1000 CONCURRENCY=1000 PRODUCTS=2 LINES=2 SKEW=0 SCENARIO=seed|reject10|cancel10|steady
# (also CUSTOMERS, QUANTITY, INVENTORY, RATE, DRAIN_TIMEOUT, SEED, PROFILE=auto|<process>,
# ONE_AT_A_TIME=100, and for steady DURATION, STEP_SECONDS, P99_TARGET); python -m bench --help
.PHONY: bench
bench: ## drive purchase sagas through the edge, measure them, check the invariants
	@$(PY) -m bench \
	  $(if $(SCENARIO),--scenario $(SCENARIO)) \
	  $(if $(PURCHASES),--purchases $(PURCHASES)) \
	  $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) \
	  $(if $(PRODUCTS),--products $(PRODUCTS)) \
	  $(if $(LINES),--lines $(LINES)) \
	  $(if $(QUANTITY),--quantity $(QUANTITY)) \
	  $(if $(SKEW),--skew $(SKEW)) \
	  $(if $(CUSTOMERS),--customers $(CUSTOMERS)) \
	  $(if $(INVENTORY),--inventory $(INVENTORY)) \
	  $(if $(RATE),--rate $(RATE)) \
	  $(if $(DURATION),--duration $(DURATION)) \
	  $(if $(STEP_SECONDS),--step-seconds $(STEP_SECONDS)) \
	  $(if $(P99_TARGET),--p99-target $(P99_TARGET)) \
	  $(if $(ONE_AT_A_TIME),--one-at-a-time $(ONE_AT_A_TIME)) \
	  $(if $(DRAIN_TIMEOUT),--drain-timeout $(DRAIN_TIMEOUT)) \
	  $(if $(SEED),--seed $(SEED)) \
	  $(if $(PROFILE),--profile $(PROFILE))

# make chaos FAULTS=payment-down,pg-restart PURCHASES=300 CONCURRENCY=50 INJECT_AFTER=4
# (FAULTS: names or patterns such as kill-*, default all; LIST=1 lists them; also SCENARIO,
# RATE, DRAIN_TIMEOUT, RETRY_SECONDS, STALL_LIMIT, SEED); python -m bench.chaos --help.
# It takes minutes and disturbs the platform on purpose: docs/reliability.md.
.PHONY: chaos
chaos: ## the fault matrix: per fault a bench load, the fault, the drain, the invariants (minutes)
	@$(PY) -m bench.chaos \
	  $(if $(LIST),--list) \
	  $(if $(FAULTS),--faults '$(FAULTS)') \
	  $(if $(PURCHASES),--purchases $(PURCHASES)) \
	  $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) \
	  $(if $(INJECT_AFTER),--inject-after $(INJECT_AFTER)) \
	  $(if $(SCENARIO),--scenario $(SCENARIO)) \
	  $(if $(CUSTOMERS),--customers $(CUSTOMERS)) \
	  $(if $(RATE),--rate $(RATE)) \
	  $(if $(DRAIN_TIMEOUT),--drain-timeout $(DRAIN_TIMEOUT)) \
	  $(if $(RETRY_SECONDS),--retry-seconds $(RETRY_SECONDS)) \
	  $(if $(STALL_LIMIT),--stall-limit $(STALL_LIMIT)) \
	  $(if $(SEED),--seed $(SEED))

# --- Docker: docker-compose.yml (generated by deploy/docker/generate.py), docs/docker.md ---
.PHONY: docker-up docker-down docker-check
# `docker compose` (v2) where the Docker CLI has it, else the standalone docker-compose.
DOCKER_COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
HADOLINT = $(firstword $(wildcard .venv/bin/hadolint) hadolint)

docker-up: ## build the service image, start everything in Docker, wait until healthy
	@$(DOCKER_COMPOSE) up -d --build
	@if [ -x $(PY) ]; then $(PY) -m deploy.docker.wait 300; \
	else echo "started; follow it with: $(DOCKER_COMPOSE) ps"; fi

docker-down: ## stop the Docker deployment, keep its volumes (add -v by hand to drop them)
	@$(DOCKER_COMPOSE) down

docker-check: ## compose config, hadolint and tests/deploy (no Docker engine needed)
	@$(PY) -m deploy.docker.generate --check
	@out=$$($(DOCKER_COMPOSE) -f docker-compose.yml config -q 2>&1); \
	if [ -n "$$out" ]; then echo "$$out"; exit 1; fi  # compose v2 may exit 0 on errors
	@$(HADOLINT) deploy/docker/Dockerfile
	@.venv/bin/pytest tests/deploy -q
