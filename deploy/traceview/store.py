"""Spans in SQLite, with one summary row per trace for the list page.

WAL mode: the viewer reads while the collector writes. Writes go through one
connection under a lock (SQLite has one writer anyway); each read opens its own
connection. The span count is bounded: past `retention_spans` the oldest traces go
whole, so a long bench cannot fill the disk.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from deploy.traceview.otlp import SpanRecord

DEFAULT_RETENTION_SPANS = 500_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code TEXT NOT NULL,
    status_message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    links TEXT NOT NULL,
    resource TEXT NOT NULL,
    scope TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_ns);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    error_count INTEGER NOT NULL,
    root_name TEXT NOT NULL,
    root_service TEXT NOT NULL,
    services TEXT NOT NULL  -- ",a,b," so that a LIKE finds one service
);
CREATE INDEX IF NOT EXISTS traces_by_start ON traces (start_ns);
"""

SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, service, start_ns, end_ns,"
    " status_code, status_message, attributes, events, links, resource, scope"
)


class TraceStore:
    def __init__(self, path: Path, retention_spans: int = DEFAULT_RETENTION_SPANS) -> None:
        self.path = path
        self.retention_spans = retention_spans
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._writer = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA synchronous=NORMAL")  # losing the last spans is fine
        self._writer.executescript(SCHEMA)
        self._span_count = self._writer.execute("SELECT count(*) FROM spans").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._writer.close()

    # ------------------------------------------------------------------ writes

    def add(self, spans: Iterable[SpanRecord]) -> int:
        """Store spans (a span sent twice is kept once); answer how many were new."""
        rows = [_row(s) for s in spans]
        if not rows:
            return 0
        with self._lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany(
                    f"INSERT OR IGNORE INTO spans ({SPAN_COLUMNS}) VALUES ({', '.join('?' * 15)})",
                    rows,
                )
                added = db.total_changes - before
                for trace_id in {r[0] for r in rows}:
                    _summarize(db, trace_id)
                self._span_count += added
                if self._span_count > self.retention_spans:
                    self._prune(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return added

    def _prune(self, db: sqlite3.Connection) -> None:
        """Drop the oldest traces until a tenth of the allowance is free again."""
        target = self.retention_spans * 9 // 10
        excess = self._span_count - target
        doomed: list[str] = []
        for trace_id, count in db.execute(
            "SELECT trace_id, span_count FROM traces ORDER BY start_ns"
        ):
            if excess <= 0:
                break
            doomed.append(trace_id)
            excess -= count
        for i in range(0, len(doomed), 500):
            chunk = doomed[i : i + 500]
            marks = ",".join("?" * len(chunk))
            db.execute(f"DELETE FROM spans WHERE trace_id IN ({marks})", chunk)
            db.execute(f"DELETE FROM traces WHERE trace_id IN ({marks})", chunk)
        self._span_count = db.execute("SELECT count(*) FROM spans").fetchone()[0]

    # ------------------------------------------------------------------- reads

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path)) as db:
            db.row_factory = sqlite3.Row
            yield db

    def traces(
        self,
        *,
        service: str = "",
        min_ms: float = 0,
        attribute: tuple[str, str] | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The most recent traces first, each summarised (no spans)."""
        where: list[str] = ["1=1"]
        params: list[Any] = []
        if service:
            where.append("services LIKE ? ESCAPE '\\'")
            params.append(f"%,{_like_escape(service)},%")
        if min_ms > 0:
            where.append("end_ns - start_ns >= ?")
            params.append(int(min_ms * 1_000_000))
        if attribute:
            # A trace with any span whose attribute has this value (compared as text).
            where.append(
                "EXISTS (SELECT 1 FROM spans s WHERE s.trace_id = traces.trace_id"
                " AND CAST(json_extract(s.attributes, ?) AS TEXT) = ?)"
            )
            params += [_json_path(attribute[0]), attribute[1]]
        sql = f"SELECT * FROM traces WHERE {' AND '.join(where)} ORDER BY start_ns DESC LIMIT ?"
        with self._reader() as db:
            return [_summary(r) for r in db.execute(sql, [*params, limit])]

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace: its summary and every span, in start order; None when unknown."""
        with self._reader() as db:
            head = db.execute("SELECT * FROM traces WHERE trace_id = ?", (trace_id,)).fetchone()
            if head is None:
                return None
            spans = db.execute(
                f"SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id",
                (trace_id,),
            ).fetchall()
        return {**_summary(head), "spans": [_span(r) for r in spans]}

    def services(self) -> list[str]:
        with self._reader() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT service FROM spans ORDER BY 1")]

    def span_count(self) -> int:
        return self._span_count


def _row(s: SpanRecord) -> tuple[Any, ...]:
    return (
        s.trace_id,
        s.span_id,
        s.parent_span_id,
        s.name,
        s.kind,
        s.service,
        s.start_ns,
        s.end_ns,
        s.status_code,
        s.status_message,
        json.dumps(s.attributes),
        json.dumps(s.events),
        json.dumps(s.links),
        json.dumps(s.resource),
        s.scope,
    )


def _summarize(db: sqlite3.Connection, trace_id: str) -> None:
    """Recompute a trace's summary row from its spans (children often arrive first)."""
    start, end, count, errors, services = db.execute(
        "SELECT min(start_ns), max(end_ns), count(*), sum(status_code = 'ERROR'),"
        " group_concat(DISTINCT service) FROM spans WHERE trace_id = ?",
        (trace_id,),
    ).fetchone()
    # The root: a span without parent; until it arrives, the earliest span.
    root = db.execute(
        "SELECT name, service FROM spans WHERE trace_id = ?"
        " ORDER BY parent_span_id != '', start_ns LIMIT 1",
        (trace_id,),
    ).fetchone()
    db.execute(
        "INSERT OR REPLACE INTO traces VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            trace_id,
            start,
            end,
            count,
            errors,
            root[0],
            root[1],
            "," + ",".join(sorted(services.split(","))) + ",",
        ),
    )


def _summary(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "trace_id": row["trace_id"],
        "root_name": row["root_name"],
        "root_service": row["root_service"],
        "services": [s for s in row["services"].split(",") if s],
        "span_count": row["span_count"],
        "error_count": row["error_count"],
        "start_ns": row["start_ns"],
        "end_ns": row["end_ns"],
        "duration_ms": (row["end_ns"] - row["start_ns"]) / 1e6,
    }


def _span(row: sqlite3.Row) -> dict[str, Any]:
    span = dict(row)
    for key in ("attributes", "events", "links", "resource"):
        span[key] = json.loads(span[key])
    span["parent_span_id"] = span["parent_span_id"] or None
    span["duration_ms"] = (span["end_ns"] - span["start_ns"]) / 1e6
    return span


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _json_path(key: str) -> str:
    """A JSON path for a top-level key that may hold dots (`purchase.id`)."""
    return '$."' + key.replace('"', '\\"') + '"'
