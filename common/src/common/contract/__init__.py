"""The Kafka contract of the saga, in one place: what travels, where, and who reads it.

- `topics`: the topics (`Topic`, each with its dead-letter twin) the platform creates;
- `events`: the messages (`PurchaseCreated`, `PurchaseResult`) and their parsers;
- `consumers`: every consumer (topic, group, handlers), the registry `kafka_consume` runs.

Import from the module that defines a name (`from common.contract.topics import Topic`);
this package re-exports nothing, so importing a topic does not load Kafka's client.
"""
