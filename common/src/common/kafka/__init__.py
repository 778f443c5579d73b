"""Kafka for the saga: config, a delivery-checked producer, the consumer loop.

The contract it serves (topics, events, the consumer registry) is common.contract.

Handlers import what they need from here:
`from common.kafka import ConsumedMessage, PoisonMessage`.
"""

from common.kafka.consumer import ConsumerLoop, run_consumer
from common.kafka.messages import MESSAGE_ID_HEADER, ConsumedMessage, PoisonMessage
from common.kafka.producer import DeliveryError, KafkaPublisher, flush, get_publisher, publish

__all__ = [
    "MESSAGE_ID_HEADER",
    "ConsumedMessage",
    "ConsumerLoop",
    "DeliveryError",
    "KafkaPublisher",
    "PoisonMessage",
    "flush",
    "get_publisher",
    "publish",
    "run_consumer",
]
