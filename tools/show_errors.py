#!/usr/bin/python3
"""Reads `kcat -C -J` output of an error topic on stdin and prints the latest error record of
each stage: key, reason (the kpipe.error.reason header) and the start of the value."""
import json
import sys

latest = {}
for line in sys.stdin:
    if not line.strip():
        continue
    record = json.loads(line)
    flat = record.get("headers") or []
    headers = dict(zip(flat[0::2], flat[1::2]))
    latest[headers.get("kpipe.error.stage", "?")] = record.get("key"), headers, record.get("payload")
for stage in sorted(latest):
    key, headers, value = latest[stage]
    print(f"    [{stage}] key={key} from {headers.get('kpipe.origin.topic')}"
          f"/{headers.get('kpipe.origin.partition')}@{headers.get('kpipe.origin.offset')}")
    print(f"        reason: {headers.get('kpipe.error.reason')}")
    print(f"        value:  {(value or '')[:100]}")
