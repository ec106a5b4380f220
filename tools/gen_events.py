#!/usr/bin/python3
"""Generates user events for the user-events pipeline: valid ones, invalid ones of many kinds,
and duplicates of earlier valid ones (same key, same bytes).

Writes one record per line as KEY<TAB>VALUE, the format of `kcat -P -K '\t' -Z` (an empty
VALUE is sent as a tombstone). With --expect FILE, also writes what kpipe must produce:
{"output": [[key, value]...], "errors": [[key, value, stage]...], "audit": [[key, value]...]}.

  gen_events.py -n 10000 --invalid 0.05 --duplicates 0.05 --seed 1 > events.tsv
"""
import argparse
import json
import random
import sys
import uuid

KINDS = ["not_json", "not_object", "missing_key", "empty_key", "schema_type", "schema_enum",
         "bad_msg_id", "missing_id", "tombstone", "truncated"]


def valid_event(rng, users):
    user = f"user-{rng.randrange(users):05d}"
    event = {
        "msg_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "user_id": user,
        "type": rng.choice(["user.signed_up", "user.updated", "user.deleted"]),
        "ts": 1_700_000_000_000 + rng.randrange(10**9),
        "data": {"email": f"{user}@example.com", "plan": rng.choice(["free", "pro", "team"])},
    }
    return user, event


def invalid_event(rng, users, kind):
    """Returns (key, value, stage) for a message kpipe must route to the error topic."""
    key, event = valid_event(rng, users)
    text = lambda e: json.dumps(e, separators=(",", ":"))
    if kind == "not_json":
        return key, "this is not json {", "decode"
    if kind == "truncated":
        return key, text(event)[:-7], "decode"
    if kind == "not_object":
        return key, "[1,2,3]", "decode"
    if kind == "tombstone":
        return key, "", "decode"
    if kind == "missing_key":
        del event["user_id"]
        return key, text(event), "key"
    if kind == "empty_key":
        event["user_id"] = ""
        return key, text(event), "key"
    if kind == "missing_id":
        del event["msg_id"]
        return key, text(event), "id"
    if kind == "schema_type":
        event["ts"] = "yesterday"
        return key, text(event), "schema"
    if kind == "schema_enum":
        event["type"] = "user.exploded"
        return key, text(event), "schema"
    if kind == "bad_msg_id":
        event["msg_id"] = "not-a-uuid-" + str(rng.randrange(10**9))
        return key, text(event), "schema"
    raise ValueError(kind)


def generate(n, invalid, duplicates, seed, users):
    rng = random.Random(seed)
    records, expect = [], {"output": [], "errors": [], "audit": []}
    valid_so_far = []
    for _ in range(n):
        roll = rng.random()
        if roll < invalid:
            key, value, stage = invalid_event(rng, users, rng.choice(KINDS))
            records.append((key, value))
            expect["errors"].append([key, value, stage])
        elif roll < invalid + duplicates and valid_so_far:
            key, value = rng.choice(valid_so_far)
            records.append((key, value))
            expect["audit"].append([key, value])
        else:
            key, event = valid_event(rng, users)
            value = json.dumps(event, separators=(",", ":"))
            records.append((key, value))
            valid_so_far.append((key, value))
            expect["output"].append([key, value])
    return records, expect


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1000, help="number of records")
    parser.add_argument("--invalid", type=float, default=0.05, help="share of invalid records")
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of duplicates")
    parser.add_argument("--users", type=int, default=500, help="distinct keys")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--expect", help="write the expected routing to this JSON file")
    args = parser.parse_args()
    records, expect = generate(args.n, args.invalid, args.duplicates, args.seed, args.users)
    out = sys.stdout
    for key, value in records:
        out.write(f"{key}\t{value}\n")
    if args.expect:
        with open(args.expect, "w") as f:
            json.dump(expect, f)


if __name__ == "__main__":
    main()
