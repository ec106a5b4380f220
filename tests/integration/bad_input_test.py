#!/usr/bin/python3
"""The bad-input corpus (issue #11), through a running kpipe and a real broker.

Messages, written with python3-kafka (a third-party client; kcat cannot send NUL bytes): each
bad one lands in the error topic with its stage and a reason, the valid ones around them reach
the output, and everything is committed. Config files, through the reload path: each bad edit
is refused with a clear error, and the previous config keeps running.
"""
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PARTITIONS = 1  # one key: everything in one partition, in order
MAX_BYTES = 300000
PIPELINE = f"""
name: events
input: {{topic: events, group: bad-input-group}}
key: /user_id
schema: schemas/user-event.json
dedup: {{id: /msg_id}}
output: {{topic: events.out}}
errors: {{topic: events.errors, audit_topic: events.audit}}
max_message_bytes: {MAX_BYTES}
"""
TOPICS = ["events", "events.out", "events.errors", "events.audit"]


def event(**fields):
    e = {"msg_id": str(uuid.uuid4()), "user_id": "u-1", "type": "user.updated",
         "ts": 1700000000000, **fields}
    return json.dumps(e, separators=(",", ":")).encode()


def padded_to(size):
    """A valid event of exactly `size` bytes."""
    base = event(data={"email": ""})
    pad = size - len(base) - len(',"pad":""')
    e = json.loads(base)
    e["pad"] = "x" * pad
    out = json.dumps(e, separators=(",", ":")).encode()
    assert len(out) == size, (len(out), size)
    return out


# name -> (value bytes or None for a tombstone, key, expected stage, part of the reason)
CASES = {
    "empty": (b"", b"u-1", "decode", "empty value"),
    "tombstone": (None, b"u-1", "decode", "tombstone"),
    "null_key": (b"", None, "decode", "empty value"),  # no key at all, not an empty one
    "truncated": (event()[:-7], b"u-1", "decode", "not valid JSON"),
    "bom": (b"\xef\xbb\xbf" + event(), b"u-1", "decode", "byte order mark"),
    "nul_inside": (event().replace(b'"u-1"', b'"u\x00-1"'), b"u-1", "decode", "NUL byte"),
    "nul_after": (event() + b"\x00junk", b"u-1", "decode", "NUL byte"),
    "invalid_utf8": (event().replace(b"user.updated", b"user.\xff\xfe"), b"u-1", "decode",
                     "not valid JSON"),
    "deep": (b'{"user_id":"u-1","x":' + b"[" * 100000 + b"]" * 100000 + b"}", b"u-1",
             "decode", "nested deeper than 128"),
    "over_limit": (padded_to(MAX_BYTES + 1), b"u-1", "size", "over max_message_bytes"),
    "huge_number": (event(ts=1).replace(b'"ts":1', b'"ts":1e400'), b"u-1", "decode",
                    "not valid JSON"),
    "duplicate_keys": (event().replace(b'"user_id":"u-1"', b'"user_id":"u-1","user_id":"u-2"'),
                       b"u-1", "decode", "written twice"),
    "array": (b"[1,2,3]", b"u-1", "decode", "top-level value is an array"),
    "number": (b"42", b"u-1", "decode", "top-level value is a number"),
    "key_wrong_type": (event(user_id={"id": 1}), b"u-1", "key", "is an object"),
    "key_empty": (event(user_id=""), b"u-1", "key", "empty string"),
    "id_wrong_type": (event(msg_id=[1]), b"u-1", "id", "is an array"),
    # A number is a valid id (its JSON text) for kpipe; this schema wants a uuid string.
    "id_number": (event(msg_id=12345), b"u-1", "schema", "at /msg_id"),
    "id_empty": (event(msg_id=""), b"u-1", "id", "empty string"),
    "schema": (event(ts=-5), b"u-1", "schema", "at /ts"),
}


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.broker = h.Broker([f"{t}:{PARTITIONS}" for t in TOPICS])
        self.config = h.ConfigDir(self.broker.bootstrap, {"events": PIPELINE})
        self.kpipe = h.Kpipe(self.config)

    def tearDown(self):
        try:
            self.assertEqual(self.kpipe.stop(), 0, self.kpipe.log_text())
        finally:
            self.broker.stop()
            self.config.cleanup()

    def produce(self, records):
        from kafka import KafkaProducer  # Debian's python3-kafka
        producer = KafkaProducer(bootstrap_servers=self.broker.bootstrap, api_version=(2, 5, 0),
                                 max_request_size=2 << 20)
        for key, value, headers in records:
            producer.send("events", key=key, value=value, headers=headers)
        producer.flush(60)
        producer.close()

    def test_every_bad_message_goes_to_errors_with_a_reason(self):
        at_limit = padded_to(MAX_BYTES)
        good_before, good_after = event(), event()
        records = [(b"u-1", good_before, [])]
        for name, (value, key, _, _) in CASES.items():
            records.append((key, value, [("case", name.encode())]))
        records += [(b"u-1", at_limit, [("case", b"at_limit")]), (b"u-1", good_after, [])]
        self.produce(records)

        h.wait_for(lambda: h.committed_offsets(self.broker.bootstrap, "bad-input-group",
                                               "events", PARTITIONS)
                   == h.end_offsets(self.broker.bootstrap, "events", PARTITIONS),
                   60, "everything committed")
        errors = {r["headers"].get("case"): r for r in
                  h.kcat_consume(self.broker.bootstrap, "events.errors")}
        rows = []
        for name, (value, key, stage, reason) in CASES.items():
            self.assertIn(name, errors, f"{name} is not in the error topic")
            record = errors[name]
            got_stage = record["headers"].get("kpipe.error.stage")
            got_reason = record["headers"].get("kpipe.error.reason", "")
            self.assertEqual(got_stage, stage, f"{name}: {got_reason}")
            self.assertIn(reason, got_reason, name)
            # The error record is the input record, byte for byte: a null key or value stays
            # null (kcat -J says null), an empty one stays empty.
            expected_key = None if key is None else key.decode()
            self.assertEqual(record["key"], expected_key, name)
            got_value = record["value"]
            if value is None:
                self.assertIsNone(got_value, name)
            else:
                self.assertIsNotNone(got_value, name)
                self.assertEqual(got_value.encode("utf-8", "surrogateescape"), value, name)
            rows.append(f"{name:16} {len(value or b''):7} B  {stage:7} {got_reason[:90]}")
        print("\n".join(rows), file=sys.stderr)
        out = h.kcat_consume(self.broker.bootstrap, "events.out")
        values = [r["value"].encode() for r in out]
        self.assertIn(good_before, values)
        self.assertIn(good_after, values)
        self.assertIn(at_limit, values, "a message at max_message_bytes is valid")
        self.assertEqual(len(out), 3)
        self.assertEqual(self.kpipe.get("/healthz"), "ok\n")

    def test_bad_config_edits_are_refused_and_the_old_config_runs_on(self):
        pipeline_file = os.path.join(self.config.dir, "pipelines", "events.yaml")
        bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
            f"*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)) + PIPELINE
        edits = {
            "billion laughs": (bomb, "unknown key"),
            "duplicate key": (PIPELINE + "key: /other\n", "duplicate key"),
            "tab": (PIPELINE.replace("key: /user_id", "key:\t/user_id\n\tbad: 1"), "events.yaml:"),
            "10 MB": (PIPELINE + "# " + "x" * (10 << 20) + "\n", "MiB"),
            "unknown key": (PIPELINE + "concurency: 8\n", "did you mean"),
        }
        failures = 0
        for name, (text, expected) in edits.items():
            started = time.monotonic()
            with open(pipeline_file + ".new", "w") as f:
                f.write(text)
            os.rename(pipeline_file + ".new", pipeline_file)
            failures += 1
            h.wait_for(lambda: self.kpipe.metric_sum("kpipe_config_reloads_total",
                                                     result="failure") >= failures,
                       30, f"the {name} edit refused")
            status = json.loads(self.kpipe.get("/status"))
            errors = status["config"]["last_reload"]["errors"]
            self.assertTrue(any(expected in e for e in errors), (name, errors))
            print(f"{name}: refused in {time.monotonic() - started:.2f} s: {errors[0][:120]}",
                  file=sys.stderr)
            self.assertEqual([p["name"] for p in status["pipelines"]], ["events"])
        # The previous config still runs: a valid message goes through.
        good = event()
        self.produce([(b"u-1", good, [])])
        h.wait_for(lambda: good.decode() in [r["value"] for r in
                                             h.kcat_consume(self.broker.bootstrap, "events.out")],
                   60, "traffic through the previous config")
        self.assertEqual(self.kpipe.metric_sum("kpipe_config_reloads_total", result="success"), 0)


if __name__ == "__main__":
    unittest.main()
