"""The cache cluster: six nodes, three masters with a replica each, keys spread over slots."""

import uuid

from common.redis_cluster import cluster_client
from common.topology import INFRA


def test_cluster_state_is_ok_with_three_masters_and_three_replicas() -> None:
    client = cluster_client()
    assert client.cluster_info()["cluster_state"] == "ok"
    nodes: dict[str, dict[str, str]] = client.cluster_nodes()  # type: ignore[assignment]
    masters = [n for n in nodes.values() if "master" in n["flags"] and "fail" not in n["flags"]]
    replicas = [n for n in nodes.values() if "slave" in n["flags"] and "fail" not in n["flags"]]
    assert (len(masters), len(replicas)) == (3, 3)
    ports = {int(addr.rsplit(":", 1)[1]) for addr in nodes}
    assert ports == set(INFRA.redis_cluster_ports)


def test_keys_set_through_the_cluster_client_are_read_back_from_every_master() -> None:
    client = cluster_client()
    run = uuid.uuid4().hex
    keys = {f"platform-test:{run}:{i}": str(i).encode() for i in range(200)}
    for key, value in keys.items():
        client.set(key, value, ex=60)
    slots_by_node = {client.get_node_from_key(k).name for k in keys}
    assert len(slots_by_node) == 3  # the keys really landed on all three masters
    assert {k: client.get(k) for k in keys} == keys
    for key in keys:
        client.delete(key)
