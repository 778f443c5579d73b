# The local platform and the project's checks. `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
SERVICES := account product order payment purchase orchestrator

.DEFAULT_GOAL := help
.PHONY: help bootstrap up restart down clean status logs test lint format staff lock proto

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

bootstrap: ## install what is missing (OS packages, .venv, Kafka jars)
	@deploy/bin/bootstrap

up: bootstrap ## install what is missing, start everything, wait until healthy
	@$(PY) -m deploy.local up

restart: ## after a code change: migrate, restart the service processes, wait until healthy
	@$(PY) -m deploy.local restart

down: ## stop every process, keep the data
	@if [ -x $(PY) ]; then $(PY) -m deploy.local down; fi

clean: ## stop everything and remove the data (keeps downloaded jars)
	@if [ -x $(PY) ]; then $(PY) -m deploy.local clean; else rm -rf var; fi

status: ## what runs, where, and whether it is healthy
	@$(PY) -m deploy.local status

logs: ## follow every log
	@$(PY) -m deploy.local logs

test: up ## start what the tests need (as make up does) and run the whole suite
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

proto: ## regenerate the gRPC stubs from proto/src/saga_proto/*.proto
	@proto/generate.sh

lock: ## re-resolve requirements.in into requirements.lock
	@rm -rf /tmp/saga-lock && python3 -m venv /tmp/saga-lock
	@/tmp/saga-lock/bin/pip install -q -r requirements.in
	@/tmp/saga-lock/bin/pip freeze > requirements.lock
