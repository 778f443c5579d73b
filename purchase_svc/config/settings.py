"""Settings of the purchase service: the shared ones plus what only it needs."""

from common.settings import build, env

globals().update(
    build(
        "purchase",
        apps=["common.outbox", "purchase_svc.purchases"],
        health_checks=["common.health.check_redis_cluster", "common.health.check_kafka"],
        extra={
            # POST /api/v1/purchases: at most this many distinct product lines, and at most
            # this many units of one product (after merging duplicate lines).
            "PURCHASE_MAX_LINES": int(env("PURCHASE_MAX_LINES", "50")),
            "PURCHASE_MAX_QUANTITY": int(env("PURCHASE_MAX_QUANTITY", "1000")),
            # ISO 4217 codes a purchase may be paid in. XXX ("no currency") is accepted
            # here and refused by the payment service: tests drive a payment rejection
            # with it.
            "KNOWN_CURRENCIES": [
                code.strip().upper()
                for code in env("KNOWN_CURRENCIES", "VND,USD,EUR,GBP,JPY,XXX").split(",")
                if code.strip()
            ],
            # Deadline of ProductService.CheckProducts through the gRPC edge.
            "PURCHASE_PRODUCT_CHECK_TIMEOUT_SECONDS": float(
                env("PURCHASE_PRODUCT_CHECK_TIMEOUT_SECONDS", "2.0")
            ),
            # GET /api/v1/purchases/{id}/events (Server-Sent Events), see
            # docs/adr/0007-purchase-api-and-sse.md. Each open stream holds one gunicorn
            # thread, so a process serves at most PURCHASE_SSE_MAX_STREAMS of them at once
            # and keeps its other threads for the rest of the API.
            "PURCHASE_SSE_MAX_STREAMS": int(env("PURCHASE_SSE_MAX_STREAMS", "4")),
            "PURCHASE_SSE_MAX_SECONDS": float(env("PURCHASE_SSE_MAX_SECONDS", "300")),
            "PURCHASE_SSE_HEARTBEAT_SECONDS": float(env("PURCHASE_SSE_HEARTBEAT_SECONDS", "15")),
            # How often a stream re-reads the database: while the LISTEN connection is up
            # only as a safety net, and as the only wake-up when it is down.
            "PURCHASE_SSE_SAFETY_POLL_SECONDS": float(env("PURCHASE_SSE_SAFETY_POLL_SECONDS", "2")),
            "PURCHASE_SSE_FALLBACK_POLL_SECONDS": float(
                env("PURCHASE_SSE_FALLBACK_POLL_SECONDS", "0.2")
            ),
        },
    )
)
