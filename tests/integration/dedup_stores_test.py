#!/usr/bin/python3
"""Dedup stores (issue #6) with real servers: kpipe on the embedded broker, a real redis-server,
an LMDB directory, traffic produced with kcat and read back with kcat and python3-kafka.

- Redis, crash loop: kpipe is SIGKILLed at random moments under traffic and restarted, again
  and again. Every valid input id must reach the output; an id may reach it twice only if it
  was uncommitted at one of the kills (its effect done, its confirm or commit not yet), and no
  more such ids than kills x the in-flight bound. Deliberate duplicates go to the audit topic.
- Redis stopped (SIGSTOP) for 10 s under traffic: the pipeline waits (blocking failures at the
  dedup stage), nothing passes undeduplicated, nothing is lost: every id exactly once.
- LMDB: ids confirmed before a restart (SIGTERM, and SIGKILL) are still known after it: the same
  ids sent again all go to the audit topic.

KPIPE_DEDUP_KILLS sets the number of kills (default 50).
"""
import json
import os
import random
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PARTITIONS = 4
MAX_PENDING = 100  # per partition: the in-flight bound is MAX_PENDING x PARTITIONS
SCHEMA = {"type": "object", "required": ["msg_id", "user_id", "n"],
          "properties": {"msg_id": {"type": "string"}, "n": {"type": "integer"}}}
# Quick rejoins after a kill (the mock coordinator waits for the dead member's session to end;
# its first join takes 3 s, so the session may not be shorter)
# and quick failures, so that a reservation (3 s) outlasts any one produce attempt (2 s).
# Commits every 250 ms: less to redeliver (and audit) after each kill.
CONSUMER = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 1000,
            "auto.commit.interval.ms": 250}
PRODUCER = {"message.timeout.ms": 2000, "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200}


def pipeline(name, topic):
    return f"""
name: {name}
input: {{topic: {topic}, group: {name}-group}}
key: /user_id
schema: schemas/n.json
max_pending: {MAX_PENDING}
dedup: {{id: /msg_id, store: ids, on_duplicate: audit}}
output: {{topic: {topic}.out}}
errors: {{topic: {topic}.errors, audit_topic: {topic}.audit,
          retry: {{initial: 50ms, max: 500ms}}}}
"""


class Traffic:
    """Events for USERS keys; a share of them sent a second time (same msg_id) a little later."""

    def __init__(self, seed, users=200, duplicate_share=0.05):
        self.rng = random.Random(seed)
        self.users = users
        self.duplicate_share = duplicate_share
        self.valid_ids = set()
        self.duplicated_ids = set()
        self.seq = 0
        self.recent = []

    def batch(self, n):
        lines = []
        for _ in range(n):
            if self.recent and self.rng.random() < self.duplicate_share:
                line, msg_id = self.recent.pop(self.rng.randrange(len(self.recent)))
                self.duplicated_ids.add(msg_id)
                lines.append(line)
                continue
            self.seq += 1
            user = f"user-{self.rng.randrange(self.users)}"
            msg_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
            value = json.dumps({"msg_id": msg_id, "user_id": user, "n": self.seq},
                               separators=(",", ":"))
            line = f"{user}\t{value}"
            self.valid_ids.add(msg_id)
            self.recent.append((line, msg_id))
            self.recent = self.recent[-500:]
            lines.append(line)
        return lines


def ids_of(records):
    counts = {}
    for r in records:
        msg_id = json.loads(r["value"])["msg_id"]
        counts[msg_id] = counts.get(msg_id, 0) + 1
    return counts


class DedupStoreTest(unittest.TestCase):
    def setUp(self):
        self.topic = "events"
        self.topics = [self.topic, f"{self.topic}.out", f"{self.topic}.errors",
                       f"{self.topic}.audit"]
        self.broker = h.Broker(self.topics, partitions=PARTITIONS)
        self.addCleanup(self.broker.stop)
        self.redis = None

    def config(self, stores):
        config = h.ConfigDir(self.broker.bootstrap, {"p": pipeline("p", self.topic)},
                             consumer_properties=CONSUMER, producer_properties=PRODUCER,
                             stores=stores)
        if not os.environ.get("KPIPE_TEST_KEEP"):
            self.addCleanup(config.cleanup)
        with open(os.path.join(config.dir, "schemas", "n.json"), "w") as f:
            json.dump(SCHEMA, f)
        return config

    def start_redis(self):
        self.redis = h.Redis()
        self.addCleanup(self.redis.stop)
        return (f"{{ids: {{type: redis, url: '{self.redis.url}', ttl: 1d, "
                f"reservation_ttl: 3s, timeout: 500ms}}}}")

    def wait_caught_up(self, kpipe, timeout=120):
        def done():
            ends = h.end_offsets(self.broker.bootstrap, self.topic, PARTITIONS)
            committed = h.committed_offsets(self.broker.bootstrap, "p-group", self.topic,
                                            PARTITIONS)
            return all(committed[p] == ends[p] for p in range(PARTITIONS))
        h.wait_for(done, timeout, "the group to commit every input offset", interval=0.5)

    def input_offsets(self):
        """msg_id -> (partition, offset) of its first copy in the input topic."""
        first = {}
        for r in h.kcat_consume(self.broker.bootstrap, self.topic):
            msg_id = json.loads(r["value"])["msg_id"]
            first.setdefault(msg_id, (r["partition"], r["offset"]))
        return first

    def test_redis_crash_loop_loses_nothing_and_duplicates_only_what_was_in_flight(self):
        kills = int(os.environ.get("KPIPE_DEDUP_KILLS", "50"))
        config = self.config(self.start_redis())
        traffic = Traffic(seed=6)
        stop_traffic = threading.Event()
        produced = [0]

        # About 300 messages a second: over the run, input, output and audit stay under the
        # 5 MB per partition that the embedded broker keeps (older data is dropped silently).
        def produce():
            while not stop_traffic.is_set():
                lines = traffic.batch(100)
                h.kcat_produce(self.broker.bootstrap, self.topic, lines)
                produced[0] += len(lines)
                time.sleep(0.3)

        producer = threading.Thread(target=produce, daemon=True)
        rng = random.Random(11)
        committed_at_kill = []
        inflight_at_kill = []
        kpipe = h.Kpipe(config)
        started = time.monotonic()
        producer.start()
        try:
            for _ in range(kills):
                # At a random moment while it works: after it got the partitions.
                h.wait_for(lambda: kpipe.metric_sum("kpipe_assigned_partitions") == PARTITIONS,
                           60, "the partitions to be assigned", interval=0.05)
                time.sleep(rng.uniform(0.05, 1.5))
                inflight_at_kill.append(kpipe.metric_sum("kpipe_inflight_messages"))
                kpipe.kill()
                committed_at_kill.append(h.committed_offsets(
                    self.broker.bootstrap, "p-group", self.topic, PARTITIONS))
                kpipe = h.Kpipe(config)
        finally:
            stop_traffic.set()
            producer.join(120)
        loop_seconds = time.monotonic() - started
        try:
            self.wait_caught_up(kpipe, timeout=180)
        finally:
            kpipe.stop()

        # The audit topic takes every redelivered repeat (about a second of work per kill on a
        # slow machine): when the broker dropped its oldest records, only the audit check goes.
        audit_whole = h.start_offsets(self.broker.bootstrap, f"{self.topic}.audit",
                                      PARTITIONS) == {p: 0 for p in range(PARTITIONS)}
        for topic in (self.topic, f"{self.topic}.out", f"{self.topic}.errors"):
            self.assertEqual(h.start_offsets(self.broker.bootstrap, topic, PARTITIONS),
                             {p: 0 for p in range(PARTITIONS)},
                             f"the embedded broker dropped the oldest records of {topic}: the "
                             f"test wrote too much for it to tell loss")
        output = ids_of(h.kcat_consume(self.broker.bootstrap, f"{self.topic}.out"))
        audit = ids_of(h.kcat_consume(self.broker.bootstrap, f"{self.topic}.audit"))
        errors = h.kcat_consume(self.broker.bootstrap, f"{self.topic}.errors")
        lost = traffic.valid_ids - set(output)
        self.assertFalse(lost, f"{len(lost)} ids never reached the output, e.g. {sorted(lost)[:3]}")
        self.assertEqual(set(output) - traffic.valid_ids, set())
        self.assertEqual(errors, [], "no message is bad here")
        duplicated = {i: n for i, n in output.items() if n > 1}
        first = self.input_offsets()
        # An id written twice must have been uncommitted at some kill: in flight (effect done,
        # confirm not) or done and not yet committed (then the store turns it into an audit).
        for msg_id in duplicated:
            partition, offset = first[msg_id]
            self.assertTrue(any(offset >= c[partition] if c[partition] is not None else True
                                for c in committed_at_kill),
                            f"{msg_id} (partition {partition} offset {offset}) was written "
                            f"twice but was committed before every kill")
        extra_copies = sum(n - 1 for n in duplicated.values())
        bound = kills * MAX_PENDING * PARTITIONS
        self.assertLessEqual(extra_copies, bound)
        # Deliberate duplicates: audited (unless the first copy was itself caught by a kill).
        unaudited = {i for i in traffic.duplicated_ids if i not in audit and i not in duplicated}
        if audit_whole:
            self.assertFalse(unaudited,
                             f"deliberate duplicates not audited: {sorted(unaudited)[:3]}")
        print(f"\nredis crash loop: {kills} kills in {loop_seconds:.0f} s, {produced[0]} messages "
              f"({len(traffic.valid_ids)} ids, {len(traffic.duplicated_ids)} sent twice), "
              f"lost 0, ids written twice {len(duplicated)} ({extra_copies} extra copies; "
              f"bound {bound}), audit records {sum(audit.values())}; in flight just before the "
              f"kills: mean {sum(inflight_at_kill) / len(inflight_at_kill):.0f}, "
              f"max {max(inflight_at_kill):.0f}"
              f"{'' if audit_whole else ' (audit topic truncated by the broker: not checked)'}",
              file=sys.stderr)

    def test_redis_stopped_for_10s_nothing_passes_undeduplicated_nothing_lost(self):
        config = self.config(self.start_redis())
        traffic = Traffic(seed=7, duplicate_share=0.1)
        kpipe = h.Kpipe(config)
        try:
            h.kcat_produce(self.broker.bootstrap, self.topic, traffic.batch(500))
            self.wait_caught_up(kpipe)
            self.redis.pause()
            paused_at = time.monotonic()
            while time.monotonic() - paused_at < 10:
                h.kcat_produce(self.broker.bootstrap, self.topic, traffic.batch(100))
                time.sleep(0.5)
            # Blocked at the dedup stage, not skipped past it.
            blocked = kpipe.metric_sum("kpipe_errors_total", pipeline="p", stage="dedup",
                                       **{"class": "blocking"})
            outputs_while_paused = len(h.kcat_consume(self.broker.bootstrap, f"{self.topic}.out"))
            self.redis.resume()
            resumed_at = time.monotonic()
            self.wait_caught_up(kpipe)
            recovered = time.monotonic() - resumed_at
        finally:
            kpipe.stop()
        self.assertGreater(blocked, 0, "the outage should show as blocking dedup errors")
        output = ids_of(h.kcat_consume(self.broker.bootstrap, f"{self.topic}.out"))
        audit = ids_of(h.kcat_consume(self.broker.bootstrap, f"{self.topic}.audit"))
        self.assertEqual(set(output), traffic.valid_ids, "every id reaches the output")
        self.assertEqual({i: n for i, n in output.items() if n > 1}, {}, "and only once")
        self.assertEqual(set(audit), traffic.duplicated_ids, "deliberate duplicates are audited")
        print(f"\nredis SIGSTOP 10 s: {len(traffic.valid_ids)} ids, "
              f"{len(traffic.duplicated_ids)} sent twice, {int(blocked)} blocking dedup errors, "
              f"{outputs_while_paused} output records by the end of the pause (500 before it), "
              f"caught up {recovered:.1f} s after SIGCONT", file=sys.stderr)

    def test_lmdb_remembers_ids_across_restarts_and_crashes(self):
        config = self.config("{ids: {type: lmdb, path: dedup-db, ttl: 1d}}")
        first = [l for l in Traffic(seed=8, duplicate_share=0).batch(300)]
        second = [l for l in Traffic(seed=9, duplicate_share=0).batch(300)]
        kpipe = h.Kpipe(config)
        try:
            h.kcat_produce(self.broker.bootstrap, self.topic, first)
            self.wait_caught_up(kpipe)
        finally:
            self.assertEqual(kpipe.stop(), 0)
        # A clean restart: the same ids again are duplicates.
        kpipe = h.Kpipe(config)
        try:
            h.kcat_produce(self.broker.bootstrap, self.topic, first)
            self.wait_caught_up(kpipe)
            h.kcat_produce(self.broker.bootstrap, self.topic, second)
            self.wait_caught_up(kpipe)
        finally:
            kpipe.kill()  # a crash: what was confirmed must be on disk already
        kpipe = h.Kpipe(config)
        try:
            h.kcat_produce(self.broker.bootstrap, self.topic, second)
            self.wait_caught_up(kpipe)
        finally:
            kpipe.stop()
        output = ids_of(h.kcat_consume(self.broker.bootstrap, f"{self.topic}.out"))
        audit_records = h.kcat_consume(self.broker.bootstrap, f"{self.topic}.audit")
        audit = ids_of(audit_records)
        expected = {json.loads(l.split("\t", 1)[1])["msg_id"] for l in first + second}
        self.assertEqual(set(output), expected)
        self.assertEqual({i: n for i, n in output.items() if n > 1}, {})
        self.assertEqual(set(audit), expected, "both resends are recognized as duplicates")
        self.assertEqual(len(audit_records), 600)
        reasons = {r["headers"].get("kpipe.audit.reason", "") for r in audit_records}
        self.assertTrue(all("already processed" in r for r in reasons), reasons)


if __name__ == "__main__":
    unittest.main(verbosity=2)
