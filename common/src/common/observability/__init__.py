"""Traces (OpenTelemetry) and metrics (Prometheus) of every service.

See docs/observability.md.
"""
