#!/usr/bin/python3
"""Losing the partitions while deliveries are failing must not lose messages to dedup.

kpipe consumes while every Produce request fails (mock cluster error injection), so its
messages wait for retries (30 s backoff) while holding their dedup reservations. The broker then
goes down for longer than the session timeout: the group drops the member, kpipe's assignment
is lost, and when the broker is back the same partition is assigned to kpipe again. kpipe reads
the same messages again: they must be processed, not taken for duplicates of its own stale
reservations (that would commit them with no output: lost).
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PIPELINE = """
name: events
input: {topic: events, group: rebalance-group}
key: /user_id
dedup: {id: /msg_id}
output: {topic: events.out}
errors: {topic: events.errors, audit_topic: events.audit, retry: {initial: 30s, max: 30s}}
"""
TOPICS = ["events:1", "events.out:1", "events.errors:1", "events.audit:1"]
N = 50


class RebalanceTest(unittest.TestCase):
    def test_in_flight_messages_of_a_lost_assignment_are_processed_again(self):
        broker = h.Broker(TOPICS)
        # Failed deliveries reach kpipe after 2 s instead of librdkafka's 300 s.
        config = h.ConfigDir(broker.bootstrap, {"events": PIPELINE},
                             producer_properties={"message.timeout.ms": 2000})
        kpipe = None
        try:
            lines = [f'u-{i}\t{{"user_id":"u-{i}","msg_id":"id-{i}"}}' for i in range(N)]
            h.kcat_produce(broker.bootstrap, "events", lines)
            broker.fault("errors Produce 100000 NOT_ENOUGH_REPLICAS")

            kpipe = h.Kpipe(config)
            h.wait_for(lambda: kpipe.metric_sum("kpipe_errors_total", **{"class": "blocking"})
                       >= N, 30, "every delivery failed and waits for a retry")
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total"), 0)

            broker.fault("down 1")
            time.sleep(9)  # > session.timeout.ms (6 s in tests): the member is dropped
            broker.fault("up 1")
            broker.fault("clear Produce")
            h.wait_for(lambda: "partitions lost" in kpipe.log_text(), 30, "assignment lost")
            h.wait_for(lambda: kpipe.log_text().count('"msg":"partitions assigned"') >= 2, 60,
                       "partition assigned again")

            # well before the stale retries (30 s) would fire: the redelivered copies did it
            h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total", outcome="ok") == N, 15,
                       "every message written by the new assignment")
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="duplicate"), 0)
            out = {r["key"] for r in h.kcat_consume(broker.bootstrap, "events.out")}
            self.assertEqual(out, {f"u-{i}" for i in range(N)})
            self.assertEqual(h.kcat_consume(broker.bootstrap, "events.audit"), [])
        finally:
            if kpipe is not None:
                self.assertEqual(kpipe.stop(timeout=60), 0, kpipe.log_text())
            broker.stop()
            config.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
