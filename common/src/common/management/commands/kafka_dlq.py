"""`manage.py kafka_dlq list|replay TOPIC`: what sits in `<TOPIC>.DLQ`, and re-driving it.

list: one line per message (partition, offset, time, key, replays, source, reason, a
short payload), newest last, and whether replay has taken it. replay: re-publishes the
DLQ's messages to their source topic (common.kafka.dlq; docs/operations.md).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.kafka.dlq import DeadLetter, DlqError, read_dead_letters, replay

PAYLOAD_WIDTH = 80


def short_payload(value: bytes, width: int = PAYLOAD_WIDTH) -> str:
    """The payload as one line of text, cut to `width` characters (bytes escaped)."""
    text = value.decode(errors="backslashreplace").replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 3] + "..."


def letter_dict(letter: DeadLetter, *, replayed: bool | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "partition": letter.partition,
        "offset": letter.offset,
        "time": letter.timestamp.isoformat() if letter.timestamp else None,
        "key": letter.key,
        "reason": letter.reason,
        "source": letter.source,
        "replays": letter.replays,
        "payload": short_payload(letter.value),
    }
    if replayed is not None:
        data["replayed"] = replayed
    return data


def letter_line(letter: DeadLetter, *, replayed: bool | None = None) -> str:
    when = letter.timestamp.strftime("%Y-%m-%dT%H:%M:%SZ") if letter.timestamp else "-"
    mark = "" if replayed is None else ("replayed " if replayed else "pending  ")
    return (
        f"{mark}[{letter.partition}]@{letter.offset}  {when}  key={letter.key or '-'}"
        f"  replays={letter.replays}  from={letter.source}\n"
        f"    reason: {letter.reason or '-'}\n"
        f"    payload: {short_payload(letter.value)}"
    )


class Command(BaseCommand):
    help = (
        "list TOPIC: the messages parked on TOPIC.DLQ, with reason and source. "
        "replay TOPIC: publish them again to their source topic (consumers dedupe), "
        "remembering how far it got (a second replay does not resend)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "replay"])
        parser.add_argument("topic", help="the source topic (purchase) or its DLQ (purchase.DLQ)")
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="list: the newest N (50); replay: at most N messages (all).",
        )
        parser.add_argument(
            "--pending", action="store_true", help="list: only what replay has not taken yet."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="replay: show what would be sent, send nothing."
        )
        parser.add_argument(
            "--max-replays",
            type=int,
            default=3,
            help="replay: skip a message already replayed this many times (3).",
        )
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = options["limit"]
        if limit is not None and limit < 1:
            raise CommandError("--limit must be at least 1.")
        if options["max_replays"] < 1:
            raise CommandError("--max-replays must be at least 1.")
        try:
            if options["action"] == "list":
                self._list(options["topic"], limit or 50, options["pending"], options["json"])
            else:
                self._replay(options)
        except DlqError as exc:
            raise CommandError(str(exc)) from exc

    def _list(self, topic: str, limit: int, pending: bool, as_json: bool) -> None:
        listing = read_dead_letters(topic, limit=limit, pending_only=pending)
        if as_json:
            body = {
                "topic": listing.topic,
                "total": listing.total,
                "pending": listing.pending,
                "messages": [
                    letter_dict(m, replayed=listing.is_replayed(m)) for m in listing.messages
                ],
            }
            self.stdout.write(json.dumps(body))
            return
        for letter in listing.messages:
            self.stdout.write(letter_line(letter, replayed=listing.is_replayed(letter)))
        self.stdout.write(
            f"{listing.topic}: {listing.total} messages, {listing.pending} not replayed;"
            f" {len(listing.messages)} shown"
        )

    def _replay(self, options: dict[str, Any]) -> None:
        report = replay(
            options["topic"],
            limit=options["limit"],
            max_replays=options["max_replays"],
            dry_run=options["dry_run"],
        )
        verb = "would replay" if report.dry_run else "replayed"
        if options["json"]:
            body = {
                "dry_run": report.dry_run,
                "replayed": [letter_dict(m) for m in report.replayed],
                "skipped": [letter_dict(m) for m in report.skipped],
            }
            self.stdout.write(json.dumps(body))
            return
        for letter in report.replayed:
            self.stdout.write(f"{verb} {letter_line(letter)}")
        for letter in report.skipped:
            self.stdout.write(f"skipped (replayed {letter.replays} times) {letter_line(letter)}")
        self.stdout.write(
            f"{verb} {len(report.replayed)} messages, skipped {len(report.skipped)}"
            f" (--max-replays {options['max_replays']})"
        )
