#!/usr/bin/env bash
# The demo: installs what is missing, builds, and runs kpipe with config/kpipe.yaml on its
# embedded broker, feeding both demo pipelines with traffic (valid events, invalid ones,
# duplicates) through kcat. Watch the log here and http://127.0.0.1:9464/metrics.
#
#   deploy/demo.sh                 runs until Ctrl-C
#   DEMO_SECONDS=30 deploy/demo.sh stops by itself (used to check the demo on a fresh machine)
# Environment: RATE (user events per second, default 200).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/deploy/setup.sh"
KPIPE=${BUILD_DIR:-$ROOT/build}/daemon/kpipe
DEMO_SECONDS=${DEMO_SECONDS:-0}
RATE=${RATE:-200}
WORK=$(mktemp -d /tmp/kpipe-demo.XXXXXX)
LOG=$WORK/kpipe.log
HTTP=${KPIPE_HTTP_LISTEN:-127.0.0.1:9464}

cleanup() {
  trap - EXIT INT TERM
  [[ -n ${feeder:-} ]] && kill "$feeder" 2>/dev/null || true
  if [[ -n ${kpipe_pid:-} ]] && kill -0 "$kpipe_pid" 2>/dev/null; then
    echo "demo: stopping kpipe (SIGTERM: drain, commit, exit)"
    kill -TERM "$kpipe_pid"; wait "$kpipe_pid" || true
  fi
  [[ -n ${tailer:-} ]] && kill "$tailer" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

KPIPE_HTTP_LISTEN=$HTTP "$KPIPE" run "$ROOT/config/kpipe.yaml" >"$LOG" 2>&1 &
kpipe_pid=$!
tail -n +1 -f "$LOG" &
tailer=$!
bootstrap=
for _ in $(seq 100); do
  bootstrap=$(sed -n 's/.*embedded broker started.* bootstrap=\([0-9.:]*\).*/\1/p' "$LOG" | head -1)
  [[ -n $bootstrap ]] && break
  kill -0 "$kpipe_pid" 2>/dev/null || { echo "demo: kpipe exited"; exit 1; }
  sleep 0.1
done
[[ -n $bootstrap ]] || { echo "demo: kpipe did not report its embedded broker"; exit 1; }
echo "demo: feeding $RATE user events/s and $((RATE / 4)) payments/s to $bootstrap with kcat"

feed() {
  local seed=1
  while true; do
    /usr/bin/python3 "$ROOT/tools/gen_events.py" -n "$RATE" --seed "$seed" \
      | kcat -P -b "$bootstrap" -t user-events -K $'\t' -Z -q
    /usr/bin/python3 "$ROOT/tools/gen_payments.py" -n $((RATE / 4)) --seed "$seed" \
      | kcat -P -b "$bootstrap" -t payments -K $'\t' -q
    seed=$((seed + 1))
    sleep 1
  done
}
feed &
feeder=$!

report() {
  echo "---- demo: kpipe_messages_total from http://$HTTP/metrics"
  curl -s "http://$HTTP/metrics" | grep -E '^kpipe_messages_total' || true
  for t in users user-events.errors user-events.audit payments.clean payments.errors; do
    printf '  topic %-20s %s records\n' "$t" \
      "$(kcat -C -b "$bootstrap" -t "$t" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l)"
  done
  echo "  the latest error record of each stage (key, reason, value):"
  kcat -C -b "$bootstrap" -t user-events.errors -o beginning -e -q -J 2>/dev/null \
    | /usr/bin/python3 "$ROOT/tools/show_errors.py" || true
}

start=$SECONDS
while kill -0 "$kpipe_pid" 2>/dev/null; do
  sleep 5
  report
  if ((DEMO_SECONDS > 0 && SECONDS - start >= DEMO_SECONDS)); then break; fi
done
