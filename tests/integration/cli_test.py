#!/usr/bin/python3
"""The command line: `kpipe check` on the shipped config and on a broken one (every error with
file:line:column, exit 1), `kpipe run` refusing a broken config without starting anything,
`kpipe version`, and `kpipe broker` answering a third-party client (kcat metadata)."""
import os
import re
import socket
import subprocess
import sys
import unittest
import urllib.error

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

BROKEN_PIPELINE = """name: broken
input: {topc: in}
key: user_id
schema: schemas/missing.json
output: {topic: out}
errors:
  retry: {initial: 1m, max: 1s}
"""


def kpipe(*args, timeout=30):
    return subprocess.run([h.KPIPE, *args], capture_output=True, text=True, timeout=timeout)


class CliTest(unittest.TestCase):
    def test_version(self):
        r = kpipe("version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^kpipe \d+\.\d+\.\d+")

    def test_check_accepts_the_shipped_config(self):
        r = kpipe("check", os.path.join(h.SOURCE_DIR, "config", "kpipe.yaml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK, 2 pipelines", r.stdout)

    def test_check_reports_every_error_with_file_line_column(self):
        config = h.ConfigDir("127.0.0.1:9", {"broken": BROKEN_PIPELINE},
                             extra="unknown_top_level: 1\n")
        try:
            r = kpipe("check", config.path)
            self.assertEqual(r.returncode, 1)
            pipeline_file = os.path.join(config.dir, "pipelines", "broken.yaml")
            want = [
                (config.path, 6, "unknown key \"unknown_top_level\""),
                (pipeline_file, 2, "unknown key \"topc\" (did you mean \"topic\"?)"),
                (pipeline_file, 2, "missing required key \"group\""),
                (pipeline_file, 3, "is not a JSON pointer"),
                (pipeline_file, 4, "does not exist"),
                (pipeline_file, 7, "greater than max"),
            ]
            for path, line, text in want:
                self.assertRegex(r.stderr, re.escape(path) + f":{line}:\\d+: .*" + re.escape(text))
            self.assertIn("errors", r.stderr.splitlines()[-1])
        finally:
            config.cleanup()

    def test_check_asks_librdkafka_about_properties(self):
        config = h.ConfigDir("127.0.0.1:9", {}, consumer_properties={"no.such.property": 1})
        try:
            r = kpipe("check", config.path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("no.such.property", r.stderr)
        finally:
            config.cleanup()

    def test_check_builds_http_outputs(self):
        # valid YAML that only the HTTP sink itself refuses: a framing header
        pipeline = ("name: hook\ninput: {topic: in, group: g}\nkey: /k\n"
                    "output: {http: {url: 'http://127.0.0.1:9/x', "
                    "headers: {Content-Length: '5'}}}\n")
        config = h.ConfigDir("127.0.0.1:9", {"hook": pipeline})
        try:
            r = kpipe("check", config.path)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("pipeline hook: output.http.headers", r.stderr)
            self.assertIn("Content-Length", r.stderr)
        finally:
            config.cleanup()

    def test_readyz_waits_for_the_consumer_group(self):
        # no broker listens: alive (/healthz) but not ready (/readyz) and it says why
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            nowhere = f"127.0.0.1:{s.getsockname()[1]}"
        pipeline = "name: p\ninput: {topic: in, group: g1}\nkey: /k\noutput: {topic: out}\n"
        config = h.ConfigDir(nowhere, {"p": pipeline})
        kpipe_run = h.Kpipe(config)
        try:
            with self.assertRaises(urllib.error.HTTPError) as caught:
                kpipe_run.get("/readyz")
            self.assertEqual(caught.exception.code, 503)
            self.assertIn("p: waiting for an assignment from consumer group g1",
                          caught.exception.read().decode())
        finally:
            self.assertEqual(kpipe_run.stop(), 0, kpipe_run.log_text())
            config.cleanup()

    def test_run_refuses_a_broken_config_and_starts_nothing(self):
        config = h.ConfigDir("127.0.0.1:9", {"broken": BROKEN_PIPELINE})
        try:
            r = kpipe("run", config.path)
            self.assertEqual(r.returncode, 1)
            self.assertIn("not started", r.stderr)
            with self.assertRaises(OSError):  # the HTTP port was never bound
                socket.create_connection(("127.0.0.1", config.http_port), timeout=1).close()
        finally:
            config.cleanup()

    def test_broker_serves_third_party_clients(self):
        broker = h.Broker(["orders:3"])
        try:
            r = subprocess.run([h.KCAT, "-L", "-b", broker.bootstrap, "-t", "orders"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('topic "orders" with 3 partitions', r.stdout)
        finally:
            broker.stop()
        self.assertEqual(broker.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
