"""Request body parsing shared by the services: JSON, bounded in size.

DRF's JSONParser reads the request stream directly, which bypasses Django's
DATA_UPLOAD_MAX_MEMORY_SIZE check (that one guards only `request.body`). This
parser enforces the same limit and answers 413 in the one JSON error shape.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers

from common.errors import PayloadTooLarge


def _declared_length(parser_context: Mapping[str, Any] | None) -> int:
    request = (parser_context or {}).get("request")
    meta = getattr(request, "META", {}) if request is not None else {}
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return 0


class JSONParser(parsers.JSONParser):
    """JSON bodies up to settings.DATA_UPLOAD_MAX_MEMORY_SIZE bytes; larger ones answer 413."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            if _declared_length(parser_context) > limit:
                raise PayloadTooLarge()
            # Read at most one byte past the limit, whatever the header said.
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise PayloadTooLarge()
            stream = io.BytesIO(body)
        return super().parse(stream, media_type, parser_context)
