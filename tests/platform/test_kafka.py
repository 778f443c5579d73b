"""The broker: a produce/consume round trip, and the saga topics as configured."""

import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common.contract.topics import saga_topics
from common.topology import INFRA


def test_saga_topics_exist_with_the_configured_partitions() -> None:
    metadata = AdminClient({"bootstrap.servers": INFRA.kafka_bootstrap}).list_topics(timeout=10)
    for topic in saga_topics():
        assert topic in metadata.topics, topic
        assert len(metadata.topics[topic].partitions) == INFRA.kafka_partitions


def test_a_message_produced_is_consumed_back() -> None:
    admin = AdminClient({"bootstrap.servers": INFRA.kafka_bootstrap})
    topic = f"platform-test-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=30
    )
    try:
        producer = Producer(
            {"bootstrap.servers": INFRA.kafka_bootstrap, "enable.idempotence": True}
        )
        body = uuid.uuid4().bytes
        producer.produce(topic, key=b"k", value=body, headers={"h": b"v"})
        assert producer.flush(10) == 0
        consumer = Consumer(
            {
                "bootstrap.servers": INFRA.kafka_bootstrap,
                "group.id": f"platform-test-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        received = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                received = message
                break
        consumer.close()
        assert received is not None, "nothing consumed within 60 s"
        assert (received.key(), received.value(), received.headers()) == (b"k", body, [("h", b"v")])
    finally:
        admin.delete_topics([topic])
