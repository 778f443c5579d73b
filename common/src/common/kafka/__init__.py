"""Kafka for the saga: config, a delivery-checked producer, the consumer registry and loop.

Handlers import what they need from here:
`from common.kafka import ConsumedMessage, PoisonMessage`.
"""

from common.kafka.consumer import ConsumerLoop, run_consumer
from common.kafka.messages import MESSAGE_ID_HEADER, ConsumedMessage, PoisonMessage
from common.kafka.producer import DeliveryError, KafkaPublisher, flush, get_publisher, publish
from common.kafka.registry import CONSUMERS, BatchHandler, ConsumerSpec, Handler

__all__ = [
    "CONSUMERS",
    "BatchHandler",
    "MESSAGE_ID_HEADER",
    "ConsumedMessage",
    "ConsumerLoop",
    "ConsumerSpec",
    "DeliveryError",
    "Handler",
    "KafkaPublisher",
    "PoisonMessage",
    "flush",
    "get_publisher",
    "publish",
    "run_consumer",
]
