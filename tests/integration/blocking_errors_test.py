#!/usr/bin/python3
"""Blocking vs non-blocking errors (issue #5), on the embedded broker:

- the error topic cannot be written (its partition leader is a broker that is down): the
  input partition's committed offset stops below the bad message, the messages of other keys
  still flow; when the broker is back, every record arrives and the group catches up;
- a poison message in the middle of a partition does not stop the messages after it;
- errors.max_attempts: an output that keeps failing sends the message to the error topic as
  class "exhausted" (instead of retrying forever, the default).
"""
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

FAST_FAILURES = {"message.timeout.ms": 1000, "reconnect.backoff.ms": 100,
                 "reconnect.backoff.max.ms": 200}
SCHEMA = {"type": "object", "required": ["msg_id", "user_id", "n"],
          "properties": {"n": {"type": "integer"}}}


def event(user, n, valid=True):
    value = {"msg_id": str(uuid.uuid4()), "user_id": user, "n": n if valid else "bad"}
    return f"{user}\t{json.dumps(value, separators=(',', ':'))}"


def pipeline(name, topic, extra=""):
    return f"""
name: {name}
input: {{topic: {topic}, group: {name}-group}}
key: /user_id
schema: schemas/n.json
dedup: {{id: /msg_id}}
output: {{topic: {topic}.out}}
errors: {{topic: {topic}.errors, audit_topic: {topic}.audit, retry: {{initial: 50ms, max: 500ms}}{extra}}}
"""


class BlockingErrorsTest(unittest.TestCase):
    def config(self, broker, pipelines, **kw):
        config = h.ConfigDir(broker.bootstrap, pipelines, **kw)
        with open(os.path.join(config.dir, "schemas", "n.json"), "w") as f:
            json.dump(SCHEMA, f)
        if not os.environ.get("KPIPE_TEST_KEEP"):
            self.addCleanup(config.cleanup)
        return config

    def test_error_topic_down_holds_the_offset_and_loses_nothing(self):
        topic = "pay"
        broker = h.Broker([f"{topic}:1", f"{topic}.out:1", f"{topic}.errors:1",
                           f"{topic}.audit:1"], brokers=2)
        self.addCleanup(broker.stop)
        # given: the error topic's only partition is led by broker 2, which is down (and every
        # other topic by broker 1)
        for t in (topic, f"{topic}.out", f"{topic}.audit"):
            broker.fault(f"leader {t} 0 1")
        broker.fault("coordinator group p-group 1")
        broker.fault(f"leader {topic}.errors 0 2")
        broker.fault("down 2")
        # (librdkafka's default message.timeout.ms, 300 s: the error record stays queued in
        # the producer. A shorter timeout would fail it back to kpipe, which would retry it, but
        # the idempotent producer stalls every partition while it drains timed-out messages.)
        config = self.config(broker, {"p": pipeline("p", topic)})
        kpipe = h.Kpipe(config)
        try:
            # when: 20 good messages of key a, one bad one of key b, then 20 good ones of key c
            lines = ([event("a", i) for i in range(20)] + [event("b", 0, valid=False)] +
                     [event("c", i) for i in range(20)])
            h.kcat_produce(broker.bootstrap, topic, lines)
            # then: the other keys' messages are written; the bad one is not, and is held
            h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total", outcome="ok") == 40,
                       30, "the good messages written")
            time.sleep(3)  # several auto-commit intervals
            committed = h.committed_offsets(broker.bootstrap, "p-group", topic, 1)[0]
            self.assertEqual(committed, 20, "committed past the message that is not written")
            self.assertEqual(kpipe.metric_sum("kpipe_inflight_messages"), 1)
            self.assertEqual(kpipe.metric_sum("kpipe_queue_depth", queue="producer"), 1)
            # Burrow's rules: the partition is stalled (position stuck, lag), the pipeline in error
            h.wait_for(lambda: kpipe.metric_sum("kpipe_partition_status", status="stall") == 1,
                       30, "partition status stall")
            self.assertEqual(kpipe.metric_sum("kpipe_consumer_status", status="error"), 1)
            self.assertEqual(kpipe.metric_sum("kpipe_consumer_status"), 1)  # one status at a time
            # when: the broker comes back
            broker.fault("up 2")
            # then: the error record arrives and the group catches up
            h.wait_for(lambda: h.committed_offsets(broker.bootstrap, "p-group", topic, 1)[0]
                       == 41, 60, "committed to the end", interval=0.5)
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="invalid"), 1)
            self.assertEqual(kpipe.metric_sum("kpipe_inflight_messages"), 0)
            h.wait_for(lambda: kpipe.metric_sum("kpipe_consumer_status", status="ok") == 1, 15,
                       "pipeline status ok again")
        finally:
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())
        errors = h.kcat_consume(broker.bootstrap, f"{topic}.errors")
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["key"], "b")
        self.assertEqual(errors[0]["headers"]["kpipe.error.class"], "non_blocking")
        self.assertEqual(errors[0]["headers"]["kpipe.error.stage"], "schema")
        out = h.kcat_consume(broker.bootstrap, f"{topic}.out")
        self.assertEqual(len(out), 40)

    def test_poison_message_does_not_stop_the_ones_after_it(self):
        topic = "poison"
        broker = h.Broker([f"{topic}:1", f"{topic}.out:1", f"{topic}.errors:1",
                           f"{topic}.audit:1"])
        self.addCleanup(broker.stop)
        config = self.config(broker, {"p": pipeline("poison", topic)})
        users = [f"u{i}" for i in range(10)]
        lines = [event(users[i % 10], i) for i in range(100)]
        lines += ["u3\t{\"msg_id\": \"x\", \"user_id\": \"u3\", \"n\": 1",  # cut JSON
                  "u4\t\xff\xfe not utf-8"]
        lines += [event(users[i % 10], 100 + i) for i in range(100)]
        h.kcat_produce(broker.bootstrap, topic, lines)
        kpipe = h.Kpipe(config)
        try:
            h.wait_for(lambda: h.committed_offsets(broker.bootstrap, "poison-group", topic, 1)[0]
                       == 202, 30, "committed to the end", interval=0.5)
        finally:
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())
        out = h.kcat_consume(broker.bootstrap, f"{topic}.out")
        ns = [json.loads(r["value"])["n"] for r in out]
        self.assertEqual(sorted(ns), list(range(200)))
        for user in users:  # per key, in input order
            mine = [json.loads(r["value"])["n"] for r in out if r["key"] == user]
            self.assertEqual(mine, sorted(mine), user)
        errors = h.kcat_consume(broker.bootstrap, f"{topic}.errors")
        self.assertEqual(sorted(r["headers"]["kpipe.error.stage"] for r in errors),
                         ["decode", "decode"])
        self.assertEqual(sorted(int(r["headers"]["kpipe.origin.offset"]) for r in errors),
                         [100, 101])

    def test_max_attempts_sends_a_failing_output_to_the_error_topic(self):
        topic = "ex"
        broker = h.Broker([f"{topic}:1", f"{topic}.out:1", f"{topic}.errors:1",
                           f"{topic}.audit:1"], brokers=2)
        self.addCleanup(broker.stop)
        # given: the output topic is unreachable, and errors.max_attempts is 3
        for t in (topic, f"{topic}.errors", f"{topic}.audit"):
            broker.fault(f"leader {t} 0 1")
        broker.fault("coordinator group ex-group 1")
        broker.fault(f"leader {topic}.out 0 2")
        broker.fault("down 2")
        config = self.config(broker, {"p": pipeline("ex", topic, ", max_attempts: 3")},
                             producer_properties=FAST_FAILURES)
        kpipe = h.Kpipe(config)
        try:
            h.kcat_produce(broker.bootstrap, topic, [event("a", i) for i in range(5)])
            # then: after 3 failed attempts each goes to the error topic as "exhausted"
            h.wait_for(lambda: h.committed_offsets(broker.bootstrap, "ex-group", topic, 1)[0]
                       == 5, 60, "committed to the end", interval=0.5)
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="error"), 5)
            self.assertEqual(kpipe.metric_sum("kpipe_errors_total", **{"class": "exhausted"}), 5)
            self.assertEqual(kpipe.metric_sum("kpipe_errors_total", **{"class": "blocking",
                                                                       "stage": "output"}), 15)
        finally:
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())
        errors = h.kcat_consume(broker.bootstrap, f"{topic}.errors")
        self.assertEqual(len(errors), 5)
        self.assertEqual({r["headers"]["kpipe.error.class"] for r in errors}, {"exhausted"})
        self.assertEqual({r["headers"]["kpipe.error.stage"] for r in errors}, {"output"})
        self.assertIn("gave up after 3 attempts", errors[0]["headers"]["kpipe.error.reason"])
        # in input order, with the original key and value
        self.assertEqual([json.loads(r["value"])["n"] for r in errors], list(range(5)))
        self.assertEqual({r["key"] for r in errors}, {"a"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
