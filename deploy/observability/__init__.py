"""Prometheus scrape configuration and Grafana dashboards, for the local platform and
docker-compose."""
