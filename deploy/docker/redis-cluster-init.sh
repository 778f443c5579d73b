#!/bin/sh
# Creates the cache cluster once (half the nodes masters, one replica each), then
# waits until it is whole. Idempotent: a cluster with every slot assigned is kept
# as it is, so `docker compose up` on existing volumes changes nothing.
#
#   REDIS_NODES  "redis-node-0:6379 ..." (written by deploy/docker/generate.py)
#   TIMEOUT      seconds to wait for cluster_state:ok (60)
set -eu

: "${REDIS_NODES:?REDIS_NODES is not set}"
first=${REDIS_NODES%% *}
host=${first%:*}
port=${first##*:}
count=$(echo "$REDIS_NODES" | wc -w)
want_masters=$((count / 2))
want_replicas=$((count - want_masters))

info() { redis-cli -h "$host" -p "$port" cluster info | tr -d '\r'; }
# The third field of CLUSTER NODES holds the flags: myself,master / slave / fail...
roles() {
  redis-cli -h "$host" -p "$port" cluster nodes | tr -d '\r' \
    | awk -v want="$1" '$3 !~ /fail/ && $3 ~ want { n++ } END { print n + 0 }'
}

if info | grep -q '^cluster_slots_assigned:16384$'; then
  echo "redis-cluster-init: the cluster exists"
else
  addresses=""
  for node in $REDIS_NODES; do
    node_host=${node%:*}
    # CLUSTER MEET takes addresses, not names; the nodes announce their names to clients.
    ip=$(getent hosts "$node_host" | awk '{ print $1; exit }')
    if [ -z "$ip" ]; then
      echo "redis-cluster-init: cannot resolve $node_host" >&2
      exit 1
    fi
    addresses="$addresses $ip:${node##*:}"
  done
  echo "redis-cluster-init: creating the cluster of$addresses"
  # shellcheck disable=SC2086  # one argument per node
  redis-cli --cluster create $addresses --cluster-replicas 1 --cluster-yes
fi

deadline=$(($(date +%s) + ${TIMEOUT:-60}))
while :; do
  state=$(info | sed -n 's/^cluster_state://p')
  masters=$(roles master)
  replicas=$(roles slave)
  if [ "$state" = ok ] && [ "$masters" -eq "$want_masters" ] \
    && [ "$replicas" -eq "$want_replicas" ]; then
    echo "redis-cluster-init: cluster_state ok, $masters masters, $replicas replicas"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "redis-cluster-init: not ok: state=$state masters=$masters replicas=$replicas" >&2
    exit 1
  fi
  sleep 1
done
