#!/usr/bin/python3
"""End to end: kcat produces ≥10,000 user events (valid, invalid, duplicates) to kpipe's
embedded broker; `kpipe run` routes them; kcat reads the output, error and audit topics back.
Asserts exact contents, error headers, committed offsets (read with python3-kafka), a clean
SIGTERM exit, and that a second run over the same group reprocesses nothing.
"""
import collections
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PARTITIONS = 4
PIPELINE = """
name: user-events
input: {topic: user-events, group: e2e-group}
key: /user_id
schema: schemas/user-event.json
dedup: {id: /msg_id, store: ids, on_duplicate: audit}
output: {topic: users}
errors: {topic: user-events.errors, audit_topic: user-events.audit}
"""
TOPICS = ["user-events", "users", "user-events.errors", "user-events.audit"]


def pairs(records):
    return collections.Counter((r["key"], r["value"] if r["value"] is not None else "")
                               for r in records)


class EndToEndTest(unittest.TestCase):
    N = 12000

    @classmethod
    def setUpClass(cls):
        cls.broker = h.Broker([f"{t}:{PARTITIONS}" for t in TOPICS])
        cls.config = h.ConfigDir(cls.broker.bootstrap, {"user-events": PIPELINE})
        cls.lines, cls.expect = h.generate(cls.N, seed=7, invalid=0.06, duplicates=0.06)
        h.kcat_produce(cls.broker.bootstrap, "user-events", cls.lines)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.config.cleanup()

    def test_routes_everything_exactly_once_and_commits(self):
        expect = self.expect
        self.assertGreaterEqual(len(expect["output"]), 10000 * 0.85)
        self.assertGreater(len(expect["errors"]), 300)
        self.assertGreater(len(expect["audit"]), 300)

        # given: all input produced; when: kpipe runs until every message is accounted for
        kpipe = h.Kpipe(self.config)
        try:
            h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total") >= self.N, 180,
                       "all messages processed")
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="ok"),
                             len(expect["output"]))
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="invalid"),
                             len(expect["errors"]))
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="duplicate"),
                             len(expect["audit"]))
            # lag is measured against the stored position: 0 once everything is done
            h.wait_for(lambda: kpipe.metric_sum("kpipe_consumer_lag_messages") == 0, 30, "lag 0")
            # every queue a message can wait in is a metric; all empty once the work is done
            queues = {dict(labels)["queue"]: v for (name, labels), v in kpipe.metrics().items()
                      if name == "kpipe_queue_depth"}
            self.assertEqual(set(queues), {"consumer", "waiting", "blocked", "producer"})
            h.wait_for(lambda: kpipe.metric_sum("kpipe_queue_depth") == 0, 10, "queues empty")
            # partition counts of input and output, read from the cluster's metadata
            self.assertEqual(kpipe.metric_sum("kpipe_topic_partitions", topic="user-events"),
                             PARTITIONS)
            self.assertEqual(kpipe.metric_sum("kpipe_topic_partitions", topic="users"),
                             PARTITIONS)
            self.assertEqual(kpipe.metric_sum("kpipe_partition_count_changes_total"), 0)
            self.assertEqual(kpipe.metric_sum("kpipe_paused_partitions"), 0)
            # latency histograms: one observation per message (sink: per output write)
            self.assertEqual(kpipe.metric_sum("kpipe_processing_seconds_count"), self.N)
            self.assertEqual(kpipe.metric_sum("kpipe_end_to_end_seconds_count"), self.N)
            self.assertEqual(kpipe.metric_sum("kpipe_sink_seconds_count", sink="kafka"),
                             len(expect["output"]))
            h.wait_for(lambda: kpipe.metric_sum("kpipe_consumer_lag_seconds") == 0, 10,
                       "lag 0 s")
            # (sampled once a second: the messages may all be done before the first sample)
            h.wait_for(lambda: kpipe.metric_sum("kpipe_partition_status", status="ok")
                       == PARTITIONS, 10, "every partition ok")
            self.assertEqual(kpipe.metric_sum("kpipe_consumer_status", status="ok"), 1)
            self.assertEqual(kpipe.get("/readyz"), "ready\n")
            self.assertEqual(kpipe.metric_sum("kpipe_blocked_keys"), 0)
        finally:
            code = kpipe.stop()
        self.assertEqual(code, 0, kpipe.log_text())

        # then: each topic holds exactly the expected records
        out = h.kcat_consume(self.broker.bootstrap, "users")
        errors = h.kcat_consume(self.broker.bootstrap, "user-events.errors")
        audit = h.kcat_consume(self.broker.bootstrap, "user-events.audit")
        self.assertEqual(pairs(out), collections.Counter(map(tuple, expect["output"])))
        self.assertEqual(pairs(errors),
                         collections.Counter((k, v) for k, v, _ in expect["errors"]))
        self.assertEqual(pairs(audit), collections.Counter(map(tuple, expect["audit"])))

        # error records say where they came from and why, at the stage the generator expects
        stage_of = {(k, v): s for k, v, s in expect["errors"]}
        for r in errors:
            hd = r["headers"]
            self.assertEqual(hd["kpipe.error.stage"], stage_of[(r["key"], r["value"] or "")], r)
            self.assertTrue(hd["kpipe.error.reason"], r)
            self.assertEqual(hd["kpipe.error.class"], "non_blocking")
            self.assertEqual(hd["kpipe.origin.topic"], "user-events")
            self.assertEqual(hd["kpipe.pipeline"], "user-events")
            self.assertIn(int(hd["kpipe.origin.partition"]), range(PARTITIONS))
            self.assertGreaterEqual(int(hd["kpipe.origin.offset"]), 0)
        reasons = {r["headers"]["kpipe.error.stage"]: r["headers"]["kpipe.error.reason"]
                   for r in errors}
        self.assertRegex(reasons["schema"], r"^at /")
        self.assertIn("not valid JSON", reasons["decode"] + " ".join(
            r["headers"]["kpipe.error.reason"] for r in errors))
        for r in audit:
            self.assertIn("duplicate", r["headers"]["kpipe.audit.reason"])

        # output records are keyed by user and placed where a Java client would put them
        # (murmur2; Kafka's own test vectors check the reference implementation first)
        for key, signed in [("21", -973932308), ("foobar", -790332482), ("abc", 479470107),
                            ("a-little-bit-long-string", -985981536)]:
            self.assertEqual(h.murmur2(key.encode()), signed & 0xFFFFFFFF, key)
        for r in out:
            self.assertEqual(r["partition"], h.java_partition(r["key"], PARTITIONS), r["key"])

        # committed offsets (read by a third-party client) are at the end of the input
        ends = h.end_offsets(self.broker.bootstrap, "user-events", PARTITIONS)
        committed = h.committed_offsets(self.broker.bootstrap, "e2e-group", "user-events",
                                        PARTITIONS)
        self.assertEqual(committed, ends)
        self.assertEqual(sum(ends.values()), self.N)

        # when: a second run over the same group
        kpipe = h.Kpipe(self.config)
        try:
            h.wait_for(lambda: kpipe.metric_sum("kpipe_assigned_partitions") == PARTITIONS, 60,
                       "partitions assigned")
            time.sleep(3)  # time to fetch anything that was (wrongly) not committed
            # then: nothing is reprocessed
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total"), 0)
        finally:
            self.assertEqual(kpipe.stop(), 0)
        self.assertEqual(len(h.kcat_consume(self.broker.bootstrap, "users")), len(out))


if __name__ == "__main__":
    unittest.main(verbosity=2)
