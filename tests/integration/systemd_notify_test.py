#!/usr/bin/python3
"""sd_notify, as systemd sees it: kpipe run with NOTIFY_SOCKET pointing at a datagram socket of
the test (what systemd gives a Type=notify service) and WATCHDOG_USEC set (WatchdogSec=).

- READY=1 once the pipelines run;
- WATCHDOG=1 pings at half the watchdog interval, from the event loop;
- SIGHUP (ExecReload): RELOADING=1 with MONOTONIC_USEC, then READY=1;
- SIGTERM: STOPPING=1, then exit 0.
Outside systemd (no NOTIFY_SOCKET) the other integration tests run kpipe unchanged.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

PIPELINE = """
name: events
input: {topic: events, group: notify-group}
key: /user_id
output: {topic: events.out}
"""


class SystemdNotifyTest(unittest.TestCase):
    def test_ready_watchdog_reloading_stopping(self):
        broker = h.Broker(["events:1", "events.out:1", "events.errors:1", "events.audit:1"])
        config = h.ConfigDir(broker.bootstrap, {"events": PIPELINE})
        sock_dir = tempfile.mkdtemp(prefix="kpipe-notify-")
        path = os.path.join(sock_dir, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.2)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
        log = open(os.path.join(config.dir, "kpipe.log"), "w")
        proc = subprocess.Popen([h.KPIPE, "run", config.path], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        messages = []  # (monotonic time, datagram)

        def receive(until, predicate, what):
            deadline = time.monotonic() + until
            while time.monotonic() < deadline:
                try:
                    data = sock.recv(4096).decode()
                except socket.timeout:
                    continue
                messages.append((time.monotonic(), data))
                if predicate(data):
                    return data
            raise AssertionError(f"no {what} within {until}s; got {[m for _, m in messages]}")

        try:
            ready = receive(30, lambda m: "READY=1" in m, "READY=1")
            self.assertIn("STATUS=running", ready)
            started = time.monotonic()
            # Pings at half of WATCHDOG_USEC: about 4 in 2 s.
            deadline = started + 2.2
            while time.monotonic() < deadline:
                try:
                    messages.append((time.monotonic(), sock.recv(4096).decode()))
                except socket.timeout:
                    pass
            pings = [t for t, m in messages if t >= started and m == "WATCHDOG=1"]
            self.assertGreaterEqual(len(pings), 3, messages)

            proc.send_signal(signal.SIGHUP)
            reloading = receive(10, lambda m: "RELOADING=1" in m, "RELOADING=1")
            self.assertRegex(reloading, r"MONOTONIC_USEC=\d+")
            receive(10, lambda m: "READY=1" in m, "READY=1 after the reload")

            proc.send_signal(signal.SIGTERM)
            receive(10, lambda m: "STOPPING=1" in m, "STOPPING=1")
            self.assertEqual(proc.wait(60), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            sock.close()
            os.unlink(path)
            os.rmdir(sock_dir)
            broker.stop()
            config.cleanup()


if __name__ == "__main__":
    unittest.main()
