"""Test harness for kpipe's integration tests: starts real processes (kpipe's embedded broker,
`kpipe run`), talks to them with third-party clients (kcat, python3-kafka, HTTP), and cleans
up after itself. Loopback only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE_DIR = os.environ.get("KPIPE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
KPIPE = os.environ.get("KPIPE_BINARY") or os.path.join(SOURCE_DIR, "build", "daemon", "kpipe")
# The broker may run from another build than kpipe (e.g. kpipe under ASan, the broker not).
KPIPE_BROKER = os.environ.get("KPIPE_BROKER_BINARY") or KPIPE
KCAT = shutil.which("kcat") or "/usr/bin/kcat"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Broker:
    """`kpipe broker`: the embedded (mock) cluster in its own process, so that it outlives
    the kpipe processes under test."""

    def __init__(self, topics, partitions=4, brokers=1):
        args = [KPIPE_BROKER, "broker", "--partitions", str(partitions), "--brokers", str(brokers)]
        for t in topics:
            args += ["--topic", t]
        self.log = tempfile.NamedTemporaryFile("w+", prefix="kpipe-broker-", suffix=".log")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"bootstrap: (\S+)", line)
        if not m:
            self.stop()
            raise AssertionError(f"kpipe broker printed {line!r}")
        self.bootstrap = m.group(1)

    def fault(self, command):
        """Injects a fault into the mock cluster, e.g. "errors Produce 500 NOT_ENOUGH_REPLICAS"
        (see EmbeddedBroker::applyFault)."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if answer != "ok":
            raise AssertionError(f"broker fault {command!r}: {answer}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.proc.returncode != 0:
            self.log.seek(0)
            print(f"kpipe broker died ({self.proc.returncode}):\n{self.log.read()[-6000:]}",
                  file=sys.stderr)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass


class Redis:
    """A real redis-server on a free loopback port, nothing persisted; stop(), pause()
    (SIGSTOP: connections hang, as with a wedged server), resume(), start() again."""

    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, 10, "redis-server to answer")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ConfigDir:
    """A config directory: kpipe.yaml + pipelines/, with the repo's schemas copied in."""

    def __init__(self, bootstrap, pipelines, http_port=None, extra="", consumer_properties=None,
                 producer_properties=None, stores="{ids: {type: memory, ttl: 1d}}"):
        self.dir = tempfile.mkdtemp(prefix="kpipe-it-")
        self.http_port = http_port or free_port()
        shutil.copytree(os.path.join(SOURCE_DIR, "schemas"), os.path.join(self.dir, "schemas"))
        os.makedirs(os.path.join(self.dir, "pipelines"))
        with open(self.path, "w") as f:
            # The mock coordinator waits session.timeout.ms - 1 s for members to rejoin
            # after one leaves (librdkafka 2.0.2 rdkafka_mock_cgrp.c): keep restarts quick.
            consumer = {"session.timeout.ms": 6000, **(consumer_properties or {})}
            flow = ", ".join(f"{k}: {v}" for k, v in consumer.items())
            producer = ", ".join(f"{k}: {v}" for k, v in (producer_properties or {}).items())
            f.write(f"kafka: {{bootstrap: '{bootstrap}', consumer_properties: {{{flow}}}, "
                    f"producer_properties: {{{producer}}}}}\n"
                    f"http: {{listen: 127.0.0.1:{self.http_port}}}\n"
                    f"pipelines: pipelines/\n"
                    f"stores: {stores}\n"
                    f"log: {{format: json, level: info}}\n{extra}")
        for name, text in pipelines.items():
            with open(os.path.join(self.dir, "pipelines", name + ".yaml"), "w") as f:
                f.write(text)

    @property
    def path(self):
        return os.path.join(self.dir, "kpipe.yaml")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Kpipe:
    """A `kpipe run` process; its log goes to a file for post-mortems."""

    def __init__(self, config):
        self.config = config
        self.log_path = os.path.join(config.dir, f"kpipe-{time.monotonic_ns()}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([KPIPE, "run", config.path], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_for(self._http_up, 30, "kpipe's HTTP endpoint")

    def _http_up(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"kpipe exited with {self.proc.returncode}:\n{self.log_text()}")
        try:
            return self.get("/healthz") == "ok\n"
        except OSError:
            return False

    def get(self, path):
        url = f"http://127.0.0.1:{self.config.http_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def metrics(self):
        """{(name, frozenset(labels)): value} from /metrics."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if not line or line.startswith("#"):
                continue
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
            if not m:
                continue
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
            out[(m.group(1), labels)] = float(m.group(4))
        return out

    def metric_sum(self, name, **labels):
        want = set(labels.items())
        return sum(v for (n, l), v in self.metrics().items() if n == name and want <= set(l))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"kpipe did not stop within {timeout}s:\n{self.log_text()}")
        finally:
            self.log.close()

    def kill(self):
        """SIGKILL (a crash: no drain, no commit, no leaving the group) and wait; returns the
        exit code (-9)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        try:
            return self.proc.wait(30)
        finally:
            self.log.close()

    def log_text(self, tail=8000):
        """The end of the log (`tail` characters; None for all of it)."""
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            text = f.read()
        return text if tail is None else text[-tail:]

    def log_records(self, msg=None):
        """The JSON log lines (log.format json), optionally only those whose msg is `msg`."""
        records = []
        for line in self.log_text(tail=None).splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict) and (msg is None or r.get("msg") == msg):
                records.append(r)
        return records


def kcat_produce(bootstrap, topic, lines):
    """Produces KEY<TAB>VALUE lines with kcat; an empty VALUE is a tombstone (-Z)."""
    data = "".join(line + "\n" for line in lines)
    subprocess.run([KCAT, "-P", "-b", bootstrap, "-t", topic, "-K", "\t", "-Z", "-q",
                    "-X", "enable.idempotence=true", "-X", "partitioner=murmur2_random"],
                   input=data, text=True, check=True, timeout=120)


def kcat_consume(bootstrap, topic):
    """Every record of `topic` from the beginning: [{key, value, headers, partition, offset}]."""
    # surrogateescape: error topics keep values that are not UTF-8, byte for byte.
    out = subprocess.run([KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                          "-J"], capture_output=True, text=True, errors="surrogateescape",
                         check=True, timeout=120).stdout
    records = []
    for line in out.splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        headers = m.get("headers") or []
        records.append({
            "key": m.get("key"),
            "value": m.get("payload"),
            "headers": dict(zip(headers[0::2], headers[1::2])),
            "partition": m["partition"],
            "offset": m["offset"],
        })
    return records


def committed_offsets(bootstrap, group, topic, partitions):
    """{partition: committed offset} read with python3-kafka (a third-party client)."""
    from kafka import KafkaConsumer, TopicPartition  # Debian's python3-kafka
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False, api_version=(2, 5, 0))
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        consumer.close()


def committed_total(bootstrap, group, topic, partitions):
    """Sum of the committed offsets; a partition with no commit yet counts 0 (python3-kafka
    gives None for it, which a plain sum() would raise on)."""
    return sum(offset or 0 for offset in
               committed_offsets(bootstrap, group, topic, partitions).values())


def _offsets(bootstrap, topic, partitions, which):
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 5, 0))
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: o for tp, o in getattr(consumer, which)(tps).items()}
    finally:
        consumer.close()


def end_offsets(bootstrap, topic, partitions):
    """{partition: high watermark}."""
    return _offsets(bootstrap, topic, partitions, "end_offsets")


def start_offsets(bootstrap, topic, partitions):
    """{partition: log start offset}: above 0 once the embedded broker dropped old records."""
    return _offsets(bootstrap, topic, partitions, "beginning_offsets")


def murmur2(data):
    """Kafka's Java client murmur2 (Utils.murmur2), as an unsigned 32-bit value."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    for i in range(0, len(data) - len(data) % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail, rest = len(data) & ~3, len(data) % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h = ((h ^ data[tail]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def java_partition(key, partitions):
    """The partition the Java client's default partitioner picks for a keyed record."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def generate(n, seed, invalid=0.05, duplicates=0.05, users=500):
    """Runs tools/gen_events.py; returns (lines, expectations)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as expect:
        out = subprocess.run(["/usr/bin/python3", os.path.join(SOURCE_DIR, "tools", "gen_events.py"),
                              "-n", str(n), "--seed", str(seed), "--invalid", str(invalid),
                              "--duplicates", str(duplicates), "--users", str(users),
                              "--expect", expect.name],
                             capture_output=True, text=True, check=True).stdout
        return out.splitlines(), json.load(expect)
