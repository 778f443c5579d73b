"""Structural schemas of the custom resources the chart renders, for the fields it sets.

kubernetes-validate knows Kubernetes' own kinds only; the operators' CRDs are not on
this machine. These schemas hold what the chart relies on, written from each operator's
API reference: the apiVersion, the fields we set and their types, the ones each
operator requires. Objects we fill are closed (additionalProperties: false), so a typo
in a template fails here instead of being dropped by the API server.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string", "minLength": 1}
INT: Schema = {"type": "integer", "minimum": 0}
STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
RESOURCES: Schema = {
    "type": "object",
    "properties": {"requests": STR_MAP, "limits": STR_MAP},
    "additionalProperties": False,
}
METADATA: Schema = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": STRING,
        "labels": STR_MAP,
        "annotations": STR_MAP,
    },
    "additionalProperties": False,
}


def closed(required: list[str], **properties: Schema) -> Schema:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def resource(api_version: str, kind: str, spec: Schema) -> Schema:
    return closed(
        ["apiVersion", "kind", "metadata", "spec"],
        apiVersion={"const": api_version},
        kind={"const": kind},
        metadata=METADATA,
        spec=spec,
    )


# Traefik v3: https://doc.traefik.io/traefik/reference/routing-configuration/kubernetes/crd/
INGRESS_ROUTE = resource(
    "traefik.io/v1alpha1",
    "IngressRoute",
    closed(
        ["entryPoints", "routes"],
        entryPoints={"type": "array", "items": STRING, "minItems": 1},
        routes={
            "type": "array",
            "minItems": 1,
            "items": closed(
                ["kind", "match", "services"],
                kind={"const": "Rule"},
                match=STRING,
                priority=INT,
                middlewares={"type": "array", "items": closed(["name"], name=STRING)},
                services={
                    "type": "array",
                    "minItems": 1,
                    "items": closed(
                        ["name", "port"],
                        kind={"enum": ["Service", "TraefikService"]},
                        name=STRING,
                        port={"type": ["integer", "string"]},
                        scheme={"enum": ["http", "https", "h2c"]},
                    ),
                },
            ),
        },
    ),
)

MIDDLEWARE = resource(
    "traefik.io/v1alpha1",
    "Middleware",
    {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "errors": closed(
                ["status", "service", "query"],
                status={"type": "array", "items": STRING, "minItems": 1},
                query=STRING,
                service=closed(["name", "port"], name=STRING, port=INT),
            ),
            "buffering": closed(["maxRequestBodyBytes"], maxRequestBodyBytes=INT),
        },
        "additionalProperties": False,
    },
)

# Strimzi (kafka.strimzi.io/v1beta2), KRaft with node pools.
KAFKA_NODE_POOL = resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaNodePool",
    closed(
        ["replicas", "roles", "storage"],
        replicas={"type": "integer", "minimum": 1},
        roles={
            "type": "array",
            "items": {"enum": ["controller", "broker"]},
            "minItems": 1,
            "uniqueItems": True,
        },
        storage=closed(
            ["type", "volumes"],
            type={"const": "jbod"},
            volumes={
                "type": "array",
                "minItems": 1,
                "items": closed(
                    ["id", "type", "size"],
                    id=INT,
                    type={"enum": ["persistent-claim", "ephemeral"]},
                    size={"type": "string", "pattern": r"^[0-9]+(Mi|Gi|Ti)$"},
                    **{"class": STRING},
                    deleteClaim={"type": "boolean"},
                    kraftMetadata={"const": "shared"},
                ),
            },
        ),
        resources=RESOURCES,
    ),
)

KAFKA = resource(
    "kafka.strimzi.io/v1beta2",
    "Kafka",
    closed(
        ["kafka"],
        kafka=closed(
            ["version", "listeners"],
            version={"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
            listeners={
                "type": "array",
                "minItems": 1,
                "items": closed(
                    ["name", "port", "type", "tls"],
                    name={"type": "string", "pattern": "^[a-z0-9]{1,11}$"},
                    port={"type": "integer", "minimum": 9092},
                    type={"enum": ["internal", "route", "loadbalancer", "nodeport", "ingress"]},
                    tls={"type": "boolean"},
                ),
            },
            config={"type": "object"},
        ),
        entityOperator=closed(
            [], topicOperator={"type": "object"}, userOperator={"type": "object"}
        ),
    ),
)

KAFKA_TOPIC = resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaTopic",
    closed(
        ["topicName", "partitions", "replicas"],
        topicName=STRING,
        partitions={"type": "integer", "minimum": 1},
        replicas={"type": "integer", "minimum": 1, "maximum": 32767},
        config={"type": "object"},
    ),
)

# CloudNativePG (postgresql.cnpg.io/v1).
CNPG_CLUSTER = resource(
    "postgresql.cnpg.io/v1",
    "Cluster",
    closed(
        ["instances", "bootstrap", "storage"],
        instances={"type": "integer", "minimum": 1},
        imageName=STRING,
        enableSuperuserAccess={"type": "boolean"},
        bootstrap=closed(
            ["initdb"], initdb=closed(["database", "owner"], database=STRING, owner=STRING)
        ),
        storage=closed(["size"], size=STRING, storageClass=STRING),
        postgresql=closed([], parameters=STR_MAP),
        resources=RESOURCES,
        affinity=closed([], enablePodAntiAffinity={"type": "boolean"}, topologyKey=STRING),
    ),
)

# KEDA (keda.sh/v1alpha1), the kafka scaler.
SCALED_OBJECT = resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    closed(
        ["scaleTargetRef", "triggers"],
        scaleTargetRef=closed(
            ["name"], apiVersion=STRING, kind={"const": "Deployment"}, name=STRING
        ),
        minReplicaCount=INT,
        maxReplicaCount={"type": "integer", "minimum": 1},
        pollingInterval=INT,
        cooldownPeriod=INT,
        triggers={
            "type": "array",
            "minItems": 1,
            "items": closed(
                ["type", "metadata"],
                type={"const": "kafka"},
                metadata={
                    "type": "object",
                    "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                    "properties": {
                        "bootstrapServers": STRING,
                        "consumerGroup": STRING,
                        "topic": STRING,
                        "lagThreshold": {"type": "string", "pattern": "^[0-9]+$"},
                        "offsetResetPolicy": {"enum": ["earliest", "latest"]},
                        "allowIdleConsumers": {"enum": ["true", "false"]},
                    },
                    # KEDA reads trigger metadata as strings only.
                    "additionalProperties": False,
                },
            ),
        },
    ),
)

SCHEMAS: dict[tuple[str, str], Schema] = {
    (s["properties"]["apiVersion"]["const"], s["properties"]["kind"]["const"]): s
    for s in (
        INGRESS_ROUTE,
        MIDDLEWARE,
        KAFKA_NODE_POOL,
        KAFKA,
        KAFKA_TOPIC,
        CNPG_CLUSTER,
        SCALED_OBJECT,
    )
}
