#!/usr/bin/python3
"""Schemas on the command line: `kpipe explain` (every failure of a bad document, exit 1; an
outline without a document) and `kpipe check --against` (growth-only schema evolution: an
incompatible edit is refused naming the rule and the file, exit 1; `schema_evolution: any`
opts out, exit 0)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

USER_SCHEMA = os.path.join(h.SOURCE_DIR, "schemas", "user-event.json")

USERS_PIPELINE = """name: users
input: {topic: user-events, group: g}
key: /user_id
schema: schemas/user-event.json
output: {topic: users}
"""

PAYMENTS_PIPELINE = """name: payments
input: {topic: payments, group: g}
key: /account_id
schema:
  type_field: /type
  types:
    payment.authorized: schemas/payments/authorized.json
    payment.refunded: schemas/payments/refunded.json
output: {topic: payments.clean}
"""


def kpipe(*args, stdin=None, timeout=30):
    return subprocess.run([h.KPIPE, *args], capture_output=True, text=True, input=stdin,
                          timeout=timeout)


def edit_json(path, change):
    with open(path) as f:
        schema = json.load(f)
    change(schema)
    with open(path, "w") as f:
        json.dump(schema, f, indent=2)


class ExplainTest(unittest.TestCase):
    def test_bad_document_prints_every_failure(self):
        doc = {"msg_id": "abc", "user_id": "", "type": "user.exploded", "ts": -5,
               "data": {"age": 7}}
        r = kpipe("explain", USER_SCHEMA, "-", stdin=json.dumps(doc))
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stdout.splitlines()
        for fragment in ["at /msg_id: \"abc\" does not match pattern",
                         "at /user_id: ", "at /type: \"user.exploded\" is not one of",
                         "at /ts: -5 is less than minimum 0",
                         "at /data/age: 7 is less than minimum 13"]:
            self.assertTrue(any(line.startswith(fragment) for line in lines),
                            f"{fragment!r} not in {lines}")
        self.assertEqual(len(lines), 5, lines)

    def test_valid_document_from_a_file(self):
        doc = {"msg_id": "0b3c6a1e-2f4d-4c8e-9a7b-1c2d3e4f5a6b", "user_id": "u-1",
               "type": "user.updated", "ts": 1}
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(doc, f)
            f.flush()
            r = kpipe("explain", USER_SCHEMA, f.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "valid\n")

    def test_outline_without_a_document(self):
        r = kpipe("explain", USER_SCHEMA)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(document): object", r.stdout)
        self.assertIn("  msg_id*: string, pattern ", r.stdout)
        self.assertIn("  type*: one of \"user.signed_up\" | \"user.updated\" | \"user.deleted\"",
                      r.stdout)
        self.assertIn("    age: integer, minimum 13, maximum 150", r.stdout)
        self.assertIn("(* = required)", r.stdout)

    def test_usage_and_compile_errors_exit_2(self):
        self.assertEqual(kpipe("explain").returncode, 2)
        r = kpipe("explain", "/nonexistent/schema.json")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/schema.json", r.stderr)
        r = kpipe("explain", USER_SCHEMA, "-", stdin="{not json")
        self.assertEqual(r.returncode, 2)
        self.assertIn("not JSON", r.stderr)


class CheckAgainstTest(unittest.TestCase):
    def setUp(self):
        pipelines = {"users": USERS_PIPELINE, "payments": PAYMENTS_PIPELINE}
        self.old = h.ConfigDir("127.0.0.1:9", pipelines)
        self.new = h.ConfigDir("127.0.0.1:9", pipelines)

    def tearDown(self):
        self.old.cleanup()
        self.new.cleanup()

    def check(self):
        return kpipe("check", self.new.path, "--against", self.old.dir)

    def test_unchanged_and_grown_schemas_pass(self):
        def grow(schema):
            schema["properties"]["data"]["properties"]["plan"]["enum"].append("enterprise")
            schema["properties"]["locale"] = {"type": "string"}
            schema["required"].remove("ts")
        edit_json(os.path.join(self.new.dir, "schemas", "user-event.json"), grow)
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK, 2 pipelines", r.stdout)

    def test_incompatible_edit_names_the_rule_and_the_file(self):
        def narrow(schema):
            schema["required"].append("locale")
            schema["properties"]["data"]["properties"]["plan"]["enum"].remove("free")
        edit_json(os.path.join(self.new.dir, "schemas", "user-event.json"), narrow)
        edit_json(os.path.join(self.new.dir, "schemas", "payments", "refunded.json"),
                  lambda s: s.__setitem__("additionalProperties", False))
        r = self.check()
        self.assertEqual(r.returncode, 1, r.stdout)
        users_file = os.path.join(self.new.dir, "pipelines", "users.yaml")
        payments_file = os.path.join(self.new.dir, "pipelines", "payments.yaml")
        self.assertIn(f"{users_file}: pipeline users, schema schemas/user-event.json: "
                      "at /required: \"locale\" is newly required", r.stderr)
        self.assertIn(f"{users_file}: pipeline users, schema schemas/user-event.json: "
                      "at /properties/data/properties/plan/enum: \"free\" removed", r.stderr)
        self.assertIn(f"{payments_file}: pipeline payments, schema "
                      "schemas/payments/refunded.json: at /: additionalProperties false closes "
                      "an open schema", r.stderr)
        self.assertNotIn("authorized.json", r.stderr)
        self.assertIn("3 errors", r.stderr.splitlines()[-1])

    def test_a_removed_event_type_is_refused(self):
        with open(os.path.join(self.new.dir, "pipelines", "payments.yaml"), "w") as f:
            f.write(PAYMENTS_PIPELINE.replace(
                "    payment.refunded: schemas/payments/refunded.json\n", ""))
        r = self.check()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("pipeline payments: event type \"payment.refunded\" is no longer listed",
                      r.stderr)

    def test_schema_evolution_any_opts_out(self):
        edit_json(os.path.join(self.new.dir, "schemas", "user-event.json"),
                  lambda s: s["required"].append("locale"))
        with open(os.path.join(self.new.dir, "pipelines", "users.yaml"), "a") as f:
            f.write("schema_evolution: any\n")
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_an_unloadable_old_config_is_an_error(self):
        shutil.rmtree(os.path.join(self.old.dir, "schemas"))
        r = self.check()
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"--against {self.old.dir}: ", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
