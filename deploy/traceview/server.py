"""Both HTTP servers of the trace collector, in one process.

- the collector: `POST /v1/traces` (OTLP/HTTP, protobuf or JSON, maybe gzip)
- the viewer: `/` and `/trace/<id>` (HTML), `/api/traces`, `/api/traces/<id>` and
  `/api/services` (JSON), `/healthz`
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from deploy.traceview import otlp, pages
from deploy.traceview.store import TraceStore

logger = logging.getLogger("traceview")

TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
MAX_LIMIT = 1000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the exporters reuse their connection
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per export would drown the log; errors are logged where they happen

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send_html(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")


class BodyTooLarge(otlp.BadRequest):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store: TraceStore


class CollectorHandler(_Handler):
    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/v1/traces":
            self._discard_body()
            self._send_json(HTTPStatus.NOT_FOUND, {"error": "only /v1/traces is collected"})
            return
        try:
            body = self._read_body()
        except otlp.BadRequest as exc:
            # The rest of the body is still on the wire: answer and hang up.
            self.close_connection = True
            too_large = isinstance(exc, BodyTooLarge)
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if too_large else HTTPStatus.BAD_REQUEST
            self._send_json(status, {"error": str(exc)})
            return
        content_type = self.headers.get("Content-Type", "")
        try:
            spans = otlp.decode(body, content_type, self.headers.get("Content-Encoding", ""))
        except otlp.BadRequest as exc:
            logger.warning("rejected an export from %s: %s", self.client_address[0], exc)
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        except ValueError as exc:
            self._send_json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": str(exc)})
            return
        try:
            self.server.store.add(spans)
        except sqlite3.Error as exc:
            # 503 tells the exporter to retry the batch later (OTLP/HTTP spec).
            logger.error("could not store %d spans: %s", len(spans), exc)
            self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
            return
        answer, answer_type = otlp.response_body(content_type)
        self._send(HTTPStatus.OK, answer, answer_type)

    def do_GET(self) -> None:
        self._send(HTTPStatus.OK, b"OTLP/HTTP trace collector: POST /v1/traces\n", "text/plain")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            raise otlp.BadRequest("bad Content-Length") from exc
        if length > otlp.MAX_BODY_BYTES:
            raise BodyTooLarge(f"body larger than {otlp.MAX_BODY_BYTES} bytes")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                chunk = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            except ValueError as exc:
                raise otlp.BadRequest("bad chunked encoding") from exc
            if chunk == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            size += chunk
            if size > otlp.MAX_BODY_BYTES:
                raise BodyTooLarge(f"body larger than {otlp.MAX_BODY_BYTES} bytes")
            parts.append(self.rfile.read(chunk))
            self.rfile.readline()

    def _discard_body(self) -> None:
        try:
            self._read_body()
        except otlp.BadRequest:
            self.close_connection = True


class ViewerHandler(_Handler):
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        store = self.server.store
        path = url.path.rstrip("/") or "/"
        try:
            limit = min(max(int(query.get("limit") or 50), 1), MAX_LIMIT)
            min_ms = float(query.get("min_ms") or 0)
            attribute = _attribute(query.get("attr", ""))
        except ValueError as exc:
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": f"bad query: {exc}"})
            return
        service = query.get("service", "")

        def matching() -> list[dict[str, Any]]:
            return store.traces(service=service, min_ms=min_ms, attribute=attribute, limit=limit)

        if path == "/":
            html = pages.trace_list(
                matching(),
                store.services(),
                service=service,
                min_ms=query.get("min_ms", ""),
                attribute=query.get("attr", ""),
                limit=limit,
            )
            self._send_html(HTTPStatus.OK, html)
        elif path == "/api/traces":
            self._send_json(HTTPStatus.OK, {"traces": matching()})
        elif path == "/api/services":
            self._send_json(HTTPStatus.OK, {"services": store.services()})
        elif path == "/healthz":
            self._send_json(HTTPStatus.OK, {"status": "ok", "spans": store.span_count()})
        elif path.startswith(("/trace/", "/api/traces/")):
            self._one_trace(path)
        else:
            self._send_html(HTTPStatus.NOT_FOUND, pages.not_found(url.path))

    def _one_trace(self, path: str) -> None:
        as_json = path.startswith("/api/")
        trace_id = path.rsplit("/", 1)[1]
        trace = self.server.store.trace(trace_id.lower()) if TRACE_ID.match(trace_id) else None
        if as_json:
            if trace is None:
                self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no trace {trace_id}"})
            else:
                self._send_json(HTTPStatus.OK, trace)
        elif trace is None:
            self._send_html(HTTPStatus.NOT_FOUND, pages.not_found(f"no trace {trace_id}"))
        else:
            self._send_html(HTTPStatus.OK, pages.trace_detail(trace))


def _attribute(text: str) -> tuple[str, str] | None:
    """`key=value` -> (key, value); the value may hold '='."""
    if not text:
        return None
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError("attr must be key=value")
    return key, value


class TraceServers:
    """The collector and the viewer on their ports, each served from its own thread."""

    def __init__(
        self,
        store: TraceStore,
        host: str,
        otlp_port: int,
        viewer_port: int,
        *,
        poll_interval: float = 0.5,  # how soon close() is noticed
    ) -> None:
        self.store = store
        self.collector = _Server((host, otlp_port), CollectorHandler)
        self.viewer = _Server((host, viewer_port), ViewerHandler)
        for server in (self.collector, self.viewer):
            server.store = store
        self._threads = [
            threading.Thread(target=s.serve_forever, args=(poll_interval,), name=name, daemon=True)
            for name, s in (("otlp", self.collector), ("viewer", self.viewer))
        ]

    @property
    def otlp_port(self) -> int:
        return self.collector.server_address[1]

    @property
    def viewer_port(self) -> int:
        return self.viewer.server_address[1]

    def start(self) -> TraceServers:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        for server in (self.collector, self.viewer):
            server.shutdown()
            server.server_close()
        self.store.close()
