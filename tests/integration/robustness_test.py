#!/usr/bin/python3
"""Failure modes that must not wedge or shrink a pipeline:
- a record too large to be written out again goes to the error topic without its value, and
  the messages after it keep flowing and get committed;
- an idle pipeline keeps its partitions: librdkafka is polled, so it never leaves the group
  for max.poll.interval.ms (the group would rebalance every few minutes otherwise).
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PARTITIONS = 2
PIPELINE = """
name: events
input: {topic: events, group: robust-group}
key: /user_id
output: {topic: events.out}
errors: {topic: events.errors, audit_topic: events.audit}
max_message_bytes: 2000000
"""
TOPICS = ["events", "events.out", "events.errors", "events.audit"]


class RobustnessTest(unittest.TestCase):
    def setUp(self):
        self.broker = h.Broker([f"{t}:{PARTITIONS}" for t in TOPICS])

    def tearDown(self):
        self.broker.stop()

    def test_oversized_record_goes_to_errors_without_value_and_the_pipeline_goes_on(self):
        config = h.ConfigDir(self.broker.bootstrap, {"events": PIPELINE})
        try:
            big = json.dumps({"user_id": "u-big", "blob": "x" * 1_100_000})
            small = [json.dumps({"user_id": f"u-{i}", "n": i}) for i in range(200)]
            # kcat may send what kpipe's producer (message.max.bytes 1,000,000) cannot forward
            lines = [f"u-{i}\t{v}" for i, v in enumerate(small[:100])] + [f"u-big\t{big}"] + \
                    [f"u-{i}\t{v}" for i, v in enumerate(small[100:], 100)]
            subprocess.run([h.KCAT, "-P", "-b", self.broker.bootstrap, "-t", "events", "-K", "\t",
                            "-p", "0", "-X", "message.max.bytes=3000000", "-q"],
                           input="".join(line + "\n" for line in lines), text=True, check=True,
                           timeout=60)
            kpipe = h.Kpipe(config)
            try:
                h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total") >= 201, 60,
                           "all messages routed")
                self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="ok"), 200)
                self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="invalid"), 1)
            finally:
                self.assertEqual(kpipe.stop(), 0, kpipe.log_text())
            errors = h.kcat_consume(self.broker.bootstrap, "events.errors")
            self.assertEqual(len(errors), 1)
            self.assertEqual(errors[0]["key"], "u-big")
            self.assertIsNone(errors[0]["value"])
            self.assertEqual(errors[0]["headers"]["kpipe.error.stage"], "size")
            self.assertIn("too large", errors[0]["headers"]["kpipe.error.value_omitted"])
            self.assertEqual(len(h.kcat_consume(self.broker.bootstrap, "events.out")), 200)
            committed = h.committed_offsets(self.broker.bootstrap, "robust-group", "events",
                                            PARTITIONS)
            self.assertEqual(committed[0], 201)
        finally:
            config.cleanup()

    def test_idle_pipeline_keeps_its_partitions(self):
        # librdkafka requires max.poll.interval.ms >= session.timeout.ms (6000 in tests)
        config = h.ConfigDir(self.broker.bootstrap, {"events": PIPELINE},
                             consumer_properties={"max.poll.interval.ms": 7000})
        try:
            kpipe = h.Kpipe(config)
            try:
                h.wait_for(lambda: kpipe.metric_sum("kpipe_assigned_partitions") == PARTITIONS,
                           30, "partitions assigned")
                time.sleep(16)  # more than twice max.poll.interval.ms with no traffic
                log = kpipe.log_text()
                self.assertNotIn("partitions lost", log)
                self.assertNotIn("maximum poll interval", log.lower())
                self.assertEqual(log.count("partitions assigned"), 1, log)
            finally:
                self.assertEqual(kpipe.stop(), 0)
        finally:
            config.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
