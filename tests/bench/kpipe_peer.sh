#!/usr/bin/env bash
# kpipe as a peer of ../shared/bench (the side-by-side pipeline benchmark): writes a config for
# the bench job from the harness's environment and runs `kpipe run` on it.
#
#   cd ../shared/bench && ./setup.sh
#   ./run.sh -n 240000 -r 3 --peers kcat,cpp,python --peer kpipe="$PWD/../../main/tests/bench/kpipe_peer.sh"
#
# Environment (set by run.sh): BOOTSTRAP GROUP_ID SCHEMA IN_TOPIC OUT_TOPIC ERR_TOPIC AUDIT_TOPIC.
# KPIPE_BINARY overrides the binary (default: build/daemon/kpipe of this checkout).
# KPIPE_PEER_PIPELINE: more lines for the pipeline's YAML, e.g. "max_pending: 512" (the sweep in
# docs/BENCHMARKS.md: --peer p512="KPIPE_PEER_PIPELINE='max_pending: 512' .../kpipe_peer.sh").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KPIPE=${KPIPE_BINARY:-$ROOT/build/daemon/kpipe}
dir=$(mktemp -d /tmp/kpipe-bench.XXXXXX)
mkdir -p "$dir/pipelines"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/kpipe.yaml" <<YAML
kafka:
  bootstrap: "$BOOTSTRAP"
  consumer_properties: {fetch.wait.max.ms: 10}
http: {listen: "127.0.0.1:$port"}
stores: {ids: {type: memory, ttl: 1h, max_entries: 1000000}}
log: {format: text, level: warn}
YAML
cat >"$dir/pipelines/bench.yaml" <<YAML
name: bench
input: {topic: "$IN_TOPIC", group: "$GROUP_ID"}
key: /data/user_id
schema: "$SCHEMA"
dedup: {id: /msg_id, store: ids, on_duplicate: audit}
output: {topic: "$OUT_TOPIC"}
errors: {topic: "$ERR_TOPIC", audit_topic: "$AUDIT_TOPIC"}
${KPIPE_PEER_PIPELINE:-}
YAML
# exec: the harness's SIGTERM goes straight to kpipe, which drains, commits and exits.
exec "$KPIPE" run "$dir/kpipe.yaml"
