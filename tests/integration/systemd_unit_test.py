#!/usr/bin/python3
"""systemd/: the unit, the sysusers and tmpfiles snippets, checked with systemd's own tools.

- `systemd-analyze verify` passes on the shipped unit, with ExecStart/ExecStartPre pointed at
  the built binary (verify checks that they are executable) and no other change; a unit whose
  binary is missing fails it, so the check can fail;
- `systemd-analyze security --offline=true` rates the unit's exposure at most 2.0;
- the unit is Type=notify with a watchdog and ExecReload (kpipe speaks sd_notify: see
  systemd_notify_test.py), has a StateDirectory, runs as the kpipe user;
- systemd-sysusers and systemd-tmpfiles apply the snippets to an empty root: the user, the
  group and the config directories with the right owner and mode.
Without systemd's tools the test is skipped, except in CI (CI=true), where it fails.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

SYSTEMD_DIR = os.path.join(h.SOURCE_DIR, "systemd")
MAX_EXPOSURE = 2.0


def tool(name):
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{name} is missing (package systemd): deploy/setup.sh installs it")
        raise unittest.SkipTest(f"{name} not installed")
    return path


class SystemdUnitTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kpipe-systemd-")
        with open(os.path.join(SYSTEMD_DIR, "kpipe.service")) as f:
            self.unit = f.read()

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def verify(self, binary):
        path = os.path.join(self.dir, "kpipe.service")
        with open(path, "w") as f:
            f.write(self.unit.replace("/usr/bin/kpipe", binary))
        return subprocess.run([tool("systemd-analyze"), "verify", path], capture_output=True,
                              text=True)

    def test_verify(self):
        result = self.verify(os.path.abspath(h.KPIPE))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr.strip(), "", "systemd-analyze verify warned")
        broken = self.verify("/nonexistent/kpipe")
        self.assertNotEqual(broken.returncode, 0)
        self.assertIn("not executable", broken.stderr)

    def test_exposure_at_most_2(self):
        result = subprocess.run([tool("systemd-analyze"), "security", "--offline=true",
                                 os.path.join(SYSTEMD_DIR, "kpipe.service")],
                                capture_output=True, text=True)
        m = re.search(r"Overall exposure level for kpipe.service: ([0-9.]+)", result.stdout)
        self.assertIsNotNone(m, result.stdout + result.stderr)
        exposure = float(m.group(1))
        print(f"systemd-analyze security: exposure {exposure}", file=sys.stderr)
        self.assertLessEqual(exposure, MAX_EXPOSURE, result.stdout)

    def test_unit_settings(self):
        settings = {}
        for line in self.unit.splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings.setdefault(key.strip(), []).append(value.strip())
        self.assertEqual(settings["Type"], ["notify"])
        self.assertTrue(settings["WatchdogSec"])
        self.assertIn("kill -HUP $MAINPID", settings["ExecReload"][0])
        self.assertEqual(settings["StateDirectory"], ["kpipe"])
        self.assertEqual(settings["User"], ["kpipe"])
        # Longer than kpipe's default drain timeout (30 s): a stop drains before SIGKILL.
        self.assertGreater(int(settings["TimeoutStopSec"][0].rstrip("s")), 30)

    def test_sysusers_and_tmpfiles(self):
        root = os.path.join(self.dir, "root")
        os.makedirs(os.path.join(root, "etc"))
        subprocess.run([tool("systemd-sysusers"), f"--root={root}",
                        os.path.join(SYSTEMD_DIR, "kpipe.sysusers")], check=True,
                       capture_output=True)
        with open(os.path.join(root, "etc", "passwd")) as f:
            user = next(line for line in f if line.startswith("kpipe:")).split(":")
        with open(os.path.join(root, "etc", "group")) as f:
            group = next(line for line in f if line.startswith("kpipe:")).split(":")
        self.assertEqual(user[5], "/var/lib/kpipe")
        self.assertIn(user[6].strip(), ("/usr/sbin/nologin", "/sbin/nologin"))
        subprocess.run([tool("systemd-tmpfiles"), "--create", f"--root={root}",
                        os.path.join(SYSTEMD_DIR, "kpipe.tmpfiles")], check=True,
                       capture_output=True)
        for d in ("etc/kpipe", "etc/kpipe/pipelines"):
            st = os.stat(os.path.join(root, d))
            self.assertEqual(oct(st.st_mode & 0o777), "0o750", d)
            self.assertEqual(st.st_gid, int(group[2]), d)


if __name__ == "__main__":
    unittest.main()
