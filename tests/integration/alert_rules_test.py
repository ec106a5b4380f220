#!/usr/bin/python3
"""The Prometheus alert rules and the Grafana dashboard in deploy/: `promtool check rules` and
`promtool test rules` pass, every alert has a case where it fires and one where it must stay
quiet, dropping any alert breaks its tests, and every kpipe_* name that the rules and the
dashboard use is a metric kpipe exports (a renamed metric fails here, not silently on a
dashboard). Needs promtool (Debian package `prometheus`) and python3-yaml: without them the
checks that need them are skipped, or fail when CI=true."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

SOURCE_DIR = os.environ.get("KPIPE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PROMETHEUS_DIR = os.path.join(SOURCE_DIR, "deploy", "prometheus")
RULES = os.path.join(PROMETHEUS_DIR, "kpipe-alerts.yml")
RULE_TESTS = os.path.join(PROMETHEUS_DIR, "kpipe-alerts.test.yml")
DASHBOARD = os.path.join(SOURCE_DIR, "deploy", "grafana", "kpipe-dashboard.json")
PROMTOOL = shutil.which("promtool")
IN_CI = os.environ.get("CI") == "true"

try:
    import yaml
except ImportError:  # python3-yaml
    yaml = None

# The metrics kpipe exports (README.md, "Metrics and health"). A metric added there and used by
# the rules or the dashboard is added here too.
COUNTERS = {
    "kpipe_messages_total", "kpipe_errors_total", "kpipe_retries_total",
    "kpipe_partition_count_changes_total", "kpipe_config_reloads_total",
}
GAUGES = {
    "kpipe_blocked_keys", "kpipe_oldest_blocked_seconds", "kpipe_consumer_lag_messages",
    "kpipe_consumer_lag_seconds", "kpipe_consumer_status", "kpipe_partition_status",
    "kpipe_retention_headroom_seconds", "kpipe_topic_partitions", "kpipe_inflight_messages",
    "kpipe_paused_partitions", "kpipe_assigned_partitions", "kpipe_queue_depth",
    "kpipe_build_info",
}
HISTOGRAMS = {"kpipe_processing_seconds", "kpipe_end_to_end_seconds", "kpipe_sink_seconds"}
KNOWN = COUNTERS | GAUGES | HISTOGRAMS | {
    f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
KPIPE_NAME = re.compile(r"\bkpipe_[a-z0-9_]*[a-z0-9]")


def unknown_metrics(text):
    return sorted(set(KPIPE_NAME.findall(text)) - KNOWN)


def need(what, available, install):
    """Skips the calling test without `what`, or fails it on CI (where it must be installed)."""
    if available:
        return
    message = f"{what} is not installed (Debian package {install}; deploy/setup.sh installs it)"
    if IN_CI:
        raise AssertionError(message)
    raise unittest.SkipTest(message)


def promtool(*args, cwd=None):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def alerts(rules):
    return [r for g in rules["groups"] for r in g["rules"] if "alert" in r]


def dashboard_exprs(dashboard):
    """(panel title, expr) of every query: panel targets and query annotations."""
    for panel in dashboard["panels"]:
        for nested in [panel, *panel.get("panels", [])]:
            for target in nested.get("targets", []):
                yield nested.get("title", "?"), target.get("expr", "")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            yield "annotation " + annotation["name"], annotation["expr"]


def as_promql(expr):
    """A dashboard query with Grafana's variables replaced, so that promtool can parse it."""
    for variable, value in (("$__rate_interval", "5m"), ("$__interval", "1m"),
                            ("$__range", "1h"), ("$pipeline", ".*")):
        expr = expr.replace(variable, value)
    return expr


class DashboardTest(unittest.TestCase):
    def setUp(self):
        with open(DASHBOARD) as f:
            self.dashboard = json.load(f)  # fails on malformed JSON

    def test_is_a_grafana_dashboard_with_datasource_and_pipeline_variables(self):
        self.assertGreaterEqual(self.dashboard["schemaVersion"], 36)
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")
        pipeline = variables["pipeline"]
        self.assertEqual(pipeline["type"], "query")
        self.assertEqual(pipeline["definition"], "label_values(kpipe_messages_total, pipeline)")
        self.assertEqual(pipeline["datasource"]["uid"], "${datasource}")

    def test_panels_are_laid_out_and_query_the_selected_datasource(self):
        ids = [p["id"] for p in self.dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        for panel in self.dashboard["panels"]:
            pos = panel["gridPos"]
            self.assertLessEqual(pos["x"] + pos["w"], 24, panel["title"])
            if panel["type"] == "row":
                continue
            self.assertTrue(panel.get("targets"), f"{panel['title']}: no query")
            for target in [panel, *panel["targets"]]:
                self.assertEqual(target["datasource"]["uid"], "${datasource}", panel["title"])

    def test_queries_use_only_metrics_kpipe_exports(self):
        exprs = list(dashboard_exprs(self.dashboard))
        self.assertGreater(len(exprs), 20)
        for title, expr in exprs:
            self.assertTrue(expr.strip(), f"{title}: empty query")
            self.assertEqual(unknown_metrics(expr), [], f"{title}: {expr}")

    def test_queries_parse_as_promql(self):
        need("promtool", PROMTOOL, "prometheus")
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard_query_{i}", "expr": as_promql(expr)}
            for i, (_, expr) in enumerate(dashboard_exprs(self.dashboard))]}]}
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "dashboard-queries.yml")
            with open(path, "w") as f:
                json.dump(rules, f)  # JSON is YAML
            r = promtool("check", "rules", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class AlertRulesTest(unittest.TestCase):
    def test_promtool_check_rules(self):
        need("promtool", PROMTOOL, "prometheus")
        r = promtool("check", "rules", RULES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_promtool_test_rules(self):
        need("promtool", PROMTOOL, "prometheus")
        r = promtool("test", "rules", RULE_TESTS)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout + r.stderr)

    def test_alerts_have_severity_and_explain_themselves(self):
        need("python3 yaml", yaml, "python3-yaml")
        for alert in alerts(load_yaml(RULES)):
            name = alert["alert"]
            self.assertIn(alert["labels"].get("severity"), ("warning", "critical"), name)
            self.assertTrue(alert["annotations"].get("summary"), name)
            self.assertTrue(alert["annotations"].get("description"), name)

    def test_rules_use_only_metrics_kpipe_exports(self):
        need("python3 yaml", yaml, "python3-yaml")
        for rule in (r for g in load_yaml(RULES)["groups"] for r in g["rules"]):
            text = rule["expr"] + " ".join(rule.get("annotations", {}).values())
            self.assertEqual(unknown_metrics(text), [], rule.get("alert") or rule.get("record"))

    def test_every_alert_has_a_firing_and_a_quiet_case(self):
        need("python3 yaml", yaml, "python3-yaml")
        cases = [c for t in load_yaml(RULE_TESTS)["tests"] for c in t.get("alert_rule_test", [])]
        for alert in alerts(load_yaml(RULES)):
            name = alert["alert"]
            mine = [c for c in cases if c["alertname"] == name]
            self.assertTrue([c for c in mine if c.get("exp_alerts")], f"{name}: no firing case")
            self.assertTrue([c for c in mine if not c.get("exp_alerts")], f"{name}: no quiet case")

    def test_dropping_any_alert_breaks_its_tests(self):
        """The firing cases are real: without the alert, `promtool test rules` fails."""
        need("promtool", PROMTOOL, "prometheus")
        need("python3 yaml", yaml, "python3-yaml")
        rules = load_yaml(RULES)
        names = [a["alert"] for a in alerts(rules)]
        self.assertGreaterEqual(len(names), 12)
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(RULE_TESTS, tmp)
            for name in names:
                without = {"groups": [dict(g, rules=[r for r in g["rules"] if r.get("alert") != name])
                                      for g in rules["groups"]]}
                with open(os.path.join(tmp, os.path.basename(RULES)), "w") as f:
                    yaml.safe_dump(without, f, sort_keys=False)
                r = promtool("test", "rules", os.path.basename(RULE_TESTS), cwd=tmp)
                self.assertNotEqual(r.returncode, 0, f"tests still pass without {name}")
                self.assertIn(f"alertname: {name},", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
