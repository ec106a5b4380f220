#!/usr/bin/python3
"""`kpipe replay`: a pipeline whose schema rejects some messages writes them to its error topic;
after the schema is fixed, replay writes them back to the input with their original key, value
and headers, and kpipe routes each to the output exactly once (a second replay's copies are
duplicates: audit topic). Also: the report, --dry-run and a --reason that matches nothing write
nothing, --until filters on the original time, and the errors replay reports before reading.
"""
import collections
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PARTITIONS = 4
TOPICS = ["orders", "orders.out", "orders.errors", "orders.audit"]
PIPELINE = """
name: orders
input: {topic: orders, group: replay-group}
key: /user_id
schema: schemas/order.json
dedup: {id: /msg_id, store: ids, on_duplicate: audit}
output: {topic: orders.out}
errors: {topic: orders.errors, audit_topic: orders.audit}
"""


def order_schema(amount_types):
    """Version 1 takes integer amounts (cents) only; version 2 also decimal strings."""
    return json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["msg_id", "user_id", "amount"],
        "properties": {
            "msg_id": {"type": "string"},
            "user_id": {"type": "string"},
            "amount": {"type": amount_types},
            "note": {"type": "string", "maxLength": 5},
        },
    })


def order(i, user, amount, note=None):
    doc = {"msg_id": f"m-{i}", "user_id": user, "amount": amount}
    if note is not None:
        doc["note"] = note
    return f"{user}\t{json.dumps(doc)}"


VALID = [order(i, f"u{i % 7}", 100 + i) for i in range(20)]
# Rejected by version 1 at /amount, accepted by version 2: what replay is for.
FIXABLE = [order(100 + i, f"u{i}", f"{i}.50") for i in range(10)]
# Rejected by both versions (at /note), and not JSON at all: must not be replayed.
STILL_BAD = [order(200 + i, f"n{i}", 1, note="far too long") for i in range(2)]
NOT_JSON = [f"j{i}\t{{not json {i}" for i in range(3)]


def kcat_produce_with_header(bootstrap, topic, lines, *headers):
    data = "".join(line + "\n" for line in lines)
    args = [a for header in headers for a in ("-H", header)]
    subprocess.run([h.KCAT, "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-q", *args,
                    "-X", "enable.idempotence=true", "-X", "partitioner=murmur2_random"],
                   input=data, text=True, check=True, timeout=60)


def config_dir(bootstrap):
    """A config with the orders pipeline and version 1 of its schema."""
    config = h.ConfigDir(bootstrap, {"orders": PIPELINE})
    with open(os.path.join(config.dir, "schemas", "order.json"), "w") as f:
        f.write(order_schema("integer"))
    return config


def replay(*args):
    return subprocess.run([h.KPIPE, "replay", *args], capture_output=True, text=True, timeout=120)


def pairs(records):
    return collections.Counter((r["key"], r["value"]) for r in records)


def split(line):
    key, value = line.split("\t", 1)
    return key, value


class ReplayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = h.Broker([f"{t}:{PARTITIONS}" for t in TOPICS], partitions=PARTITIONS)
        cls.config = config_dir(cls.broker.bootstrap)
        cls.schema = os.path.join(cls.config.dir, "schemas", "order.json")
        cls.b = cls.broker.bootstrap

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.config.cleanup()

    def replay(self, *args, code=0):
        r = replay(self.config.path, "--bootstrap", self.b, "--from", "orders.errors",
                   "--to", "orders", *args)
        self.assertEqual(r.returncode, code, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        if r.stderr:
            print(f"kpipe replay {' '.join(args)}: stderr:\n{r.stderr}", file=sys.stderr)
        return r

    def input_count(self):
        return sum(h.end_offsets(self.b, "orders", PARTITIONS).values())

    def test_replay_after_fixing_the_schema(self):
        # given: kpipe with schema version 1 routes valid and invalid orders
        h.kcat_produce(self.b, "orders", VALID + STILL_BAD + NOT_JSON)
        kcat_produce_with_header(self.b, "orders", FIXABLE, "traceparent=00-trace-01")
        total = len(VALID) + len(FIXABLE) + len(STILL_BAD) + len(NOT_JSON)
        kpipe = h.Kpipe(self.config)
        try:
            h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total") >= total, 60,
                       "all orders processed")
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="invalid"),
                             len(FIXABLE) + len(STILL_BAD) + len(NOT_JSON))
        finally:
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())
        errors = h.kcat_consume(self.b, "orders.errors")
        self.assertEqual(pairs(errors), collections.Counter(
            map(split, FIXABLE + STILL_BAD + NOT_JSON)))
        stages = collections.Counter(r["headers"]["kpipe.error.stage"] for r in errors)
        self.assertEqual(stages, {"schema": 12, "decode": 3})
        for r in errors:
            if r["key"].startswith("u"):
                self.assertRegex(r["headers"]["kpipe.error.reason"], r"^at /amount")
                self.assertEqual(r["headers"]["traceparent"], "00-trace-01")
        position = {split(line): None for line in FIXABLE}
        for r in errors:
            if (r["key"], r["value"]) in position:
                position[(r["key"], r["value"])] = f"orders.errors:{r['partition']}:{r['offset']}"
        # and: something in the error topic that kpipe did not write
        h.kcat_produce(self.b, "orders.errors", ["stray\t{\"not\": \"an error record\"}"])

        # when: the cause is fixed (version 2 takes decimal strings) and kpipe restarted
        with open(self.schema, "w") as f:
            f.write(order_schema(["integer", "string"]))
        kpipe = h.Kpipe(self.config)
        try:
            h.wait_for(lambda: kpipe.metric_sum("kpipe_assigned_partitions") == PARTITIONS, 60,
                       "partitions assigned")
            self.check_dry_runs_write_nothing(total)

            # when: replaying the records rejected at /amount
            r = self.replay("--reason", "^at /amount")
            # then: the report says what was done
            self.assertEqual(r.stdout,
                             "replay orders.errors -> orders: read 16 records from 4 partitions\n"
                             "  replayed 10 (stage schema: 10)\n"
                             "  skipped  1 not kpipe error records, 5 by --reason\n")
            # and: the input holds them again, as they were (key, value, headers) plus where
            # they were replayed from, placed by the Java partitioner
            replayed = [rec for rec in h.kcat_consume(self.b, "orders")
                        if "kpipe.replay.origin" in rec["headers"]]
            self.assertEqual(pairs(replayed), collections.Counter(map(split, FIXABLE)))
            for rec in replayed:
                self.assertEqual(rec["headers"], {
                    "traceparent": "00-trace-01",
                    "kpipe.replay.origin": position[(rec["key"], rec["value"])],
                }, rec)
                self.assertEqual(rec["partition"], h.java_partition(rec["key"], PARTITIONS))
            # and: kpipe now accepts every one of them
            h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total") >= len(FIXABLE), 60,
                       "replayed orders processed")
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="ok"), len(FIXABLE))

            # when: replaying a second time
            r = self.replay("--reason", "^at /amount")
            self.assertIn("  replayed 10 (stage schema: 10)\n", r.stdout)
            # then: kpipe takes the copies for what they are: duplicates
            h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total", outcome="duplicate")
                       >= len(FIXABLE), 60, "second replay processed")
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="ok"), len(FIXABLE))
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total", outcome="invalid"), 0)
        finally:
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())

        # then: every fixed order reached the output exactly once, under its original key
        out = h.kcat_consume(self.b, "orders.out")
        self.assertEqual(pairs(out), collections.Counter(map(split, VALID + FIXABLE)))
        for rec in out:
            if (rec["key"], rec["value"]) in position:
                self.assertEqual(rec["headers"]["traceparent"], "00-trace-01")
        audit = h.kcat_consume(self.b, "orders.audit")
        self.assertEqual(pairs(audit), collections.Counter(map(split, FIXABLE)))
        # and: the error topic holds nothing new
        self.assertEqual(len(h.kcat_consume(self.b, "orders.errors")), len(errors) + 1)

    def check_dry_runs_write_nothing(self, total):
        # --dry-run lists what it would replay and writes nothing
        r = self.replay("--reason", "^at /amount", "--dry-run")
        lines = r.stdout.splitlines()
        listed = [line for line in lines if line.startswith("would replay ")]
        self.assertEqual(len(listed), len(FIXABLE), r.stdout)
        for line in listed:
            self.assertRegex(line, r'^would replay orders\.errors:\d:\d+ key "u\d" '
                                   r'\(schema: at /amount.*\)$')
        self.assertEqual(lines[len(listed):], [
            "replay orders.errors -> orders (dry run: nothing written): "
            "read 16 records from 4 partitions",
            "  would replay 10 (stage schema: 10)",
            "  skipped  1 not kpipe error records, 5 by --reason",
        ])
        # a --reason that matches nothing replays nothing
        r = self.replay("--reason", "^no reason reads like this$")
        self.assertIn("  replayed 0\n", r.stdout)
        self.assertIn("  skipped  1 not kpipe error records, 15 by --reason\n", r.stdout)
        # --until before the orders were produced: nothing; --since an hour ago: everything
        r = self.replay("--until", "2020-01-01T00:00:00Z", "--dry-run")
        self.assertIn("  would replay 0\n", r.stdout)
        self.assertIn("  skipped  1 not kpipe error records, 15 by --until\n", r.stdout)
        r = self.replay("--since", "1h", "--dry-run")
        self.assertIn("  would replay 15 (stage schema: 12, decode: 3)\n", r.stdout)
        self.assertEqual(self.input_count(), total)


class ReplayErrorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.broker = h.Broker(["orders:2", "orders.errors:2", "crafted.errors:2"], partitions=2)
        cls.config = config_dir(cls.broker.bootstrap)

    @classmethod
    def tearDownClass(cls):
        cls.broker.stop()
        cls.config.cleanup()

    def test_usage_errors_exit_2(self):
        r = replay(self.config.path, "--from", "orders.errors")
        self.assertEqual(r.returncode, 2)
        self.assertIn("kpipe replay: missing --to TOPIC", r.stderr)
        self.assertIn("usage: kpipe", r.stderr)
        r = replay(self.config.path, "--from", "e", "--to", "in", "--since", "last tuesday")
        self.assertEqual(r.returncode, 2)
        self.assertIn('--since: "last tuesday" is not a time', r.stderr)

    def test_embedded_bootstrap_needs_an_address(self):
        config = config_dir("embedded")
        try:
            r = replay(config.path, "--from", "orders.errors", "--to", "orders")
            self.assertEqual(r.returncode, 2)
            self.assertIn('is "embedded"', r.stderr)
            self.assertIn("--bootstrap HOST:PORT", r.stderr)
            self.assertEqual(r.stdout, "")
        finally:
            config.cleanup()

    def test_missing_topics_are_reported_before_anything_is_read(self):
        r = replay(self.config.path, "--from", "no-such-topic", "--to", "orders")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("kpipe replay: topic no-such-topic does not exist", r.stderr)
        r = replay(self.config.path, "--from", "orders.errors", "--to", "no-such-input")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("kpipe replay: topic no-such-input does not exist", r.stderr)
        self.assertEqual(r.stdout, "")
        # and: asking did not create them (metadata of all topics, read with kcat)
        listed = subprocess.run([h.KCAT, "-L", "-b", self.broker.bootstrap, "-J"],
                                capture_output=True, text=True, check=True, timeout=30).stdout
        topics = {t["topic"] for t in json.loads(listed)["topics"]}
        self.assertIn("orders.errors", topics)
        self.assertFalse({"no-such-topic", "no-such-input"} & topics, topics)

    def test_an_empty_error_topic_replays_nothing(self):
        r = replay(self.config.path, "--from", "orders.errors", "--to", "orders")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "replay orders.errors -> orders: read 0 records from "
                                   "2 partitions\n  replayed 0\n")

    def test_crafted_records_and_failed_deliveries(self):
        # given: error records as kpipe writes them, but with a garbled time; one with an empty
        # stage; one whose value kpipe had to leave out
        b = self.broker.bootstrap
        kcat_produce_with_header(b, "crafted.errors", [f"k{i}\t{{\"i\": {i}}}" for i in range(3)],
                                 "kpipe.error.stage=schema", "kpipe.error.reason=at /i: no",
                                 "kpipe.origin.timestamp=yesterday")
        kcat_produce_with_header(b, "crafted.errors", ["m\t{}"], "kpipe.error.stage=",
                                 "kpipe.error.reason=r")
        kcat_produce_with_header(b, "crafted.errors", ["o\t{}"], "kpipe.error.stage=size",
                                 "kpipe.error.reason=r", "kpipe.error.value_omitted=9 bytes")
        args = [self.config.path, "--from", "crafted.errors", "--to", "orders"]
        r = replay(*args, "--since", "1h", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("  would replay 0\n  skipped  1 with malformed kpipe headers, 1 without "
                      "their value (too large), 3 without a kpipe.origin.timestamp\n", r.stdout)

        # when: every write to the cluster fails, and cannot be retried
        self.broker.fault("errors Produce 50 MSG_SIZE_TOO_LARGE")
        try:
            r = replay(*args)
        finally:
            self.broker.fault("clear Produce")
        # then: replay says so, and how many
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("  replayed 0\n", r.stdout)
        self.assertIn("  failed   3 (not written)\n", r.stdout)
        self.assertRegex(r.stderr, r"kpipe replay: 3 of 3 records could not be written to orders "
                                   r"\(first error: .*too large.*\)")
        self.assertEqual(sum(h.end_offsets(b, "orders", 2).values()), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
