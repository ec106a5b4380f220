#!/usr/bin/python3
"""Soak test (issue #11; not in CI): one `kpipe run` for an hour (--duration) under steady mixed
traffic and a fault every minute, watching its memory and file descriptors.

Setup, all on loopback and started here: the embedded broker (`kpipe broker`), a redis-server,
an HTTP receiver (chaos.Receiver) and kpipe with three pipelines that all read the input topic
`soak` (each with its own group, so every message goes through all three):
- soak-redis: Redis dedup store (audit), output topic soak-redis.out;
- soak-http:  memory dedup store (audit; ttl 2m, so that it is full early in the run),
  output the HTTP sink (the receiver);
- soak-drop:  memory dedup store (drop duplicates), output topic soak-drop.out.
Each has its error topic (<name>.errors) and, with audit, its audit topic (<name>.audit).
Traffic (python3-kafka, which rides out broker outages): --rate messages a second, keyed by
300 users, about 5% invalid (a type the schema refuses: error topics) and 3% duplicates (an
earlier message sent again: audited or dropped, or processed again once the store forgot it).

Faults, one every --fault-interval seconds, in turn (chaos.py's machinery; never a kill of
kpipe, the point is to watch one process): broker down, Redis stopped (SIGSTOP), HTTP receiver
down, a pipeline changed + SIGHUP (a reload restarts it), OffsetCommit errors, HTTP 503s, Redis
restarted empty, SIGHUP with nothing changed, Fetch errors, HTTP answers late (past the sink's
timeout); each lasts --outage seconds. Not Produce errors: with librdkafka 2.0.2's mock cluster
they lose records that kpipe's idempotent producer was told were delivered (see chaos.py's
produce_errors), which says nothing about kpipe.

Every --sample-interval seconds, kpipe's VmRSS (/proc/PID/status), open fds (/proc/PID/fd) and
threads go to a CSV (--csv). At the end (traffic stopped, kpipe caught up) it checks:
- memory is flat: after the warm-up (default: one round of every fault), the least-squares
  slope of RSS over time is below --max-rss-slope MB per 10 minutes;
- fds are flat: the last window's max fd count is at most the first window's (after the
  warm-up; a window is one round of faults) + --fd-margin;
- nothing lost: every valid id reached every pipeline's output (the topics, the receiver) at
  least once, every invalid id every pipeline's error topic; per-key order holds modulo
  redelivery; no config reload failed; kpipe never died and exits 0 on SIGTERM;
then prints a summary and exits 1 if a check failed. For a lost message it also says where
kcat finds it (input partition and offset, the output or error topic) and what its pipeline's
group committed, and keeps kpipe's config directory and log.

  nice -n 10 tests/chaos/soak.py                         # 1 h, 200 msg/s (x3 pipelines)
  nice -n 10 tests/chaos/soak.py --duration 10m --fault-interval 30 --csv /tmp/soak.csv
  nice -n 10 tests/chaos/soak.py --duration 5m --fault-interval 20 --faults broker_down,http_down
"""
import argparse
import collections
import csv
import json
import os
import random
import re
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
import chaos  # noqa: E402  (Receiver)

PARTITIONS = 4
INPUT = "soak"
KEYS = [f"user-{i:04d}" for i in range(300)]
# name -> (dedup store, on_duplicate, output); every pipeline reads INPUT with its own group
PIPELINES = {
    "soak-redis": ("ids", "audit", "topic"),
    "soak-http": ("local", "audit", "http"),
    "soak-drop": ("local", "drop", "topic"),
}


# In the order they are injected (Soak.faults).
FAULTS = ["broker_down", "redis_stop", "http_down", "reload_changed", "commit_errors",
          "http_5xx", "redis_restart", "sighup", "fetch_errors", "http_slow"]


def pipeline_yaml(name, url, concurrency):
    store, on_duplicate, output = PIPELINES[name]
    out = (f"output:\n  http: {{url: \"{url}\", timeout: 2s, connections: 8}}\n"
           if output == "http" else f"output: {{topic: {name}.out}}\n")
    audit = f", audit_topic: {name}.audit" if on_duplicate == "audit" else ""
    return (f"name: {name}\n"
            f"input: {{topic: {INPUT}, group: {name}}}\n"
            f"key: /user_id\n"
            f"concurrency: {concurrency}\n"
            f"schema: schemas/user-event.json\n"
            f"dedup: {{id: /msg_id, store: {store}, on_duplicate: {on_duplicate}}}\n"
            f"{out}"
            f"errors: {{topic: {name}.errors{audit}, retry: {{initial: 50ms, max: 1s}}}}\n")


def topics():
    """The topics the broker creates and the follower reads: {topic: (pipeline, role)}."""
    out = {}
    for name, (_, on_duplicate, output) in PIPELINES.items():
        if output == "topic":
            out[f"{name}.out"] = (name, "out")
        out[f"{name}.errors"] = (name, "errors")
        if on_duplicate == "audit":
            out[f"{name}.audit"] = (name, "audit")
    return out


def duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 600, 10m, 1h)")
    return float(m.group(1)) * {"s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]


class Ledger:
    """What was sent and what came out, by message index (the last 12 hex digits of msg_id),
    in bytearrays so that an hour of traffic stays small. Thread-safe (one lock)."""

    def __init__(self, tag):
        self.tag = tag
        self.prefix = f"{tag:08x}-0000-4000-8000-"
        self.lock = threading.Lock()
        self.kind = bytearray()  # 1 valid, 2 invalid
        self.seq_sent = collections.Counter()  # key -> valid messages (seq 1..n)
        self.unordered_keys = set()  # keys whose input order a producer failure may have broken
        self.resent = 0  # deliberate duplicates
        # per pipeline: output and error counts by index (capped at 255), audits, order state
        self.out = {p: bytearray() for p in PIPELINES}
        self.err = {p: bytearray() for p in PIPELINES}
        self.audited = collections.Counter()
        self.foreign = collections.Counter()
        self.top = {p: {} for p in PIPELINES}  # key -> highest seq seen in order 1, 2, ...
        self.disorder = {p: [] for p in PIPELINES}
        self.replays = collections.Counter()

    def new(self, valid, key):
        """Registers a new message; returns (msg_id, seq or None)."""
        with self.lock:
            i = len(self.kind)
            self.kind.append(1 if valid else 2)
            for counts in (*self.out.values(), *self.err.values()):
                counts.append(0)
            seq = None
            if valid:
                self.seq_sent[key] += 1
                seq = self.seq_sent[key]
            return f"{self.prefix}{i:012x}", seq

    def index(self, msg_id):
        if not isinstance(msg_id, str) or not msg_id.startswith(self.prefix):
            return None
        try:
            i = int(msg_id[len(self.prefix):], 16)
        except ValueError:
            return None
        return i if i < len(self.kind) else None

    def saw(self, pipeline, role, event):
        """One record of `pipeline`'s output (in output order per key), error or audit topic."""
        with self.lock:
            i = self.index(event.get("msg_id"))
            if i is None:
                self.foreign[pipeline] += 1
                return
            if role == "audit":
                self.audited[pipeline] += 1
                return
            counts = self.out[pipeline] if role == "out" else self.err[pipeline]
            counts[i] = min(255, counts[i] + 1)
            if role != "out":
                return
            key, seq = event.get("user_id"), event.get("seq")
            if self.kind[i] != 1 or not isinstance(seq, int):
                self.foreign[pipeline] += 1
                return
            # Per-key order modulo redelivery (scale_out_test.check_key_order, streamed): the
            # seqs that are new maxima must come as 1, 2, 3, ...; a repeat is a redelivery.
            top = self.top[pipeline].get(key, 0)
            if seq == top + 1:
                self.top[pipeline][key] = seq
            elif seq <= top:
                self.replays[pipeline] += 1
            elif key not in self.unordered_keys and len(self.disorder[pipeline]) < 10:
                self.disorder[pipeline].append(f"key {key}: seq {seq} after {top}")
                self.top[pipeline][key] = max(top, seq)

    def msg_id(self, i):
        return f"{self.prefix}{i:012x}"

    def check(self):
        """Returns (problems, per-pipeline stats, [(pipeline, msg_id, where it should be)] of
        the first few lost messages)."""
        problems, stats, missing = [], {}, []
        with self.lock:
            valid = [i for i, k in enumerate(self.kind) if k == 1]
            invalid = [i for i, k in enumerate(self.kind) if k == 2]
            for p in PIPELINES:
                out, err = self.out[p], self.err[p]
                lost = [i for i in valid if not out[i]] + [i for i in invalid if not err[i]]
                if lost:
                    problems.append(f"{p}: {len(lost)} lost, e.g. "
                                    f"{[self.msg_id(i) for i in lost[:3]]}")
                    missing += [(p, self.msg_id(i), "out" if self.kind[i] == 1 else "errors")
                                for i in lost[:3]]
                wrong = sum(1 for i in valid if err[i]) + sum(1 for i in invalid if out[i])
                if wrong:
                    problems.append(f"{p}: {wrong} messages on the wrong topic")
                if self.foreign[p]:
                    problems.append(f"{p}: {self.foreign[p]} foreign records")
                if self.disorder[p]:
                    problems.append(f"{p}: key order broken: {self.disorder[p][:3]}")
                delivered = sum(out[i] for i in valid)
                stats[p] = dict(delivered=delivered, distinct=sum(1 for i in valid if out[i]),
                                duplicated=delivered - sum(1 for i in valid if out[i]),
                                errors=sum(1 for i in invalid if err[i]),
                                audited=self.audited[p], replays=self.replays[p])
            stats["sent"] = dict(valid=len(valid), invalid=len(invalid), resent=self.resent)
        return problems, stats, missing


class Traffic:
    """A python3-kafka producer sending `rate` messages a second to INPUT, steadily."""

    def __init__(self, bootstrap, ledger, rate, seed, invalid=0.05, duplicates=0.03):
        from kafka import KafkaProducer  # Debian's python3-kafka
        # Infinite retries, one request in flight (keeps per-partition order) and a 5 min
        # request timeout: a broker outage delays messages but does not fail them.
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, api_version=(2, 5, 0),
                                      acks="all", retries=1_000_000, retry_backoff_ms=200,
                                      max_in_flight_requests_per_connection=1,
                                      request_timeout_ms=300_000, linger_ms=20)
        self.ledger, self.rate = ledger, rate
        self.rng = random.Random(seed)
        self.invalid, self.duplicates = invalid, duplicates
        self.recent = collections.deque(maxlen=5000)  # valid (key, value) for duplicates
        self.sent = 0
        self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _send(self, key, value):
        def failed(_, key=key, value=value):
            # Sent again (the same id: the pipelines may see it twice); its key's order
            # may no longer be the seq order.
            with self.ledger.lock:
                self.failed += 1
                self.ledger.unordered_keys.add(key)
            self._send(key, value)
        self.producer.send(INPUT, key=key.encode(), value=value).add_errback(failed)
        self.sent += 1

    def _one(self):
        if self.recent and self.rng.random() < self.duplicates:
            key, value = self.rng.choice(self.recent)
            with self.ledger.lock:
                self.ledger.resent += 1
            self._send(key, value)
            return
        key = self.rng.choice(KEYS)
        valid = self.rng.random() >= self.invalid
        msg_id, seq = self.ledger.new(valid, key)
        event = {"msg_id": msg_id, "user_id": key, "type": "user.updated" if valid else
                 "user.exploded", "ts": int(time.time() * 1000), "data": {"plan": "pro"}}
        if seq is not None:
            event["seq"] = seq
        value = json.dumps(event, separators=(",", ":")).encode()
        if valid:
            self.recent.append((key, value))
        self._send(key, value)

    def _run(self):
        start = time.monotonic()
        made = 0
        while not self.stop.is_set():
            due = int((time.monotonic() - start) * self.rate)
            for _ in range(due - made):
                self._one()
            made = max(made, due)
            time.sleep(0.05)

    def start(self):
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.producer.flush(timeout=600)
        self.producer.close(timeout=60)


class Follower:
    """A python3-kafka consumer reading every output, error and audit topic as they grow (the
    embedded broker keeps only a few MB per partition: they are read while the run goes on)."""

    def __init__(self, bootstrap, ledger):
        from kafka import KafkaConsumer, TopicPartition
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 5, 0),
                                      enable_auto_commit=False, auto_offset_reset="earliest")
        self.topics = topics()
        self.tps = [TopicPartition(t, p) for t in self.topics for p in range(PARTITIONS)]
        self.consumer.assign(self.tps)
        self.consumer.seek_to_beginning()
        self.ledger = ledger
        self.stop = threading.Event()
        self.want_check = threading.Event()
        self.caught_up = None  # set by the thread after want_check
        self.records = 0
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            while not self.stop.is_set():
                for tp, records in self.consumer.poll(500).items():
                    pipeline, role = self.topics[tp.topic]
                    for r in records:
                        self.records += 1
                        try:
                            event = json.loads(r.value)
                        except ValueError:
                            event = {}
                        self.ledger.saw(pipeline, role, event if isinstance(event, dict) else {})
                if self.want_check.is_set():  # KafkaConsumer is not thread-safe: asked here
                    end = self.consumer.end_offsets(self.tps)
                    self.caught_up = all(self.consumer.position(tp) >= end[tp]
                                         for tp in self.tps)
                    self.want_check.clear()
        except Exception as e:  # noqa: BLE001  reported by the main thread
            self.error = repr(e)

    def start(self):
        self.thread.start()

    def read_to_end(self):
        self.caught_up = None
        self.want_check.set()
        while self.want_check.is_set() and self.error is None:
            time.sleep(0.1)
        return self.caught_up

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.consumer.close()


class Sampler:
    """Every `interval` seconds: kpipe's VmRSS, open fds, threads (and how much was sent and
    processed) to a CSV; keeps the rows."""

    FIELDS = ["t", "phase", "rss_kb", "rss_anon_kb", "fds", "threads", "sent", "processed",
              "fault"]

    def __init__(self, soak, path, interval):
        self.soak, self.interval = soak, interval
        self.file = open(path, "w", newline="")
        self.csv = csv.DictWriter(self.file, self.FIELDS)
        self.csv.writeheader()
        self.rows = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        pid = self.soak.kpipe.proc.pid
        status = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    status[k] = v.split()
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            return None  # it died: the main loop notices
        try:
            processed = int(self.soak.kpipe.metric_sum("kpipe_messages_total"))
        except OSError:
            processed = ""
        row = dict(t=round(time.monotonic() - self.soak.started, 1), phase=self.soak.phase,
                   rss_kb=int(status["VmRSS"][0]), rss_anon_kb=int(status["RssAnon"][0]),
                   fds=fds, threads=int(status["Threads"][0]),
                   sent=self.soak.traffic.sent if self.soak.traffic else 0, processed=processed,
                   fault=self.soak.fault or "")
        self.rows.append(row)
        self.csv.writerow(row)
        self.file.flush()
        return row

    def _run(self):
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.sample()
            next_at += self.interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self):
        self.thread.start()

    def close(self):
        self.stop.set()
        self.thread.join(10)
        self.file.close()


class Soak:
    def __init__(self, args):
        self.args = args
        self.phase = "setup"
        self.fault = None
        self.traffic = None
        self.started = time.monotonic()
        self.ledger = Ledger(random.Random(args.seed).getrandbits(32))
        self.broker = h.Broker([f"{INPUT}:{PARTITIONS}"] +
                               [f"{t}:{PARTITIONS}" for t in topics()])
        self.redis = h.Redis()
        self.receiver = chaos.Receiver(
            record=lambda e: self.ledger.saw("soak-http", "out", e if isinstance(e, dict)
                                             else {}))
        self.concurrency = {p: 32 for p in PIPELINES}
        stores = (f"{{ids: {{type: redis, url: '{self.redis.url}', ttl: 1h, timeout: 500ms}}, "
                  f"local: {{type: memory, ttl: 2m, max_entries: 1000000}}}}")
        self.config = h.ConfigDir(
            self.broker.bootstrap,
            {p: pipeline_yaml(p, self.receiver.url, 32) for p in PIPELINES},
            consumer_properties={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
            stores=stores)
        self.kpipe = h.Kpipe(self.config)
        self.follower = Follower(self.broker.bootstrap, self.ledger)
        self.injected = collections.Counter()
        self.reload_turn = 0

    # --- faults: name -> (on, off); off None: a single action
    def faults(self):
        r, b = self.receiver, self.broker
        rng = random.Random(self.args.seed + 1)
        return [
            ("broker_down", lambda: b.fault("down 1"), lambda: b.fault("up 1")),
            ("redis_stop", self.redis.pause, self.redis.resume),
            ("http_down", r.down, r.up),
            ("reload_changed", self.reload_changed, None),
            ("commit_errors", lambda: b.fault("errors OffsetCommit 30 COORDINATOR_NOT_AVAILABLE"),
             lambda: b.fault("clear OffsetCommit")),
            ("http_5xx", lambda: setattr(r, "status", 503), lambda: setattr(r, "status", 200)),
            ("redis_restart", self.redis.stop, self.redis.start),
            ("sighup", lambda: self.kpipe.signal(signal.SIGHUP), None),
            ("fetch_errors", lambda: b.fault("errors Fetch 50 NOT_LEADER_FOR_PARTITION"),
             lambda: b.fault("clear Fetch")),
            ("http_slow", lambda: setattr(r, "delay", lambda: rng.uniform(0.5, 3.0)),
             lambda: setattr(r, "delay", None)),
        ]

    def selected_faults(self):
        faults = self.faults()
        assert [n for n, _, _ in faults] == FAULTS
        if self.args.faults:
            faults = [f for f in faults if f[0] in self.args.faults.split(",")]
        return faults

    def reload_changed(self):
        """Changes one pipeline (its concurrency, in turn) and sends SIGHUP: the reload drains
        and restarts that pipeline (the file watch may see the change first; then the SIGHUP
        finds nothing to do)."""
        name = list(PIPELINES)[self.reload_turn % len(PIPELINES)]
        self.reload_turn += 1
        self.concurrency[name] = 33 if self.concurrency[name] == 32 else 32
        path = os.path.join(self.config.dir, "pipelines", name + ".yaml")
        with open(path + ".tmp", "w") as f:
            f.write(pipeline_yaml(name, self.receiver.url, self.concurrency[name]))
        os.replace(path + ".tmp", path)
        self.kpipe.signal(signal.SIGHUP)

    def diagnose(self, missing):
        """For lost messages: where kcat (another client than the follower) finds them on the
        broker, and what the pipeline's group committed. Returns lines for the report."""
        lines = []
        try:
            records = {t: h.kcat_consume(self.broker.bootstrap, t)
                       for t in {INPUT} | {f"{p}.{role}" for p, _, role in missing
                                           if PIPELINES[p][2] == "topic" or role == "errors"}}
            starts = {t: h.start_offsets(self.broker.bootstrap, t, PARTITIONS) for t in records}
            for p, msg_id, role in missing:
                def find(topic):
                    return [(r["partition"], r["offset"]) for r in records.get(topic, [])
                            if msg_id in (r["value"] or "")]
                committed = h.committed_offsets(self.broker.bootstrap, p, INPUT, PARTITIONS)
                topic = f"{p}.{role}"
                where = (f"on {topic} at {find(topic)}" if find(topic) else
                         f"not on {topic} (log start offsets {starts[topic]})"
                         if topic in records else "not accepted by the HTTP receiver")
                lines.append(f"{p} lost {msg_id}: input (partition, offset) {find(INPUT)}, "
                             f"group {p} committed {committed}; {where}")
        except Exception as e:  # noqa: BLE001  a diagnosis, not a check
            lines.append(f"diagnosis failed: {e!r}")
        return lines

    def alive(self):
        if self.kpipe.proc.poll() is not None:
            raise AssertionError(f"kpipe exited with {self.kpipe.proc.returncode}:\n"
                                 f"{self.kpipe.log_text()}")
        if self.follower.error:
            raise AssertionError(f"the output follower failed: {self.follower.error}")

    def sleep(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.alive()
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))

    def caught_up(self):
        end = h.end_offsets(self.broker.bootstrap, INPUT, PARTITIONS)
        for p in PIPELINES:
            committed = h.committed_offsets(self.broker.bootstrap, p, INPUT, PARTITIONS)
            if any((committed.get(q) or 0) < end[q] for q in end):
                return False
        return True

    def run(self):
        a = self.args
        self.follower.start()
        self.traffic = Traffic(self.broker.bootstrap, self.ledger, a.rate, a.seed)
        self.sampler = Sampler(self, a.csv, a.sample_interval)
        self.started = time.monotonic()
        self.phase = "run"
        self.sampler.start()
        self.traffic.start()
        faults = self.selected_faults()
        turn = 0
        end = self.started + a.duration
        while True:
            next_fault = self.started + (turn + 1) * a.fault_interval
            if next_fault + (a.outage if faults[turn % len(faults)][2] else 0) > end - 5:
                break
            self.sleep(next_fault - time.monotonic())
            name, on, off = faults[turn % len(faults)]
            turn += 1
            self.fault = name
            print(f"[{time.monotonic() - self.started:6.0f} s] {name}", file=sys.stderr,
                  flush=True)
            on()
            if off:
                self.sleep(a.outage)
                off()
            self.injected[name] += 1
            self.fault = None
        self.sleep(end - time.monotonic())
        self.run_end = time.monotonic() - self.started
        self.phase = "drain"
        print(f"[{self.run_end:6.0f} s] traffic stops; waiting for kpipe to catch up",
              file=sys.stderr, flush=True)
        self.traffic.finish()
        drained = time.monotonic()
        h.wait_for(lambda: self.alive() or self.caught_up(), 600,
                   "every pipeline to commit every input message", interval=1)
        self.catch_up = time.monotonic() - drained
        h.wait_for(lambda: self.alive() or self.follower.read_to_end(), 120,
                   "the follower to read every output topic to its end", interval=1)
        self.sampler.close()

    def close(self):
        for stop in (lambda: self.sampler.close() if hasattr(self, "sampler") else None,
                     self.follower.close,
                     lambda: self.kpipe.kill() if self.kpipe.proc.poll() is None else None,
                     self.receiver.stop, self.redis.stop, self.broker.stop):
            try:
                stop()
            except Exception as e:  # noqa: BLE001  clean up the rest anyway
                print(f"cleanup: {e!r}", file=sys.stderr)


def fit(points):
    """Least-squares slope of [(x, y)]."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=duration, default=3600,
                        help="traffic and faults for this long (600, 10m, 1h; default 1h)")
    parser.add_argument("--rate", type=float, default=200,
                        help="input messages a second (each goes through 3 pipelines)")
    parser.add_argument("--fault-interval", type=duration, default=60,
                        help="seconds between faults (default 60)")
    parser.add_argument("--outage", type=duration, default=10, help="seconds a fault lasts")
    parser.add_argument("--sample-interval", type=duration, default=5)
    parser.add_argument("--warmup", type=duration,
                        help="samples before this are not judged (default: one round of "
                             "every fault, at most half the duration)")
    parser.add_argument("--max-rss-slope", type=float, default=1.0,
                        help="MB per 10 minutes (default 1)")
    parser.add_argument("--fd-margin", type=int, default=8)
    parser.add_argument("--csv", default="soak.csv", help="samples (default ./soak.csv)")
    parser.add_argument("--faults", help="comma-separated fault names (default: all, in turn)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep kpipe's config dir and log")
    args = parser.parse_args()

    unknown = set(args.faults.split(",")) - set(FAULTS) if args.faults else set()
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    problems = []
    soak = Soak(args)
    rounds = len(soak.selected_faults()) * args.fault_interval
    warmup = args.warmup if args.warmup is not None else min(rounds, args.duration / 2)
    print(f"soak: {args.duration:.0f} s at {args.rate:g} msg/s, a fault every "
          f"{args.fault_interval:g} s ({args.outage:g} s each), samples every "
          f"{args.sample_interval:g} s to {args.csv}; kpipe pid {soak.kpipe.proc.pid}, "
          f"config {soak.config.dir}", file=sys.stderr, flush=True)
    code = None
    try:
        soak.run()
        lost, stats, missing = soak.ledger.check()
        problems += lost + soak.diagnose(missing)
        reloads = soak.kpipe.metrics()
        failed_reloads = sum(v for (n, l), v in reloads.items()
                             if n == "kpipe_config_reloads_total" and ("result", "failure") in l)
        ok_reloads = sum(v for (n, l), v in reloads.items()
                         if n == "kpipe_config_reloads_total" and ("result", "success") in l)
        if failed_reloads:
            problems.append(f"{failed_reloads:.0f} config reloads failed")
        if soak.traffic.failed:
            print(f"note: {soak.traffic.failed} produce failures (sent again)", file=sys.stderr)
        code = soak.kpipe.stop(timeout=90)
        if code != 0:
            problems.append(f"kpipe exited {code} on SIGTERM")
    except AssertionError as e:
        problems.append(str(e)[:4000])
        stats, ok_reloads = None, 0
    finally:
        soak.close()

    sampler = getattr(soak, "sampler", None)
    rows = [r for r in sampler.rows if r["phase"] == "run"] if sampler else []
    run_end = getattr(soak, "run_end", args.duration)
    judged = [r for r in rows if r["t"] >= warmup]
    slope = fit([(r["t"] / 600, r["rss_kb"] / 1024) for r in judged])  # MB per 10 min
    window = min(rounds, max(args.sample_interval, (run_end - warmup) / 2))
    first = [r["fds"] for r in judged if r["t"] < warmup + window]
    last = [r["fds"] for r in judged if r["t"] >= run_end - window]
    if len(judged) < 10:
        problems.append(f"only {len(judged)} samples after the warm-up: run longer")
    else:
        if slope >= args.max_rss_slope:
            problems.append(f"RSS grows {slope:+.2f} MB per 10 min after the warm-up "
                            f"(limit {args.max_rss_slope:g})")
        if max(last) > max(first) + args.fd_margin:
            problems.append(f"open fds grow: max {max(first)} in the first window, "
                            f"{max(last)} in the last (margin {args.fd_margin})")

    mb = lambda kb: f"{kb / 1024:.1f}"  # noqa: E731
    print("\n== soak summary ==")
    print(f"duration: {run_end:.0f} s of traffic and faults, warm-up {warmup:.0f} s, "
          f"windows {window:.0f} s; kpipe caught up {getattr(soak, 'catch_up', float('nan')):.1f}"
          f" s after the traffic stopped")
    if rows:
        rss = [r["rss_kb"] for r in rows]
        fds = [r["fds"] for r in rows]
        thr = [r["threads"] for r in rows]
        print(f"samples: {len(rows)} (every {args.sample_interval:g} s, {len(judged)} after the "
              f"warm-up) in {args.csv}")
        after = mb(judged[0]["rss_kb"]) if judged else "-"
        print(f"RSS MB: first {mb(rss[0])}, after warm-up {after}, last {mb(rss[-1])}, max "
              f"{mb(max(rss))}; slope after warm-up "
              f"{slope:+.2f} MB/10 min (limit {args.max_rss_slope:g})")
        print(f"fds: first {fds[0]}, last {fds[-1]}, max {max(fds)}; first window max "
              f"{max(first) if first else '-'}, last window max {max(last) if last else '-'} "
              f"(margin {args.fd_margin})")
        print(f"threads: first {thr[0]}, last {thr[-1]}, max {max(thr)}")
    if stats:
        s = stats["sent"]
        print(f"messages: {s['valid'] + s['invalid'] + s['resent']} sent ({s['valid']} valid, "
              f"{s['invalid']} invalid, {s['resent']} duplicates sent again); produce "
              f"failures {soak.traffic.failed}")
        for p in PIPELINES:
            st = stats[p]
            print(f"  {p}: {st['distinct']} of {s['valid']} valid delivered ({st['delivered']} "
                  f"deliveries: {st['duplicated']} duplicated, {st['replays']} of them after "
                  f"a later seq of their key), {st['errors']} of {s['invalid']} invalid in errors, "
                  f"{st['audited']} audited")
    print(f"faults injected: {sum(soak.injected.values())} ("
          + ", ".join(f"{k} {v}" for k, v in soak.injected.items()) + f"); reloads ok "
          f"{ok_reloads:.0f}")
    print(f"kpipe exit: {code}")
    for p in problems:
        print(f"FAILED: {p}")
    print(f"verdict: {'FAIL' if problems else 'PASS'}")
    if not args.keep and not problems:
        soak.config.cleanup()
    else:
        print(f"kpipe's config and log: {soak.config.dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
