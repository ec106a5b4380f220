#!/usr/bin/python3
"""config/kpipe.schema.json and config/pipeline.schema.json (editors validate and complete the
config with them) against `kpipe check`, the loader itself:

- config/kpipe.yaml and every config/pipelines/*.yaml validate (with their ${VAR} references as
  written) and carry the yaml-language-server modeline that points at their schema;
- tests/unit/config/testdata/full (every key of the format at least once) validates and passes
  `kpipe check`;
- mutations of that config, mechanically: an unknown key added to every map, every key removed
  in turn, every scalar replaced by a map, and a table of bad values: `kpipe check` and the
  schema accept or refuse each alike. (The keys themselves are compared with the loader's in
  tests/unit/config/schema_test.cpp.)

The schemas are checked with kpipe's own validator (`kpipe explain SCHEMA DOC`); YAML is read
with python3-yaml. What a schema cannot say is left out on purpose: relations between values
(retry.initial <= max, max_pending >= concurrency), bounds of durations and sizes, files that
must exist, references to stores of kpipe.yaml.
"""
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import yaml

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

CONFIG = os.path.join(h.SOURCE_DIR, "config")
KPIPE_SCHEMA = os.path.join(CONFIG, "kpipe.schema.json")
PIPELINE_SCHEMA = os.path.join(CONFIG, "pipeline.schema.json")
FULL = os.path.join(h.SOURCE_DIR, "tests", "unit", "config", "testdata", "full")

# Removing these is refused by the loader for a reason outside the file: a pipeline names the
# store (dedup.store).
CROSS_FILE = {("kpipe.yaml", ("stores",)), ("kpipe.yaml", ("stores", "red")),
              ("kpipe.yaml", ("stores", "mem")), ("kpipe.yaml", ("stores", "disk"))}
# Maps whose names something else knows: librdkafka its properties (`kpipe check` asks it), the
# file system the schema files. No unknown key is added there.
NAMES_CHECKED_ELSEWHERE = {("kafka", "properties"), ("kafka", "consumer_properties"),
                           ("kafka", "producer_properties"), ("schema", "types")}


def environment():
    """The environment without the variables the configs read, so that defaults apply."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("KPIPE_") and k not in ("TENANT",)} | {"KPIPE_BINARY": h.KPIPE}


def schema_accepts(schema, document, workdir):
    path = os.path.join(workdir, "document.json")
    with open(path, "w") as f:
        json.dump(document, f)
    result = subprocess.run([h.KPIPE, "explain", schema, path], capture_output=True, text=True,
                            timeout=30)
    if result.returncode not in (0, 1):
        raise AssertionError(f"kpipe explain {schema}: exit {result.returncode}: {result.stderr}")
    return result.returncode == 0, result.stdout + result.stderr


def check_accepts(config_file):
    result = subprocess.run([h.KPIPE, "check", config_file], capture_output=True, text=True,
                            env=environment(), timeout=30)
    if result.returncode not in (0, 1):
        raise AssertionError(f"kpipe check: exit {result.returncode}: {result.stderr}")
    return result.returncode == 0, result.stdout + result.stderr


def load_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def maps(node, path=()):
    """Every mapping in `node` with its path of keys, the document first."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from maps(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from maps(value, path + (i,))


def scalars(node, path=()):
    """The path of every scalar (not in a list)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                yield from scalars(value, path + (key,))
            else:
                yield path + (key,)


def get(node, path):
    for key in path:
        node = node[key]
    return node


class ConfigSchemaTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kpipe-schema-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def assertValid(self, schema, path):
        ok, out = schema_accepts(schema, load_yaml(path), self.tmp)
        self.assertTrue(ok, f"{os.path.relpath(path, h.SOURCE_DIR)} against "
                            f"{os.path.basename(schema)}:\n{out}")

    def test_shipped_config_validates_and_names_its_schema(self):
        files = [(os.path.join(CONFIG, "kpipe.yaml"), KPIPE_SCHEMA)]
        for path in sorted(glob.glob(os.path.join(CONFIG, "pipelines", "*.yaml"))):
            if not path.endswith(".test.yaml"):
                files.append((path, PIPELINE_SCHEMA))
        self.assertGreaterEqual(len(files), 3)
        for path, schema in files:
            self.assertValid(schema, path)
            with open(path) as f:
                head = f.read(400)
            modeline = [line for line in head.splitlines()
                        if line.startswith("# yaml-language-server: $schema=")]
            self.assertEqual(len(modeline), 1, f"{path}: no yaml-language-server modeline")
            target = modeline[0].split("$schema=", 1)[1].strip()
            self.assertEqual(os.path.realpath(os.path.join(os.path.dirname(path), target)),
                             os.path.realpath(schema), path)
        # The test fixtures of pipelines are not pipelines: no modeline.
        for path in glob.glob(os.path.join(CONFIG, "pipelines", "*.test.yaml")):
            with open(path) as f:
                self.assertNotIn("yaml-language-server", f.read(), path)
        ok, out = check_accepts(os.path.join(CONFIG, "kpipe.yaml"))
        self.assertTrue(ok, out)

    def test_every_key_validates_and_loads(self):
        self.assertValid(KPIPE_SCHEMA, os.path.join(FULL, "kpipe.yaml"))
        pipelines = sorted(glob.glob(os.path.join(FULL, "pipelines", "*.yaml")))
        self.assertEqual(len(pipelines), 4)
        for path in pipelines:
            self.assertValid(PIPELINE_SCHEMA, path)
        ok, out = check_accepts(os.path.join(FULL, "kpipe.yaml"))
        self.assertTrue(ok, out)
        # tls.verify: false in pipeline c: said in `kpipe check`, and the URL read from a file
        # is shown as its host only.
        self.assertIn("TLS certificate verification is off", out)
        self.assertIn("https://hooks.example.com/***", out)
        self.assertNotIn("not-a-real", out)

    def _mutations(self, name, document):
        """(description, mutated document) for one file of the fixture."""
        for path, node in maps(document):
            if path not in NAMES_CHECKED_ELSEWHERE:
                mutated = copy.deepcopy(document)
                get(mutated, path)["bogus_key"] = "x"
                yield f"{name}: {'.'.join(map(str, path)) or '(top)'} + bogus_key", mutated
            for key in node:
                if (name, path + (key,)) in CROSS_FILE:
                    continue
                mutated = copy.deepcopy(document)
                del get(mutated, path)[key]
                yield f"{name}: without {'.'.join(map(str, path + (key,)))}", mutated
        for path in scalars(document):
            mutated = copy.deepcopy(document)
            get(mutated, path[:-1])[path[-1]] = {"a": 1}
            yield f"{name}: {'.'.join(map(str, path))} as a map", mutated

    def test_loader_and_schema_agree_on_every_mutation(self):
        work = os.path.join(self.tmp, "full")
        shutil.copytree(FULL, work)
        files = [("kpipe.yaml", KPIPE_SCHEMA)] + [
            (os.path.join("pipelines", os.path.basename(p)), PIPELINE_SCHEMA)
            for p in sorted(glob.glob(os.path.join(FULL, "pipelines", "*.yaml")))]
        disagreements = []
        count = 0
        for name, schema in files:
            target = os.path.join(work, name)
            with open(target) as f:
                original = f.read()
            document = yaml.safe_load(original)
            for description, mutated in self._mutations(name, document):
                count += 1
                with open(target, "w") as f:
                    yaml.safe_dump(mutated, f, sort_keys=False)
                schema_ok, schema_out = schema_accepts(schema, mutated, self.tmp)
                check_ok, check_out = check_accepts(os.path.join(work, "kpipe.yaml"))
                if schema_ok != check_ok:
                    disagreements.append(
                        f"{description}: schema {'accepts' if schema_ok else 'refuses'}, kpipe "
                        f"check {'accepts' if check_ok else 'refuses'}\n  schema: "
                        f"{schema_out.strip()[:300]}\n  check: {check_out.strip()[:300]}")
            with open(target, "w") as f:
                f.write(original)
        self.assertGreater(count, 200)
        self.assertEqual(disagreements, [], "\n".join(disagreements))
        print(f"config_schema_test: {count} mutations, schema and kpipe check agree",
              file=sys.stderr)

    def test_loader_and_schema_agree_on_values(self):
        # (file, YAML text, accepted): a small config per case, checked both ways.
        pipeline = "name: p\ninput: {topic: t, group: g}\nkey: /k\noutput: {topic: o}\n"
        cases = [
            ("kpipe.yaml", "log: {format: xml}\n", False),
            ("kpipe.yaml", "log: {level: \"${LOG_LEVEL:-debug}\"}\n", True),
            ("kpipe.yaml", "http: {listen: 9464}\n", False),
            ("kpipe.yaml", "http: {listen: \"[::1]:9464\", enabled: false}\n", True),
            ("kpipe.yaml", "http: {listen: \"${HOST:-0.0.0.0}:${PORT:-9464}\"}\n", True),
            ("kpipe.yaml", "http: {enabled: yes please}\n", False),
            ("kpipe.yaml", "kafka: {embedded: {brokers: 0}}\n", False),
            ("kpipe.yaml", "kafka: {embedded: {partitions: \"${PARTITIONS:-8}\"}}\n", True),
            ("kpipe.yaml", "kafka: {properties: {linger.ms: 5, enable.idempotence: true}}\n", True),
            ("kpipe.yaml", "kafka: {properties: {sasl.password: [a]}}\n", False),
            ("kpipe.yaml", "stores: {s: {type: memory, ttl: 7days}}\n", False),
            ("kpipe.yaml", "stores: {s: {type: memory, ttl: \"${TTL:-7d}\"}}\n", True),
            ("kpipe.yaml", "stores: {s: {type: redis}}\n", False),
            ("kpipe.yaml", "stores: {s: {type: redis, url: \"http://x\"}}\n", False),
            ("kpipe.yaml", "stores: {s: {type: lmdb, path: db, max_entries: 5}}\n", False),
            ("kpipe.yaml", "stores: {s: {type: lmdb, path: db, map_size: 1GiB}}\n", True),
            ("kpipe.yaml", "stores: {s: {type: lmdb, path: db, map_size: 1 GiB}}\n", False),
            ("kpipe.yaml", "stores: {s: {type: disk}}\n", False),
            ("kpipe.yaml", "shutdown: {drain_timeout: 45s}\nreload: {watch: false, debounce: 0ms}\n",
             True),
            ("kpipe.yaml", "shutdown: {drain_timeout: 45}\n", False),
            ("kpipe.yaml", "reload: {debounce: 1.5s}\n", False),
            ("kpipe.yaml", "reload: {watch: \"${WATCH:-true}\"}\n", True),
            ("pipeline", pipeline + "ordering: random\n", False),
            ("pipeline", pipeline + "concurrency: 0\n", False),
            ("pipeline", pipeline + "concurrency: 100001\n", False),
            ("pipeline", pipeline + "max_pending: 100000\n", True),
            ("pipeline", pipeline + "max_message_bytes: 2MiB\n", True),
            ("pipeline", pipeline + "max_message_bytes: 2 megabytes\n", False),
            ("pipeline", pipeline + "errors: {max_attempts: -1}\n", False),
            ("pipeline", pipeline + "errors: {retry: {jitter: 1.5}}\n", False),
            ("pipeline", pipeline + "errors: {retry: {multiplier: 0.5}}\n", False),
            ("pipeline", pipeline.replace("key: /k", "key: k"), False),
            ("pipeline", pipeline.replace("key: /k", "key: /a~2b"), False),
            ("pipeline", pipeline.replace("name: p", "name: my pipeline"), False),
            ("pipeline", pipeline.replace("name: p", "name: ${NAME:-p}"), True),
            ("pipeline", pipeline + "schema_evolution: never\n", False),
            ("pipeline", pipeline + "dedup: {id: /id, on_duplicate: ignore}\n", False),
            ("pipeline", pipeline.replace("output: {topic: o}",
                                          "output: {topic: o, partitioner: murmur3}"), False),
            ("pipeline", pipeline.replace("output: {topic: o}", "output: {key: /k}"), False),
            ("pipeline", pipeline.replace("output: {topic: o}",
                                          "output: {http: {url: \"https://h/\", method: GET}}"),
             False),
            ("pipeline", pipeline.replace("output: {topic: o}",
                                          "output: {http: {url: \"https://h/\", "
                                          "retry_statuses: [429, 600]}}"), False),
            ("pipeline", pipeline.replace("output: {topic: o}",
                                          "output: {http: {url: \"https://h/\", "
                                          "connections: 5000}}"), False),
            ("pipeline", pipeline.replace("output: {topic: o}",
                                          "output: {http: {url: \"https://h/\", "
                                          "tls: {verify: false}}}"), True),
            ("pipeline", pipeline.replace("output: {topic: o}",
                                          "output: {http: {url: \"ftp://h/\"}}"), False),
            ("pipeline", pipeline.replace("input: {topic: t, group: g}", "input: {topic: t}"),
             False),
        ]
        disagreements = []
        for kind, text, accepted in cases:
            work = tempfile.mkdtemp(dir=self.tmp)
            os.makedirs(os.path.join(work, "pipelines"))
            main = text if kind == "kpipe.yaml" else ""
            with open(os.path.join(work, "kpipe.yaml"), "w") as f:
                f.write(main)
            if kind == "pipeline":
                with open(os.path.join(work, "pipelines", "p.yaml"), "w") as f:
                    f.write(text)
            schema = KPIPE_SCHEMA if kind == "kpipe.yaml" else PIPELINE_SCHEMA
            schema_ok, schema_out = schema_accepts(schema, yaml.safe_load(text) or {}, self.tmp)
            check_ok, check_out = check_accepts(os.path.join(work, "kpipe.yaml"))
            if schema_ok != accepted or check_ok != accepted:
                disagreements.append(f"{text.strip()!r}: expected "
                                     f"{'accepted' if accepted else 'refused'}; schema "
                                     f"{schema_ok} ({schema_out.strip()[:200]}), check "
                                     f"{check_ok} ({check_out.strip()[:200]})")
        self.assertEqual(disagreements, [], "\n".join(disagreements))


if __name__ == "__main__":
    unittest.main()
