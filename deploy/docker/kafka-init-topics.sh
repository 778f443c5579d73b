#!/bin/sh
# Creates the saga's topics with PARTITIONS partitions, and grows a topic that has
# fewer (Kafka cannot shrink one). Idempotent: runs on every `docker compose up`.
#
#   BOOTSTRAP_SERVER  kafka:9092
#   TOPICS            "purchase purchase.DLQ ..." (written by deploy/docker/generate.py)
#   PARTITIONS        KAFKA_PARTITIONS, 6 by default
#   KAFKA_TOPICS_CMD  the kafka-topics tool (the apache/kafka image's by default)
set -eu

: "${BOOTSTRAP_SERVER:?}" "${TOPICS:?}" "${PARTITIONS:?}"
KAFKA_TOPICS_CMD=${KAFKA_TOPICS_CMD:-/opt/kafka/bin/kafka-topics.sh}

topics() { "$KAFKA_TOPICS_CMD" --bootstrap-server "$BOOTSTRAP_SERVER" "$@"; }

for topic in $TOPICS; do
  topics --create --if-not-exists --topic "$topic" \
    --partitions "$PARTITIONS" --replication-factor 1
  # "Topic: purchase  TopicId: ...  PartitionCount: 6  ReplicationFactor: 1 ..."
  have=$(topics --describe --topic "$topic" \
    | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ -z "$have" ]; then
    echo "kafka-init: cannot read the partition count of $topic" >&2
    exit 1
  fi
  if [ "$have" -lt "$PARTITIONS" ]; then
    topics --alter --topic "$topic" --partitions "$PARTITIONS"
    echo "kafka-init: grew $topic from $have to $PARTITIONS partitions"
  else
    echo "kafka-init: $topic has $have partitions"
  fi
done
