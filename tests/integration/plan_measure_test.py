"""`kpipe plan --measure PIPELINE` (issue #10): the pipeline's real worker runs against an
embedded broker of its own for a few seconds, and what one partition sustained feeds the plan.

The configs name a sentinel broker: a listening socket that must see no connection, as the
measurement must not need (or touch) the user's cluster. Stores: a memory store by default, the
configured one with --use-store (a real redis-server: the measurement's ids under their own
namespace, with a short TTL; LMDB: a scratch database, removed afterwards, also on SIGINT and
SIGTERM, which exit 130). HTTP outputs are refused without --allow-http, and measured against the
endpoint with it.
"""
import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

# The throughput window; the latency one is 1 s. Two seconds, so that a loaded 2-core machine
# still gets through the drain before W (else W is "not measured", with a warning, accepted).
SECONDS = "2"

PIPELINE = """name: events
input: {topic: events, group: events-group}
key: /user_id
schema: ../schemas/user-event.json
dedup: {id: /msg_id, store: ids}
output: {topic: events.out}
"""


def plan(*args):
    return subprocess.run([h.KPIPE, "plan", *args], capture_output=True, text=True, timeout=180)


class Sentinel:
    """The configured (real) broker: a socket listening on 127.0.0.1 that counts connections."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.accepted = 0

    def connections(self):
        """Connections made so far (the kernel completes them in the backlog: accepted here)."""
        while select.select([self.sock], [], [], 0)[0]:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                break
            conn.close()
            self.accepted += 1
        return self.accepted

    def close(self):
        self.sock.close()


def scratch_dirs(parent):
    return [n for n in os.listdir(parent) if ".plan-measure-" in n]


def assert_latency_or_warning(test, out):
    """W measured, or its absence explained: a loaded machine may not drain in time."""
    if "latency:     not measured (see the warnings)\n" in out:
        test.assertIn("warning:     W was not measured: ", out)
    else:
        test.assertRegex(out, r"latency:     W = [\d.]+ ms mean read → acknowledged "
                         r"\(p50 ≈ [\d.]+ m?s, p99 ≈ [\d.]+ m?s\), \d+ messages at \d+ msg/s")
        test.assertRegex(out, r"in flight:   \d+ messages \(L = λ·W")


class PlanMeasureTest(unittest.TestCase):
    def setUp(self):
        self.sentinel = Sentinel()
        self.addCleanup(self.sentinel.close)
        self.config = h.ConfigDir(self.sentinel.address, {"events": PIPELINE})
        self.addCleanup(self.config.cleanup)
        # tools/gen_events.py writes KEY<TAB>VALUE lines: a sample file as it is.
        lines, _ = h.generate(200, seed=7, invalid=0, duplicates=0)
        self.sample = os.path.join(self.config.dir, "samples.jsonl")
        with open(self.sample, "w") as f:
            f.write("\n".join(lines) + "\n")

    def tearDown(self):
        self.assertEqual(self.sentinel.connections(), 0,
                         "the configured broker was connected to")

    def lmdb_config(self):
        """A config whose store is LMDB (path with a trailing slash); returns it and its parent."""
        state = tempfile.mkdtemp(prefix="kpipe-plan-state-")
        self.addCleanup(shutil.rmtree, state, True)
        config = h.ConfigDir(self.sentinel.address, {"events": PIPELINE},
                             stores=f"{{ids: {{type: lmdb, path: '{state}/ids/', ttl: 7d}}}}")
        self.addCleanup(config.cleanup)
        return config, state

    def measure(self, *extra, pipeline="events", config=None):
        return plan("--throughput", "20k", "--measure", pipeline, "--config",
                    config or self.config.path, "--seconds", SECONDS, *extra)

    def test_text(self):
        result = self.measure("--sample", self.sample, "--brokers", "3")
        self.assertEqual(result.returncode, 0, result.stderr)
        out = result.stdout
        self.assertIn(f"measured:    pipeline events of {self.config.path}, one input partition "
                      "on an embedded broker in this process\n", out)
        self.assertRegex(out, r"samples:     200 messages, \d+ B on average, from "
                         + re.escape(self.sample) + "\n")
        self.assertIn("ids:         the id (/msg_id) of every copy is rewritten to a fresh unique "
                      "value of the same type and form, so that dedup sees new ids\n", out)
        self.assertIn("keys:        the ordering key (/user_id) of the copies is one of 10000 "
                      "values", out)
        self.assertIn("store:       ids (memory)\n", out)
        self.assertIn("output:      a private topic (4 partitions) on the embedded broker\n", out)
        m = re.search(r"throughput:  (\d+) msg/s per partition: (\d+) messages in ([\d.]+) s "
                      r"\(ok (\d+), invalid (\d+), duplicate (\d+), error (\d+)\)\n", out)
        self.assertTrue(m, out)
        rate, messages, ok, invalid, duplicate, error = (int(m.group(i)) for i in (1, 2, 4, 5, 6, 7))
        self.assertGreater(rate, 100, out)
        # Fresh ids: every copy passes the UUID pattern of the schema, none is a duplicate.
        self.assertEqual((ok, invalid, duplicate, error), (messages, 0, 0, 0), out)
        assert_latency_or_warning(self, out)
        # The normal plan follows, sized with the measured figure.
        self.assertRegex(out, r"\ntarget:      20000 msg/s × \d+ B")
        self.assertRegex(out, r"partitions:  \d+ \(")
        self.assertIn(f"{rate} msg/s each", out)
        self.assertIn("kpipe plan: measuring pipeline events", result.stderr)

    def test_json(self):
        # A user's `latest` would stall the measurement (the feeder writes before the worker
        # joins): it reads from the earliest offset, and says so.
        config = h.ConfigDir(self.sentinel.address, {"events": PIPELINE},
                             consumer_properties={"auto.offset.reset": "latest"})
        self.addCleanup(config.cleanup)
        result = self.measure("--sample", self.sample, "--json", config=config.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        doc = json.loads(result.stdout)
        m = doc["measurement"]
        self.assertIn("auto.offset.reset=latest of the config is replaced by earliest: the "
                      "measurement reads its input topic from the start", m["notes"])
        self.assertEqual(m["pipeline"], "events")
        self.assertEqual(m["sample_source"], self.sample)
        self.assertEqual(m["samples"], 200)
        self.assertGreater(m["messages"], 0)
        self.assertEqual(m["outcomes"], {"ok": m["messages"], "invalid": 0, "duplicate": 0,
                                         "error": 0})
        self.assertAlmostEqual(m["per_partition"], m["messages"] / m["seconds"], places=3)
        self.assertAlmostEqual(m["latency_load"], m["per_partition"] / 1.5, places=3)
        # The measured figures are the plan's inputs.
        self.assertEqual(doc["inputs"]["per_partition"], int(m["per_partition"]))
        self.assertEqual(doc["inputs"]["message_bytes"], m["sample_bytes"])
        self.assertGreaterEqual(doc["partitions"], 1)
        if m["latency_mean_seconds"] is None:  # a loaded machine: explained, not measured
            self.assertTrue(any(w.startswith("W was not measured: ") for w in m["warnings"]),
                            m["warnings"])
            return
        self.assertGreater(m["latency_messages"], 0)
        self.assertGreater(m["latency_mean_seconds"], 0)
        self.assertLessEqual(m["latency_p50_seconds"], m["latency_p99_seconds"])
        self.assertEqual(doc["inputs"]["latency_seconds"], m["latency_mean_seconds"])
        self.assertIsNotNone(doc["inflight"])

    def test_samples_from_the_pipelines_test_cases(self):
        # The demo config (embedded broker) and its `kpipe test` cases: no --sample needed.
        work = tempfile.mkdtemp(prefix="kpipe-plan-it-")
        self.addCleanup(shutil.rmtree, work, True)
        for d in ("config", "schemas"):
            shutil.copytree(os.path.join(h.SOURCE_DIR, d), os.path.join(work, d))
        result = self.measure("--json", pipeline="payments",
                              config=os.path.join(work, "config", "kpipe.yaml"))
        self.assertEqual(result.returncode, 0, result.stderr)
        m = json.loads(result.stdout)["measurement"]
        self.assertEqual(m["sample_source"],
                         "the cases of payments.test.yaml that expect the output")
        self.assertEqual(m["samples"], 2)
        self.assertEqual(m["outcomes"]["duplicate"], 0)
        self.assertEqual(m["outcomes"]["ok"], m["messages"])

    def test_errors(self):
        result = self.measure("--sample", self.sample, pipeline="nope")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f'kpipe plan --measure: no pipeline "nope" in {self.config.path} '
                      "(pipelines: events)", result.stderr)
        self.assertEqual(result.stdout, "")
        # No --sample, and no test cases for the pipeline.
        result = self.measure()
        self.assertEqual(result.returncode, 1)
        self.assertIn("kpipe plan --measure: no samples for pipeline events: pass --sample FILE "
                      "(JSON Lines: one message value per line, or KEY<TAB>VALUE)", result.stderr)
        # A sample line that is not JSON.
        bad = os.path.join(self.config.dir, "bad.jsonl")
        with open(bad, "w") as f:
            f.write('{"msg_id": "x"}\nnot json\n')
        result = self.measure("--sample", bad)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{bad}:2: not JSON", result.stderr)
        # Flags that need --measure, and --per-partition with it.
        result = plan("--throughput", "1k", "--message-size", "1", "--per-partition", "1",
                      "--sample", bad)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--sample goes with --measure PIPELINE", result.stderr)
        result = self.measure("--per-partition", "5k")
        self.assertEqual(result.returncode, 2)
        self.assertIn("--per-partition and --measure: give one", result.stderr)

    def test_redis_store_only_with_use_store(self):
        redis = h.Redis()
        self.addCleanup(redis.stop)
        config = h.ConfigDir(self.sentinel.address, {"events": PIPELINE},
                             stores=f"{{ids: {{type: redis, url: '{redis.url}', ttl: 7d, "
                                    f"reservation_ttl: 1h, timeout: 500ms}}}}")
        self.addCleanup(config.cleanup)

        def cli(*args):
            return subprocess.run(["redis-cli", "-p", str(redis.port), *args], capture_output=True,
                                  text=True, check=True, timeout=30).stdout.split()

        # By default a memory store: nothing is written to the configured one.
        result = self.measure("--sample", self.sample, config=config.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("store:       a memory store instead of ids (redis) (--use-store measures "
                      "with it, writing the measurement's ids to it)\n", result.stdout)
        self.assertEqual(cli("--scan", "--pattern", "kpipe:dedup:*"), [])

        result = self.measure("--sample", self.sample, "--use-store", config=config.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        store = re.search(r"store:       ids \(redis " + re.escape(redis.url) + r", --use-store\): "
                          r"the measurement's ids are kept under plan-measure.events and expire "
                          r"after 10 min; (\d+) ids written\n", result.stdout)
        self.assertTrue(store, result.stdout)
        m = re.search(r"\(ok (\d+), invalid 0, duplicate 0, error 0\)", result.stdout)
        self.assertTrue(m, result.stdout)
        written = int(store.group(1))
        self.assertGreaterEqual(written, int(m.group(1)))
        keys = cli("--scan", "--pattern", "kpipe:dedup:*")
        self.assertGreaterEqual(len(keys), written)
        self.assertTrue(all(k.startswith("kpipe:dedup:plan-measure.events:") for k in keys),
                        keys[:5])
        ttl = int(cli("PTTL", keys[0])[0])
        self.assertTrue(0 < ttl <= 600_000, ttl)

        redis.stop()
        result = self.measure("--sample", self.sample, "--use-store", config=config.path)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn(f"store ids ({redis.url}) does not answer: ", result.stderr)
        self.assertIn("leave out --use-store to measure with an in-memory store", result.stderr)
        result = self.measure("--sample", self.sample, config=config.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("store:       a memory store instead of ids (redis)", result.stdout)

    def test_lmdb_store_with_use_store_leaves_no_scratch(self):
        config, state = self.lmdb_config()
        result = self.measure("--sample", self.sample, "--use-store", config=config.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        store = re.search(r"store:       ids \(lmdb, --use-store\): a scratch database beside "
                          + re.escape(state) + r"/ids/?, removed afterwards; (\d+) ids written\n",
                          result.stdout)
        self.assertTrue(store, result.stdout)
        m = re.search(r"\(ok (\d+), invalid 0, duplicate 0, error 0\)", result.stdout)
        self.assertTrue(m, result.stdout)
        self.assertGreaterEqual(int(store.group(1)), int(m.group(1)))
        self.assertEqual(os.listdir(state), [])  # beside ids/, not in it; and gone

    def test_interrupt_exits_130_and_leaves_no_scratch(self):
        config, state = self.lmdb_config()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signal=sig.name):
                proc = subprocess.Popen(
                    [h.KPIPE, "plan", "--throughput", "20k", "--measure", "events", "--config",
                     config.path, "--sample", self.sample, "--use-store", "--seconds", "60s"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                try:
                    line = proc.stderr.readline()
                    self.assertIn("kpipe plan: measuring pipeline events", line)
                    self.assertEqual(len(scratch_dirs(state)), 1, os.listdir(state))
                    time.sleep(1.5)  # well into the run
                    proc.send_signal(sig)
                    out, err = proc.communicate(timeout=30)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.communicate()
                self.assertEqual(proc.returncode, 130, err)
                self.assertIn("kpipe plan --measure: interrupted\n", err)
                self.assertEqual(out, "")
                self.assertEqual(scratch_dirs(state), [])

    def test_http_output_only_with_allow_http(self):
        received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(1)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        url = f"http://127.0.0.1:{server.server_address[1]}/events"
        config = h.ConfigDir(self.sentinel.address, {"events": PIPELINE.replace(
            "output: {topic: events.out}", f"output: {{http: {{url: '{url}'}}}}")})
        self.addCleanup(config.cleanup)
        result = self.measure("--sample", self.sample, config=config.path)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"pipeline events writes its output to {url}: measuring would send it "
                      "thousands of sample copies a second. Pass --allow-http", result.stderr)
        self.assertEqual(received, [])
        result = self.measure("--sample", self.sample, "--allow-http", config=config.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"output:      HTTP {url} (--allow-http), for real\n", result.stdout)
        m = re.search(r"\(ok (\d+), ", result.stdout)
        self.assertTrue(m, result.stdout)
        self.assertGreaterEqual(len(received), int(m.group(1)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
