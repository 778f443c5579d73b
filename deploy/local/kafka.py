"""Kafka as a single-node KRaft broker: storage formatted once, saga topics created."""

from __future__ import annotations

import base64
import subprocess
import uuid

from common.contract.topics import saga_topics
from common.topology import INFRA
from deploy.local import paths
from deploy.local.console import fail, step


def ensure_formatted() -> None:
    if (paths.KAFKA_DATA / "data" / "meta.properties").exists():
        return
    if not any(paths.KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        raise fail(f"Kafka jars missing in {paths.KAFKA_LIBS}: run deploy/bin/bootstrap")
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    step(f"formatting Kafka KRaft storage (cluster id {cluster_id})")
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{paths.KAFKA_LIBS}/*",
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            cluster_id,
            "-c",
            str(paths.ETC / "kafka" / "server.properties"),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise fail(f"Kafka storage format failed:\n{result.stdout}\n{result.stderr}")


def ensure_topics(timeout: float = 60.0) -> None:
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": INFRA.kafka_bootstrap})
    wanted = INFRA.kafka_partitions
    metadata = admin.list_topics(timeout=timeout)
    missing = [t for t in saga_topics() if t not in metadata.topics]
    if missing:
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=wanted, replication_factor=1) for t in missing]
        )
        for topic, future in futures.items():
            future.result(timeout=timeout)
            step(f"Kafka: created topic {topic} ({wanted} partitions)")
    metadata = admin.list_topics(timeout=timeout)
    grow = [
        t
        for t in saga_topics()
        if t in metadata.topics and len(metadata.topics[t].partitions) < wanted
    ]
    if grow:
        for topic, future in admin.create_partitions(
            [NewPartitions(t, wanted) for t in grow]
        ).items():
            future.result(timeout=timeout)
            step(f"Kafka: grew topic {topic} to {wanted} partitions")
    step(f"Kafka: topics {', '.join(saga_topics())} ready")
