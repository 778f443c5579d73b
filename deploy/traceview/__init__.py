"""The local trace collector and viewer: `python -m deploy.traceview`.

docker-compose runs Jaeger; the local platform (no Docker) runs this instead, with
`make up OBSERVABILITY=1`. It takes OTLP/HTTP on INFRA.otlp_http_port (what every
service's OTLPSpanExporter sends), keeps spans in SQLite under var/traces/, and shows
them on INFRA.trace_viewer_port: a list of recent traces, one waterfall per trace, and
a JSON API for tests and scripts.

- otlp.py: the request body (protobuf or JSON, maybe gzip) -> flat span records
- store.py: SQLite (WAL), one writer at a time, bounded by TRACE_RETENTION_SPANS
- pages.py: the HTML pages
- server.py: both HTTP servers in one process
"""
