#!/usr/bin/python3
"""SIGTERM under traffic: kcat keeps producing while kpipe is stopped with SIGTERM and
restarted, three times. Every stop must drain and commit (exit 0), so that across all the
runs every input record reaches its topic exactly once: nothing lost, nothing produced twice.
"""
import collections
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PARTITIONS = 4
PIPELINE = """
name: user-events
input: {topic: user-events, group: sigterm-group}
key: /user_id
schema: schemas/user-event.json
dedup: {id: /msg_id}
output: {topic: users}
"""
TOPICS = ["user-events", "users", "user-events.errors", "user-events.audit"]


class SigtermUnderTrafficTest(unittest.TestCase):
    def test_restarts_lose_nothing_and_duplicate_nothing(self):
        broker = h.Broker([f"{t}:{PARTITIONS}" for t in TOPICS])
        config = h.ConfigDir(broker.bootstrap, {"user-events": PIPELINE})
        try:
            lines, expect = h.generate(40000, seed=11, invalid=0.03, duplicates=0.0)
            chunks = [lines[i:i + 1000] for i in range(0, len(lines), 1000)]
            done = threading.Event()

            def produce():
                for chunk in chunks:
                    h.kcat_produce(broker.bootstrap, "user-events", chunk)
                    time.sleep(0.75)  # ~30 s of traffic: room for three stop/start cycles
                done.set()

            producer = threading.Thread(target=produce)
            producer.start()
            kpipe = h.Kpipe(config)
            stops_under_traffic = 0
            for _ in range(3):
                # let it work on live traffic, then stop it in the middle of the stream
                h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total") >= 1000
                           or done.is_set(), 60, "traffic processed")
                stops_under_traffic += not done.is_set()
                print(f"stopping kpipe after {kpipe.metric_sum('kpipe_messages_total'):.0f} "
                      f"messages, producer done: {done.is_set()}", file=sys.stderr)
                code = kpipe.stop()
                if os.environ.get("KPIPE_TEST_VERBOSE"):
                    print(kpipe.log_text(), file=sys.stderr)
                self.assertEqual(code, 0, kpipe.log_text())
                self.assertIn("pipeline stopped", kpipe.log_text())
                kpipe = h.Kpipe(config)
            producer.join()
            self.assertTrue(done.is_set())
            self.assertGreaterEqual(stops_under_traffic, 2, "the stops missed the traffic")
            want = len(expect["output"]) + len(expect["errors"])
            h.wait_for(lambda: h.committed_total(broker.bootstrap, "sigterm-group", "user-events",
                                                 PARTITIONS) == len(lines),
                       120, "all input committed", interval=1)
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())

            out = h.kcat_consume(broker.bootstrap, "users")
            errors = h.kcat_consume(broker.bootstrap, "user-events.errors")
            got = collections.Counter((r["key"], r["value"]) for r in out)
            self.assertEqual(got, collections.Counter(map(tuple, expect["output"])),
                             "output differs: lost or duplicated records")
            self.assertEqual(len(out) + len(errors), want)
            self.assertEqual(len(errors), len(expect["errors"]))
        finally:
            broker.stop()
            config.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
