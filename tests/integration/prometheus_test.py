#!/usr/bin/python3
"""A real Prometheus server (Debian's `prometheus`) scrapes a running kpipe (issue #8):

- `promtool check metrics` passes on a live scrape of /metrics;
- a pipeline whose output is down stops (its committed offset holds), and Prometheus's answer to
  the lag query is exactly the number of messages produced since; the retention headroom
  (input.retention, as the embedded broker does not answer DescribeConfigs) is there too;
- /status says the same: the partition's lag, the blocked message and the last error.

Needs prometheus and promtool: without them the test fails in CI (CI set) and skips elsewhere.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")


def need(tool, path):
    if path:
        return
    if os.environ.get("CI"):
        raise AssertionError(f"{tool} is missing: deploy/setup.sh installs Debian's prometheus")
    raise unittest.SkipTest(f"{tool} is not installed")


class Prometheus:
    """prometheus scraping one target every second, its data in a temporary directory."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="kpipe-prom-")
        self.port = h.free_port()
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: kpipe
    static_configs: [{{targets: ['{target}']}}]
""")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir}/prometheus.yml",
             f"--storage.tsdb.path={self.dir}/data", f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        h.wait_for(self.ready, 30, "prometheus to be ready")

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """The value of an instant query that returns one sample, or None."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?"
               + urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=5) as r:
            answer = json.load(r)
        result = answer["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


PIPELINE = """
name: p
input: {topic: ev, group: p-group, retention: 1h}
key: /user_id
output: {topic: ev.out}
errors: {topic: ev.errors, audit_topic: ev.audit, retry: {initial: 50ms, max: 500ms}}
"""


class PrometheusTest(unittest.TestCase):
    def test_prometheus_sees_the_lag_of_a_stopped_pipeline(self):
        need("prometheus", PROMETHEUS)
        need("promtool", PROMTOOL)
        broker = h.Broker(["ev:1", "ev.out:1", "ev.errors:1", "ev.audit:1"], brokers=2)
        self.addCleanup(broker.stop)
        for t in ("ev", "ev.errors", "ev.audit"):
            broker.fault(f"leader {t} 0 1")
        broker.fault("coordinator group p-group 1")
        broker.fault("leader ev.out 0 2")
        # Deliveries to the down broker fail after 1 s (not librdkafka's 300 s), so that the
        # pipeline sees blocking failures and retries them.
        config = h.ConfigDir(broker.bootstrap, {"p": PIPELINE},
                             producer_properties={"message.timeout.ms": 1000})
        self.addCleanup(config.cleanup)
        kpipe = h.Kpipe(config)
        self.addCleanup(kpipe.stop)
        prometheus = Prometheus(f"127.0.0.1:{config.http_port}")
        self.addCleanup(prometheus.stop)

        # given: a pipeline that processed 10 messages, then its output went down
        lines = [f"u{i}\t" + json.dumps({"user_id": f"u{i}", "n": i}) for i in range(35)]
        h.kcat_produce(broker.bootstrap, "ev", lines[:10])
        h.wait_for(lambda: h.committed_offsets(broker.bootstrap, "p-group", "ev", 1)[0] == 10,
                   60, "the first 10 messages to be committed")
        broker.fault("down 2")
        # when: 25 more arrive
        h.kcat_produce(broker.bootstrap, "ev", lines[10:])

        # then: Prometheus, scraping kpipe, answers the lag query with exactly those 25
        lag = 'sum(kpipe_consumer_lag_messages{job="kpipe",pipeline="p"})'
        h.wait_for(lambda: prometheus.query(lag) == 25, 60, f"{lag} == 25 in Prometheus")
        self.assertEqual(h.committed_offsets(broker.bootstrap, "p-group", "ev", 1)[0], 10,
                         "the stopped pipeline holds its committed offset")
        # The gauge appears once retention is known: the embedded broker's DescribeConfigs must
        # time out first (input.retention stands in), which a loaded machine can stretch.
        headroom_query = 'min(kpipe_retention_headroom_seconds{pipeline="p"})'
        h.wait_for(lambda: prometheus.query(headroom_query) is not None, 60,
                   "the retention headroom in Prometheus")
        headroom = prometheus.query(headroom_query)
        self.assertTrue(3000 < headroom <= 3600, headroom)
        blocked = 'max(kpipe_oldest_blocked_seconds{pipeline="p"})'
        h.wait_for(lambda: (prometheus.query(blocked) or 0) > 0, 30, f"{blocked} > 0")

        # and: promtool accepts a live scrape
        scrape = kpipe.get("/metrics")
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=scrape, text=True,
                               capture_output=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        # and: /status tells the same story, with the reason
        def status():
            return json.loads(kpipe.get("/status"))["pipelines"][0]
        h.wait_for(lambda: status()["partitions"][0]["lag_messages"] == 25, 30, "/status lag")
        status = status()
        self.assertEqual(status["partitions"][0]["committed"], 10)
        self.assertGreaterEqual(status["blocked"], 1)
        self.assertIn("output:", status["last_error"])
        self.assertIn("<h2>p ", kpipe.get("/"))

        broker.fault("up 2")
        h.wait_for(lambda: prometheus.query(lag) == 0, 120, f"{lag} == 0 once the output is back")


if __name__ == "__main__":
    unittest.main(verbosity=2)
