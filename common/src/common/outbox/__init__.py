"""Transactional outbox: events are written with the data they describe, published later.

A service writes an `OutboxMessage` in the same database transaction as its own
change (`services.outbox_enqueue`, or `outbox_enqueue_many` for several in one INSERT),
and the relay (`manage.py outbox_relay`) publishes committed rows to Kafka. An event
therefore leaves if and only if the change committed. Install as "common.outbox" in INSTALLED_APPS.
"""
