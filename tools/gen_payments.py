#!/usr/bin/python3
"""Generates payment events for the payments demo pipeline as KEY<TAB>VALUE lines (kcat -K '\t'):
mostly valid authorizations and refunds, a few with unknown types or schema errors, a few
duplicates.

  gen_payments.py -n 100 --seed 3 | kcat -P -b BOOTSTRAP -t payments -K '\t'
"""
import argparse
import json
import random
import uuid


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    seen = []
    for _ in range(args.n):
        account = f"acc-{rng.randrange(200):04d}"
        roll = rng.random()
        if roll < 0.04 and seen:
            key, value = rng.choice(seen)
            print(f"{key}\t{value}")
            continue
        event = {"msg_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                 "account_id": account, "amount": rng.randrange(1, 100000)}
        if roll < 0.70:
            event.update(type="payment.authorized", currency=rng.choice(["EUR", "USD", "GBP"]))
        elif roll < 0.92:
            event.update(type="payment.refunded", refund_of=str(uuid.UUID(int=rng.getrandbits(128))))
        elif roll < 0.96:
            event.update(type="payment.authorized", currency="euro")  # fails the pattern
        else:
            event.update(type="payment.chargeback")  # unknown type
        value = json.dumps(event, separators=(",", ":"))
        seen.append((account, value))
        print(f"{account}\t{value}")


if __name__ == "__main__":
    main()
