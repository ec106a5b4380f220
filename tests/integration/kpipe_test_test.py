"""`kpipe test`: the shipped pipeline tests pass; broken pipelines and bad test files fail with
a message that names the case (or file:line) and the reason; --junit writes parseable XML.
Offline: no broker is started."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
from harness import KPIPE, SOURCE_DIR  # noqa: E402


def kpipe_test(*args, cwd=None):
    return subprocess.run([KPIPE, "test", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


class KpipeTestTest(unittest.TestCase):
    def setUp(self):
        # A copy of config/ and schemas/, laid out as in the repository, to break at will.
        self.dir = tempfile.mkdtemp(prefix="kpipe-test-it-")
        shutil.copytree(os.path.join(SOURCE_DIR, "config"), os.path.join(self.dir, "config"))
        shutil.copytree(os.path.join(SOURCE_DIR, "schemas"), os.path.join(self.dir, "schemas"))
        self.config = os.path.join(self.dir, "config", "kpipe.yaml")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def edit(self, relative, old, new):
        path = os.path.join(self.dir, relative)
        with open(path) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w") as f:
            f.write(text.replace(old, new))

    def test_shipped_examples_pass(self):
        result = kpipe_test("config/kpipe.yaml", cwd=SOURCE_DIR)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertRegex(result.stdout, r"\n\d+ passed, 0 failed\n$")
        self.assertIn("PASS config/pipelines/user-events.test.yaml: ", result.stdout)
        self.assertIn("PASS config/pipelines/payments.test.yaml: ", result.stdout)
        self.assertNotIn("FAIL", result.stdout)

    def test_wrong_key_pointer_fails_naming_case_and_reason(self):
        self.edit("config/pipelines/user-events.yaml", "key: /user_id ", "key: /userid ")
        result = kpipe_test(self.config)
        output = result.stdout + result.stderr
        self.assertNotEqual(result.returncode, 0, output)
        self.assertIn("FAIL ", output)
        self.assertIn("valid signup goes to users, keyed by user id", output)
        self.assertIn("route: expected output, got error", output)
        self.assertIn("reason: at /userid: missing key", output)
        self.assertRegex(output, r"\d+ passed, [1-9]\d* failed")

    def test_schema_rejecting_a_valid_case_fails_with_the_explanation(self):
        self.edit("schemas/user-event.json", '"ts": {"type": "integer"', '"ts": {"type": "string"')
        result = kpipe_test(self.config)
        output = result.stdout + result.stderr
        self.assertNotEqual(result.returncode, 0, output)
        self.assertRegex(output, r"FAIL \S+user-events.test.yaml:\d+: valid signup goes to users")
        self.assertIn('at /ts: 1700000000000 is not of type "string"', output)

    def test_bad_test_file_is_reported_with_file_and_line(self):
        bad = os.path.join(self.dir, "bad.test.yaml")
        with open(bad, "w") as f:
            f.write("pipeline: user-events\n"
                    "cases:\n"
                    "  - name: no input\n"
                    "    expect: {route: output}\n"
                    "  - name: typo\n"
                    "    input: {value: {}}\n"
                    "    expcet: {route: error}\n")
        result = kpipe_test(self.config, bad)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f'{bad}:3:5: cases[0].input: missing required key "input"', result.stderr)
        self.assertIn(f'{bad}:7:5: cases[1].expcet: unknown key "expcet" (did you mean "expect"?)',
                      result.stderr)

    def test_junit_is_parseable_xml(self):
        self.edit("config/pipelines/payments.yaml", "key: /account_id", "key: /account")
        junit = os.path.join(self.dir, "junit.xml")
        result = kpipe_test(self.config, "--junit", junit)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        root = ET.parse(junit).getroot()
        self.assertEqual(root.tag, "testsuites")
        suites = {os.path.basename(s.get("name")): s for s in root.findall("testsuite")}
        self.assertEqual(set(suites), {"payments.test.yaml", "user-events.test.yaml"})
        self.assertEqual(suites["user-events.test.yaml"].get("failures"), "0")
        payments = suites["payments.test.yaml"]
        failures = [c for c in payments.findall("testcase") if c.find("failure") is not None]
        self.assertGreater(len(failures), 0)
        self.assertEqual(payments.get("failures"), str(len(failures)))
        self.assertIn("route: expected output, got error",
                      failures[0].find("failure").get("message"))
        self.assertTrue(re.fullmatch(r"\d+", failures[0].get("line")))

    def test_record_then_pass(self):
        test_file = os.path.join(self.dir, "config", "pipelines", "payments.test.yaml")
        self.edit("config/pipelines/payments.test.yaml", "partition: 2}", "partition: 1}")
        self.assertEqual(kpipe_test(self.config, test_file).returncode, 1)
        recorded = kpipe_test(self.config, test_file, "--record")
        self.assertEqual(recorded.returncode, 0, recorded.stdout + recorded.stderr)
        self.assertIn("RECORDED ", recorded.stdout)
        again = kpipe_test(self.config, test_file, "--json")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)
        self.assertIn('"failed":0', again.stdout)


if __name__ == "__main__":
    unittest.main()
