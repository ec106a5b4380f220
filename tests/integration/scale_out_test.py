#!/usr/bin/python3
"""Scale-out (issue #4): three `kpipe run` processes share one consumer group; while kcat keeps
producing 100,000 messages over 1,000 keys, one member is killed with SIGKILL (a crash: no
drain, no commit, no leave) and another is stopped with SIGTERM and started again.

Asserted at the end:
- every valid input id reaches the output topic, nothing else does, and every invalid one is on
  the error topic (stage schema), not on the output;
- for every key, the output order equals the input order once redelivered repeats are removed
  (see check_key_order for the exact rule and why it is the right one);
- every output record is in the partition the Java client's partitioner would choose for its
  key (murmur2), including the keys of Kafka's own murmur2 test vectors;
- the group's committed offsets are the end offsets of the input topic (it caught up).

Prints one summary line (messages produced, output records, repeats, elapsed) to stderr.
KPIPE_TEST_KEEP=1 keeps the members' config dirs and logs, with every topic dumped there.
"""
import collections
import json
import os
import random
import signal
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

# Kafka's own murmur2 test vectors, as the Java ints they assert: apache/kafka,
# clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, UtilsTest.testMurmur2
# (read at commit f55581dc73953c3509a4702433aeeeddc2970779).
KAFKA_MURMUR2_VECTORS = [
    ("21", -973932308),
    ("foobar", -790332482),
    ("a-little-bit-long-string", -985981536),
    ("a-little-bit-longer-string", -1486304829),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    ("abc", 479470107),  # new byte[] {'a', 'b', 'c'}
]

PARTITIONS = 8  # 3 members: 3 + 3 + 2 partitions (range assignor), 2 members: 4 + 4
N = 100_000
KEYS = 1000
INVALID = 500  # schema failures, interleaved with the valid messages of their keys
CHUNKS = 25  # kcat runs, CHUNK_PAUSE apart: >= 30 s of traffic around the kill and the restart
CHUNK_PAUSE = 1.0
GROUP = "scale-out-group"
TOPIC = "scale-events"
PIPELINE = f"""
name: scale-events
input: {{topic: {TOPIC}, group: {GROUP}}}
key: /user_id
schema: schemas/user-event.json
dedup: {{id: /msg_id, store: ids, on_duplicate: audit}}
output: {{topic: {TOPIC}.out}}
errors: {{topic: {TOPIC}.errors, audit_topic: {TOPIC}.audit}}
"""
KEEP = bool(os.environ.get("KPIPE_TEST_KEEP"))
TOPICS = [TOPIC, f"{TOPIC}.out", f"{TOPIC}.errors", f"{TOPIC}.audit"]


def java_to_positive_partition(java_int, partitions):
    """Utils.toPositive(murmur2(key)) % partitions, from the Java int itself."""
    return (java_int & 0x7FFFFFFF) % partitions


def generate(seed, n=N, key_count=KEYS, invalid_count=INVALID):
    """KEY<TAB>VALUE lines for kcat, and what kpipe must make of them.

    Every message has a unique msg_id (a UUID) and its production index `n`. Valid messages
    carry `seq`, 1, 2, 3... per key in production order; kcat's murmur2 partitioner puts all of
    a key's messages in one input partition, so the input order of a key is its seq order.
    Invalid ones (a type the schema's enum refuses) carry no seq.
    Returns (lines, {msg_id: (key, seq, n)} of the valid ones, {msg_id} of the invalid ones,
    {key: number of valid messages})."""
    rng = random.Random(seed)
    keys = [k for k, _ in KAFKA_MURMUR2_VECTORS]
    keys += [f"user-{i:04d}" for i in range(key_count - len(keys))]
    invalid_at = set(rng.sample(range(n), invalid_count))
    seq = collections.Counter()
    lines, valid, invalid = [], {}, set()
    for i in range(n):
        key = rng.choice(keys)
        msg_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        event = {"msg_id": msg_id, "user_id": key, "type": "user.updated",
                 "ts": 1_700_000_000_000 + i, "n": i}
        if i in invalid_at:
            event["type"] = "user.exploded"
            invalid.add(msg_id)
        else:
            seq[key] += 1
            event["seq"] = seq[key]
            valid[msg_id] = (key, seq[key], i)
        lines.append(f"{key}\t{json.dumps(event, separators=(',', ':'))}")
    return lines, valid, invalid, dict(seq)


def check_key_order(seqs, n):
    """Checks one key's output (its seqs in output-offset order) against its input 1..n.

    At-least-once with a crash: the output of a key is what its input partition's owners wrote,
    one after another. A crashed owner's uncommitted suffix is read again by the next owner from
    the last committed offset, so the key's output looks like  1 2 3 4 5 | 3 4 5 6 7 ...  (a
    replay restarts at or before the first seq the crash left unacknowledged; repeats that the
    new owner's dedup store recognises go to the audit topic instead, leaving holes only where
    a seq was already written). "Output order equals input order once redelivered repeats are
    removed" is then exactly: keeping only the first occurrence of each seq gives 1, 2, ..., n.
    That rejects a lost message (a seq missing), a reordering (4 written before 3 ever was: the
    first occurrences are out of order), a gap a replay skipped, and any foreign seq. It is the
    same as "keep the elements greater than every earlier one: they are 1, 2, ..., n" (each
    first occurrence is a new maximum; a later element is never new once the maxima are
    consecutive).

    Returns (ok, message, replays): replays = how many times the key's output went back."""
    seen = set()
    first = []
    for s in seqs:
        if s not in seen:
            seen.add(s)
            first.append(s)
    replays = sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a)
    if first != list(range(1, n + 1)):
        missing = sorted(set(range(1, n + 1)) - seen)
        bad = next((i for i, s in enumerate(first) if s != i + 1), len(first))
        at = seqs.index(first[bad]) if bad < len(first) else len(seqs)
        return False, (f"{len(first)} distinct of {n}, missing {missing[:10]}, first occurrences "
                       f"diverge at {bad + 1}: ...{first[max(0, bad - 3):bad + 4]}...; output "
                       f"seqs there: ...{seqs[max(0, at - 10):at + 10]}..."), replays
    return True, "", replays


def busy(member, window=0.2, rate=250):
    """Whether `member` is routing at least `rate` messages a second right now."""
    before = member.metric_sum("kpipe_messages_total")
    time.sleep(window)
    return member.metric_sum("kpipe_messages_total") - before >= rate * window


def assigned_partitions(member):
    """The input partitions `member` owns now, from its log."""
    owned = set()
    for r in member.log_records():
        if r.get("msg") in ("partitions assigned", "partitions revoked", "partitions lost"):
            parts = {int(p) for p in r["partitions"].split(",") if p}
            owned = owned | parts if r["msg"] == "partitions assigned" else owned - parts
    return owned


def log_records(config):
    """The JSON log records of every kpipe process that ran on `config`."""
    records = []
    for name in sorted(os.listdir(config.dir)):
        if name.startswith("kpipe-") and name.endswith(".log"):
            with open(os.path.join(config.dir, name)) as f:
                for line in f:
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        pass
    return records


class Murmur2VectorsTest(unittest.TestCase):
    def test_harness_murmur2_matches_kafka_utils_test(self):
        for key, java_int in KAFKA_MURMUR2_VECTORS:
            self.assertEqual(h.murmur2(key.encode()), java_int & 0xFFFFFFFF, key)
            self.assertEqual(h.java_partition(key, PARTITIONS),
                             java_to_positive_partition(java_int, PARTITIONS), key)


class KeyOrderCheckTest(unittest.TestCase):
    """The order rule itself, so that the big test's verdict means what it says."""

    def test_accepts_in_order_and_replays(self):
        self.assertEqual(check_key_order([1, 2, 3, 4], 4), (True, "", 0))
        self.assertEqual(check_key_order([1, 2, 3, 4, 3, 4, 5, 6], 6), (True, "", 1))
        self.assertEqual(check_key_order([1, 2, 3, 4, 2, 4, 5], 5), (True, "", 1))  # 3 audited
        self.assertEqual(check_key_order([1, 2, 3, 2, 3, 4, 3, 4, 5], 5), (True, "", 2))

    def test_rejects_loss_reorder_and_gaps(self):
        self.assertFalse(check_key_order([1, 2, 4], 4)[0])  # 3 lost
        self.assertFalse(check_key_order([1, 3, 2, 4], 4)[0])  # reordered
        self.assertFalse(check_key_order([1, 2, 3, 5, 4, 5], 5)[0])  # replay filled a gap
        self.assertFalse(check_key_order([1, 2, 3, 4, 5], 4)[0])  # a seq that was not input


class ScaleOutTest(unittest.TestCase):
    def test_three_members_kill_and_restart_lose_nothing_and_keep_key_order(self):
        started = time.monotonic()
        lines, valid, invalid, seq_count = generate(seed=4)
        broker = h.Broker([f"{t}:{PARTITIONS}" for t in TOPICS])
        configs = [h.ConfigDir(broker.bootstrap, {"scale-events": PIPELINE}) for _ in range(3)]
        members = []
        killed, restarted = threading.Event(), threading.Event()
        try:
            members = [h.Kpipe(c) for c in configs]

            def assigned(ms):
                return [m.metric_sum("kpipe_assigned_partitions") for m in ms]

            h.wait_for(lambda: sum(assigned(members)) == PARTITIONS
                       and min(assigned(members)) > 0, 60, "every member owns partitions")

            chunks = [lines[i * len(lines) // CHUNKS:(i + 1) * len(lines) // CHUNKS]
                      for i in range(CHUNKS)]
            sent = [0]
            done = threading.Event()

            def produce():
                # Traffic goes on past the kill and past the restart however long the group
                # takes to rebalance: the producer holds the last part of the stream back until
                # they happened (the kill comes after a third, the restart after two thirds).
                for chunk in chunks:
                    for gate, at in ((killed, N // 2), (restarted, 4 * N // 5)):
                        if sent[0] >= at:
                            gate.wait(180)
                    h.kcat_produce(broker.bootstrap, TOPIC, chunk)
                    sent[0] += len(chunk)
                    time.sleep(CHUNK_PAUSE)
                done.set()

            producer = threading.Thread(target=produce, daemon=True)
            producer.start()

            # the crash: a third of the stream in, while member 0 is busy
            h.wait_for(lambda: sent[0] >= N // 3, 120, "a third of the input produced")
            # Killed while it is busy, so that it has work in flight or not yet committed
            # (auto-commit runs every second): that work is redone by the next owner. (Not busy
            # by half the stream, where the producer waits: killed anyway.)
            h.wait_for(lambda: busy(members[0]) or sent[0] >= N // 2, 60, "member 0 busy")
            killed_after = members[0].metric_sum("kpipe_messages_total")
            crashed_partitions = assigned_partitions(members[0])
            self.assertEqual(members[0].kill(), -signal.SIGKILL)
            kill_sent = sent[0]
            killed.set()  # the producer waits for it at half the stream
            self.assertLess(kill_sent, N, "the kill missed the traffic")
            print(f"SIGKILL member 0 (partitions {sorted(crashed_partitions)}) after "
                  f"{killed_after:.0f} of its messages, {kill_sent} produced", file=sys.stderr)
            # the survivors take its partitions over (after the session timeout)
            h.wait_for(lambda: sum(assigned(members[1:])) == PARTITIONS, 60,
                       "members 1 and 2 own every partition")

            # the restart: two thirds in, while member 1 works on its share of the traffic
            h.wait_for(lambda: sent[0] >= 2 * N // 3, 120, "two thirds of the input produced")
            h.wait_for(lambda: busy(members[1]) or sent[0] >= 4 * N // 5, 60, "member 1 busy")
            restart_sent = sent[0]
            code = members[1].stop()
            restarted.set()  # the producer waits for it at four fifths of the stream
            self.assertEqual(code, 0, members[1].log_text())
            stopping = members[1].log_records("pipeline stopping: finishing in-flight messages")
            print(f"SIGTERM member 1 at {restart_sent} produced, "
                  f"{stopping[-1]['inflight']} in flight; starting it again", file=sys.stderr)
            members[1] = h.Kpipe(configs[1])
            h.wait_for(lambda: sum(assigned(members[1:])) == PARTITIONS
                       and min(assigned(members[1:])) > 0, 60,
                       "restarted member 1 and member 2 share the partitions")
            self.assertLess(restart_sent, N, "the restart missed the traffic")

            producer.join(180)
            self.assertTrue(done.is_set(), "kcat did not finish producing")
            ends = h.end_offsets(broker.bootstrap, TOPIC, PARTITIONS)
            self.assertEqual(sum(ends.values()), N)
            h.wait_for(lambda: h.committed_offsets(broker.bootstrap, GROUP, TOPIC, PARTITIONS)
                       == ends, 120, "the group committed the end of the input", interval=1)
            for m in members[1:]:
                self.assertEqual(m.stop(), 0, m.log_text())

            out = h.kcat_consume(broker.bootstrap, f"{TOPIC}.out")
            errors = h.kcat_consume(broker.bootstrap, f"{TOPIC}.errors")
            audit = h.kcat_consume(broker.bootstrap, f"{TOPIC}.audit")
            # committed offsets stay where they are after the members are gone
            self.assertEqual(h.committed_offsets(broker.bootstrap, GROUP, TOPIC, PARTITIONS),
                             ends)

            # every valid id reaches the output, nothing else does; invalid ones are errors
            out_ids = collections.Counter()
            per_key = collections.defaultdict(list)
            misplaced = []
            for r in sorted(out, key=lambda r: (r["partition"], r["offset"])):
                event = json.loads(r["value"])
                out_ids[event["msg_id"]] += 1
                self.assertEqual(r["key"], event["user_id"], r)
                if r["partition"] != h.java_partition(r["key"], PARTITIONS):
                    misplaced.append((r["key"], r["partition"]))
                per_key[r["key"]].append(event.get("seq"))
            self.assertEqual(misplaced[:10], [], f"{len(misplaced)} output records are not in "
                                                 f"the partition murmur2 gives their key")
            self.assertEqual(set(out_ids) - set(valid), set(),
                             "output holds ids that are not valid input")
            lost = set(valid) - set(out_ids)
            self.assertEqual(len(lost), 0, f"{len(lost)} valid ids never reached the output, "
                                           f"e.g. {[valid[i] for i in sorted(lost)[:10]]}")
            error_ids = {json.loads(r["value"])["msg_id"] for r in errors}
            self.assertEqual(error_ids, invalid)
            for r in errors:
                self.assertEqual(r["headers"]["kpipe.error.stage"], "schema", r)
            for r in audit:  # a redelivered repeat that a member's dedup store recognised
                self.assertIn(json.loads(r["value"])["msg_id"], out_ids, r)

            # per key: output order == input order once redelivered repeats are removed
            self.assertEqual(set(per_key), set(seq_count))
            bad, replays = [], collections.Counter()
            for key, seqs in per_key.items():
                ok, why, back = check_key_order(seqs, seq_count[key])
                replays[back] += 1
                if not ok:
                    bad.append(f"{key}: {why}")
            self.assertEqual(bad[:5], [], f"{len(bad)} keys out of order")

            # the kill landed mid-work: messages the crashed member had written to the output
            # but not committed were redone by the next owner (else the test proved little)
            redone = sum(1 for i, c in out_ids.items() if c > 1
                         and h.java_partition(valid[i][0], PARTITIONS) in crashed_partitions
                         and valid[i][2] < kill_sent)
            self.assertGreater(redone, 0, "no work of the killed member was redelivered")

            # Kafka's own murmur2 vectors, end to end: kpipe placed those keys where Java would
            for key, java_int in KAFKA_MURMUR2_VECTORS:
                parts = {r["partition"] for r in out if r["key"] == key}
                self.assertEqual(parts, {java_to_positive_partition(java_int, PARTITIONS)}, key)

            # Repeats: redone after the crash, and after every rebalance, because the mock
            # coordinator refuses offset commits while the group is rebalancing (a real broker
            # takes them until the rebalance completes); counted as "commits refused".
            logs = [r for c in configs for r in log_records(c)]
            refused = sum(1 for r in logs
                          if "Offset commit" in r.get("msg", "") and "failed" in r["msg"])
            print(f"scale-out: produced {N} ({len(invalid)} invalid) over {len(seq_count)} "
                  f"keys, SIGKILL at {kill_sent}, SIGTERM+start at {restart_sent}; output "
                  f"{len(out)} records, {len(out) - len(valid)} repeats ({redone} of the killed "
                  f"member's work), {len(audit)} audited, {len(errors)} errors; keys by replays "
                  f"{dict(sorted(replays.items()))}; "
                  f"{sum(r.get('msg') == 'partitions assigned' for r in logs)} assignments, "
                  f"{refused} commits refused; elapsed {time.monotonic() - started:.1f}s",
                  file=sys.stderr)
        except BaseException:
            killed.set()
            restarted.set()
            for i, c in enumerate(configs):
                print(f"member {i} logs: {c.dir}" + ("" if KEEP else " (removed; "
                      "KPIPE_TEST_KEEP=1 keeps them)"), file=sys.stderr)
            raise
        finally:
            for m in members:
                if m.proc.poll() is None:
                    m.kill()
            if KEEP:
                self.keep_for_post_mortem(broker, configs)
            broker.stop()
            for c in configs if not KEEP else []:
                c.cleanup()

    @staticmethod
    def keep_for_post_mortem(broker, configs):
        """KPIPE_TEST_KEEP=1: the members' logs stay, and every topic is dumped next to them."""
        for t in TOPICS:
            with open(os.path.join(configs[0].dir, f"{t}.jsonl"), "w") as f:
                for r in h.kcat_consume(broker.bootstrap, t):
                    f.write(json.dumps(r) + "\n")
        print(f"kept: {[c.dir for c in configs]}", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
