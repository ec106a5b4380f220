#!/usr/bin/python3
"""Benchmark: what key-ordered concurrency buys over one-message-at-a-time per partition when
the sink is slow (issue #4, Little's law: throughput = messages in flight / latency).

The sink is kpipe's Kafka output on the embedded broker with 5 ms of round-trip time injected
into the broker (`rtt 1 5` on `kpipe broker`'s stdin) and linger.ms=0, so that every
acknowledgement takes >= 5 ms, as a remote cluster or a slow HTTP service would. Input: keyed
JSON events over 1,000 keys on 4 partitions, preloaded. For each ordering mode the benchmark
runs kpipe until every message is committed and reports the steady rate (between 10 % and
90 % of the messages); then it checks that the output keeps per-key order.

    /usr/bin/python3 tests/bench/ordering_bench.py [--rtt-ms 5] [--keys 1000]
        [--modes partition:1,key:64] [--messages partition=4000,key=100000]

Not a test (no pass/fail on speed); prints a table and exits 1 only if order was broken.
"""
import argparse
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness as h  # noqa: E402

PARTITIONS = 4
PIPELINE = """
name: bench
input: {{topic: in-{tag}, group: bench-{tag}}}
key: /user_id
ordering: {ordering}
{concurrency}
{extra}
output: {{topic: out-{tag}}}
errors: {{topic: errors-{tag}, audit_topic: audit-{tag}}}
"""


def events(n, keys, seed):
    seqs = {}
    lines = []
    for i in range(n):
        user = f"user-{(i * 7919 + seed) % keys:05d}"
        seqs[user] = seqs.get(user, 0) + 1
        value = json.dumps({"msg_id": str(uuid.uuid4()), "user_id": user, "seq": seqs[user]},
                           separators=(",", ":"))
        lines.append(f"{user}\t{value}")
    return lines


def run_mode(broker, ordering, concurrency, n, keys, tag, producer_properties):
    h.kcat_produce(broker.bootstrap, f"in-{tag}", events(n, keys, seed=len(tag)))
    conc = f"concurrency: {concurrency}" if ordering != "partition" else ""
    config = h.ConfigDir(broker.bootstrap, {
        "bench": PIPELINE.format(tag=tag, ordering=ordering, concurrency=conc,
                                 extra=os.environ.get("BENCH_PIPELINE_EXTRA", ""))},
        producer_properties=producer_properties,
        consumer_properties=dict(kv.split("=") for kv in os.environ.get("BENCH_CONSUMER", "").split(",") if kv))
    kpipe = h.Kpipe(config)
    try:
        marks = {}
        start = time.monotonic()
        while True:
            done = kpipe.metric_sum("kpipe_messages_total", pipeline="bench")
            now = time.monotonic()
            for frac in (0.1, 0.9):
                if frac not in marks and done >= frac * n:
                    marks[frac] = now
            if done >= n:
                break
            if now - start > 600:
                raise AssertionError(f"{ordering}: only {done} of {n} after 600 s")
            time.sleep(0.05)
        rate = 0.8 * n / (marks[0.9] - marks[0.1])
        inflight_peak = None
        kpipe.stop()
    finally:
        if kpipe.proc.poll() is None:
            kpipe.kill()
        config.cleanup()
    # Per-key order at the output: each key's seqs must come out 1, 2, 3, ...
    out = h.kcat_consume(broker.bootstrap, f"out-{tag}")
    last = {}
    broken = 0
    for r in sorted(out, key=lambda r: (r["partition"], r["offset"])):
        v = json.loads(r["value"])
        if v["seq"] != last.get(v["user_id"], 0) + 1:
            broken += 1
        last[v["user_id"]] = v["seq"]
    return rate, len(out), broken, inflight_peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtt-ms", type=int, default=5)
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--modes", default="partition:1,key:64")
    ap.add_argument("--messages", default="partition=4000,key=100000,none=100000")
    ap.add_argument("--producer", default="linger.ms=0",
                    help="kafka.producer_properties, e.g. linger.ms=0,max.in.flight=5")
    args = ap.parse_args()
    sizes = dict(kv.split("=") for kv in args.messages.split(","))
    producer_properties = dict(kv.split("=") for kv in args.producer.split(",") if kv)
    modes = [(m.split(":")[0], m.split(":")[1], f"{m.replace(':', '')}-{i}")
             for i, m in enumerate(args.modes.split(","))]
    broker = h.Broker([f"{t}-{tag}:{PARTITIONS}" for _, _, tag in modes
                       for t in ("in", "out", "errors", "audit")], partitions=PARTITIONS)
    results = []
    try:
        broker.fault(f"rtt 1 {args.rtt_ms}")
        for ordering, concurrency, tag in modes:
            n = int(sizes[ordering])
            rate, out, broken, _ = run_mode(broker, ordering, int(concurrency), n, args.keys,
                                            tag, producer_properties)
            results.append((ordering, int(concurrency), n, rate, out, broken))
            print(f"ordering={ordering} concurrency={concurrency}: {rate:,.0f} msg/s "
                  f"({n} messages, {out} output records, {broken} out of key order)",
                  file=sys.stderr)
    finally:
        broker.stop()
    base = results[0][3]
    print(f"\nsink: Kafka output, broker rtt {args.rtt_ms} ms, producer {args.producer}; "
          f"{args.keys} keys, {PARTITIONS} partitions")
    print(f"{'ordering':<10} {'concurrency':>11} {'messages':>9} {'msg/s':>10} "
          f"{'x first':>8} {'order broken':>13}")
    for ordering, concurrency, n, rate, out, broken in results:
        print(f"{ordering:<10} {concurrency:>11} {n:>9} {rate:>10,.0f} {rate / base:>8.1f} "
              f"{broken:>13}")
    return 1 if any(r[5] for r in results if r[0] != "none") else 0


if __name__ == "__main__":
    sys.exit(main())
