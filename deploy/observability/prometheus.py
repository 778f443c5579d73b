"""Prometheus' configuration: one scrape job per service, and Traefik.

Both deployments render it here: the local platform with every service's gunicorn at
127.0.0.1:<http_port> (deploy/local), docker-compose with each `<service>-http`
container (deploy/docker/generate.py writes deploy/observability/prometheus.docker.yml).
A service's /metrics on its HTTP port aggregates all of its processes, so one target
per service is enough; the job name is the service, which the dashboard filters on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

METRICS_PATH = "/metrics"


def render_config(jobs: Mapping[str, Sequence[str]], *, scrape_interval: str = "5s") -> str:
    """Prometheus YAML scraping each job's targets (host:port) every `scrape_interval`."""
    if not jobs:
        raise ValueError("no job to scrape")
    scrape_configs = []
    for job, targets in jobs.items():
        if not targets:
            raise ValueError(f"job {job} has no target")
        scrape_configs.append(
            {
                "job_name": job,
                "metrics_path": METRICS_PATH,
                "static_configs": [{"targets": list(targets), "labels": {"service": job}}],
            }
        )
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": scrape_configs,
    }
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
