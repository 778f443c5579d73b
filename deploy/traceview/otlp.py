"""Decoding an OTLP/HTTP trace export into flat span records.

Both encodings of the OTLP/HTTP spec: binary protobuf (what
opentelemetry-exporter-otlp-proto-http sends) and JSON (ids as hex strings, as the
spec says, not the base64 of protobuf's own JSON mapping). Either may be gzipped.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# A batch of the SDK is at most 512 spans; this bounds a body after gunzip too.
MAX_BODY_BYTES = 64 * 1024 * 1024


class BadRequest(ValueError):
    """The body is not an ExportTraceServiceRequest in the announced encoding."""


@dataclass(frozen=True)
class SpanRecord:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root span
    name: str
    kind: str  # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER, UNSPECIFIED
    service: str
    start_ns: int
    end_ns: int
    status_code: str  # UNSET, OK, ERROR
    status_message: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


def decode(body: bytes, content_type: str, content_encoding: str = "") -> list[SpanRecord]:
    """The spans of one export request; BadRequest when it cannot be read."""
    body = _decompress(body, content_encoding.strip().lower())
    media_type = content_type.split(";")[0].strip().lower()
    request = ExportTraceServiceRequest()
    if media_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError) as exc:
            raise BadRequest(f"not an ExportTraceServiceRequest: {exc}") from exc
    elif media_type == JSON:
        try:
            document = json.loads(body)
            json_format.ParseDict(_hex_ids_to_base64(document), request, ignore_unknown_fields=True)
        except (ValueError, TypeError, AttributeError, json_format.ParseError) as exc:
            raise BadRequest(f"not an OTLP JSON trace export: {exc}") from exc
    else:
        raise ValueError(f"unsupported content type {content_type!r}")
    return list(_records(request))


def response_body(content_type: str) -> tuple[bytes, str]:
    """The success answer, in the encoding of the request."""
    if content_type.split(";")[0].strip().lower() == JSON:
        return b"{}", JSON
    return ExportTraceServiceResponse().SerializeToString(), PROTOBUF


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise BadRequest(f"unsupported content encoding {encoding!r}")
    try:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out = inflater.decompress(body, MAX_BODY_BYTES)
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BadRequest(f"bad gzip body: {exc}") from exc
    if inflater.unconsumed_tail:
        raise BadRequest(f"body larger than {MAX_BODY_BYTES} bytes once unzipped")
    return out


_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes ids in hex; protobuf's JSON parser expects base64 for bytes."""
    if isinstance(node, list):
        return [_hex_ids_to_base64(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _ID_KEYS and isinstance(value, str):
            try:
                out[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError as exc:
                raise BadRequest(f"{key} is not hex: {value!r}") from exc
        else:
            out[key] = _hex_ids_to_base64(value)
    return out


def _records(request: ExportTraceServiceRequest) -> list[SpanRecord]:
    records = []
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise BadRequest(f"span {span.name!r} has no valid trace or span id")
                records.append(_record(span, service, resource, scope_spans.scope.name))
    return records


def _record(span: PbSpan, service: str, resource: dict[str, Any], scope: str) -> SpanRecord:
    return SpanRecord(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=PbSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        service=service,
        start_ns=span.start_time_unix_nano,
        end_ns=max(span.end_time_unix_nano, span.start_time_unix_nano),
        status_code=Status.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
        status_message=span.status.message,
        attributes=attributes_dict(span.attributes),
        events=[
            {
                "name": event.name,
                "time_ns": event.time_unix_nano,
                "attributes": attributes_dict(event.attributes),
            }
            for event in span.events
        ],
        links=[
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": attributes_dict(link.attributes),
            }
            for link in span.links
        ],
        resource=resource,
        scope=scope,
    )


def attributes_dict(pairs: Any) -> dict[str, Any]:
    """OTLP key-value pairs as a JSON-ready dict."""
    return {kv.key: any_value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind is None:
        return None
    return getattr(value, kind)
