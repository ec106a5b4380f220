#!/usr/bin/python3
"""deploy/kubernetes/ (the scale-out example) is a config kpipe accepts and a Deployment that
fits it:

- the config directory the pods see (the projected volume: ConfigMap items and Secret items
  under their paths) is rebuilt from the manifests and passes `kpipe check`, the same command
  the init container runs, and validates against config/*.schema.json;
- the probes (/healthz liveness, /readyz readiness), the Prometheus annotations and the metrics
  Service reach the port of kpipe's http.listen, which listens beyond loopback;
- terminationGracePeriodSeconds is longer than shutdown.drain_timeout;
- several replicas share one dedup store (redis), non-root and read-only root file system,
  resources, a PodDisruptionBudget and selectors that match the pods;
- the schema in the ConfigMap is the repository's schemas/user-event.json.

No cluster: the manifests are read with python3-yaml.
"""
import base64
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

K8S = os.path.join(h.SOURCE_DIR, "deploy", "kubernetes")


def duration_seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text))
    assert m, f"not a duration: {text!r}"
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * scale


class KubernetesExampleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objects = {}
        for path in sorted(glob.glob(os.path.join(K8S, "*.yaml"))):
            with open(path) as f:
                for doc in yaml.safe_load_all(f):
                    if doc and doc.get("kind") != "Kustomization":
                        cls.objects[(doc["kind"], doc["metadata"]["name"])] = doc
        cls.deployment = cls.only("Deployment")
        cls.pod = cls.deployment["spec"]["template"]
        containers = cls.pod["spec"]["containers"]
        assert len(containers) == 1, containers
        cls.container = containers[0]

    @classmethod
    def only(cls, kind):
        found = [o for (k, _), o in cls.objects.items() if k == kind]
        assert len(found) == 1, f"expected one {kind}, found {len(found)}"
        return found[0]

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kpipe-k8s-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def config_path(self):
        """The path of kpipe.yaml in the pod, from `kpipe run PATH`."""
        command = self.container.get("command", []) + self.container.get("args", [])
        self.assertIn("run", command)
        return command[command.index("run") + 1]

    def mount(self, container, path):
        """(volume, mountPath) of the mount that holds `path`."""
        for m in container.get("volumeMounts", []):
            if path.startswith(m["mountPath"].rstrip("/") + "/"):
                volumes = {v["name"]: v for v in self.pod["spec"]["volumes"]}
                return volumes[m["name"]], m["mountPath"]
        self.fail(f"{path} is on no volume of {container['name']}")

    def materialize(self):
        """Writes the files of the config volume as the pod sees them; returns kpipe.yaml's path
        in the copy."""
        path = self.config_path()
        volume, mount_path = self.mount(self.container, path)
        sources = volume["projected"]["sources"] if "projected" in volume else [volume]
        for source in sources:
            if "configMap" in source:
                ref = source["configMap"]
                data = self.objects[("ConfigMap", ref["name"])]["data"]
            else:
                ref = source["secret"]
                ref_name = ref.get("name") or ref.get("secretName")
                secret = self.objects[("Secret", ref_name)]
                data = dict(secret.get("stringData", {}))
                data.update({k: base64.b64decode(v).decode()
                             for k, v in secret.get("data", {}).items()})
            items = ref.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                target = os.path.join(self.dir, item["path"])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "w") as f:
                    f.write(data[item["key"]])
        return os.path.join(self.dir, os.path.relpath(path, mount_path))

    def kpipe_config(self):
        with open(self.materialize()) as f:
            return yaml.safe_load(f)

    def test_the_config_passes_kpipe_check_as_the_init_container_runs_it(self):
        kpipe_yaml = self.materialize()
        result = subprocess.run([h.KPIPE, "check", kpipe_yaml], capture_output=True, text=True,
                                timeout=30)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("OK, 1 pipeline", result.stdout)
        self.assertNotIn("change-me", result.stdout + result.stderr)
        # The init container checks the same file, on the same volume.
        init = self.pod["spec"]["initContainers"]
        checks = [c for c in init if "check" in c.get("command", []) + c.get("args", [])]
        self.assertEqual(len(checks), 1, init)
        command = checks[0].get("command", []) + checks[0].get("args", [])
        self.assertEqual(command[command.index("check") + 1], self.config_path())
        self.assertEqual(self.mount(checks[0], self.config_path()),
                         self.mount(self.container, self.config_path()))
        self.assertEqual(checks[0]["image"], self.container["image"])

    def test_the_config_validates_against_the_schemas(self):
        kpipe_yaml = self.materialize()
        files = [(kpipe_yaml, "kpipe.schema.json")] + [
            (p, "pipeline.schema.json")
            for p in glob.glob(os.path.join(os.path.dirname(kpipe_yaml), "pipelines", "*.yaml"))]
        self.assertEqual(len(files), 2)
        for path, schema in files:
            with open(path) as f:
                document = yaml.safe_load(f)
            doc_path = os.path.join(self.dir, "document.json")
            with open(doc_path, "w") as f:
                json.dump(document, f)
            result = subprocess.run([h.KPIPE, "explain", os.path.join(h.SOURCE_DIR, "config",
                                                                      schema), doc_path],
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 0, f"{path}: {result.stdout}{result.stderr}")

    def test_probes_annotations_and_service_reach_http_listen(self):
        listen = self.kpipe_config()["http"]["listen"]
        host, port = listen.rsplit(":", 1)
        port = int(port)
        # The kubelet and Prometheus come from outside the pod's network namespace.
        self.assertIn(host, ("0.0.0.0", "[::]"))
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        self.assertIn(port, ports.values())

        def resolve(p):
            return ports[p] if isinstance(p, str) else p

        probes = {kind: self.container[kind]["httpGet"]
                  for kind in ("livenessProbe", "readinessProbe")}
        self.assertEqual(probes["livenessProbe"]["path"], "/healthz")
        self.assertEqual(probes["readinessProbe"]["path"], "/readyz")
        for kind, probe in probes.items():
            self.assertEqual(resolve(probe["port"]), port, kind)
        if "startupProbe" in self.container:
            self.assertEqual(self.container["startupProbe"]["httpGet"]["path"], "/healthz")
            self.assertEqual(resolve(self.container["startupProbe"]["httpGet"]["port"]), port)
        annotations = self.pod["metadata"]["annotations"]
        self.assertEqual(annotations["prometheus.io/scrape"], "true")
        self.assertEqual(int(annotations["prometheus.io/port"]), port)
        self.assertEqual(annotations.get("prometheus.io/path", "/metrics"), "/metrics")
        service = self.only("Service")
        labels = self.pod["metadata"]["labels"]
        self.assertLessEqual(service["spec"]["selector"].items(), labels.items())
        self.assertEqual([resolve(p["targetPort"]) for p in service["spec"]["ports"]], [port])

    def test_grace_period_outlasts_the_drain(self):
        config = self.kpipe_config()
        drain = duration_seconds(config.get("shutdown", {}).get("drain_timeout", "30s"))
        grace = self.pod["spec"]["terminationGracePeriodSeconds"]
        # The drain, then the commit and leaving the group, within the grace period.
        self.assertGreaterEqual(grace, drain + 10, f"grace {grace}s, drain {drain}s")

    def test_replicas_share_partitions_and_one_dedup_store(self):
        self.assertEqual(self.deployment["spec"]["replicas"], 3)
        config = self.kpipe_config()
        pipelines_dir = os.path.join(self.dir, config.get("pipelines", "pipelines"))
        pipelines = []
        for path in glob.glob(os.path.join(pipelines_dir, "*.yaml")):
            with open(path) as f:
                pipelines.append(yaml.safe_load(f))
        self.assertTrue(pipelines)
        for p in pipelines:
            # Every replica in the pipeline's consumer group.
            self.assertTrue(p["input"]["group"])
            if "dedup" in p:
                store = config["stores"][p["dedup"]["store"]]
                self.assertEqual(store["type"], "redis",
                                 f"{p['name']}: replicas need a shared dedup store")

    def test_pods_are_locked_down_and_budgeted(self):
        spec = self.pod["spec"]
        self.assertTrue(spec["securityContext"]["runAsNonRoot"])
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            self.assertTrue(sc["readOnlyRootFilesystem"], c["name"])
            self.assertFalse(sc["allowPrivilegeEscalation"], c["name"])
            self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
            self.assertIn("requests", c["resources"], c["name"])
            self.assertIn("memory", c["resources"]["limits"], c["name"])
            for m in c.get("volumeMounts", []):
                self.assertTrue(m.get("readOnly"), f"{c['name']}: {m['name']}")
        labels = self.pod["metadata"]["labels"]
        self.assertLessEqual(self.deployment["spec"]["selector"]["matchLabels"].items(),
                             labels.items())
        pdb = self.only("PodDisruptionBudget")
        self.assertLessEqual(pdb["spec"]["selector"]["matchLabels"].items(), labels.items())
        self.assertEqual(pdb["spec"].get("maxUnavailable"), 1)

    def test_secrets_are_read_from_files_not_written_in_the_config(self):
        text = self.objects[("ConfigMap", "kpipe-config")]["data"]["kpipe.yaml"]
        self.assertIn("sasl.password_file: secrets/", text)
        self.assertIn("url_file: secrets/", text)
        self.assertNotIn("change-me", json.dumps(self.objects[("ConfigMap", "kpipe-config")]))

    def test_the_schema_is_the_repositorys(self):
        data = self.objects[("ConfigMap", "kpipe-config")]["data"]
        with open(os.path.join(h.SOURCE_DIR, "schemas", "user-event.json")) as f:
            self.assertEqual(json.loads(data["user-event.json"]), json.load(f))


if __name__ == "__main__":
    unittest.main()
