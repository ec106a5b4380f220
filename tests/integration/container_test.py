#!/usr/bin/python3
"""The Dockerfile: builds the image with podman, without any registry, and runs it.

- a local Debian bookworm base image (localhost/kpipe-base:bookworm) is made once with
  mmdebstrap (or debootstrap) from the host's Debian mirror and kept by podman between runs;
  the image is built on it with `podman build --isolation=chroot --format docker` (docker
  format: OCI images have no HEALTHCHECK);
- `kpipe version` and `kpipe check /etc/kpipe/kpipe.yaml` run in it (the default config,
  with its schemas, loads: OK);
- the image runs as the user kpipe (uid 10001), has a HEALTHCHECK on /healthz, exposes 9464,
  keeps state in the volume /var/lib/kpipe (writable by kpipe) and has no compiler;
- a config directory bind-mounted over /etc/kpipe replaces the default;
- the default config runs on the embedded broker with the port published on loopback:
  /healthz answers ok from the host, `podman healthcheck run` reports healthy, and `podman
  stop` (SIGTERM) drains and exits 0 well within the drain timeout.

What this machine needs (found by probing, so that the test also runs where podman works out
of the box): the cgroup v2 hierarchy here has a controller (hugetlb) while v1 hierarchies are
mounted ("hybrid"), which crun 1.8 refuses, so containers run with runc; and this root has no
CAP_SYS_RESOURCE, so the containers' rlimits must stay within podman's own (nofile: the hard
limit; nproc: podman 4.3 caps its own RLIMIT_NPROC at 32768 before starting the runtime).
Automatic health checks need systemd timers (no systemd here), so the test runs the check
itself with `podman healthcheck run`.

Cold (no base image, no build cache) the test takes several minutes (see the timing it
prints); later runs reuse the base image, podman's layer cache and the ccache cache mount.
KPIPE_CONTAINER_REBUILD_BASE=1 remakes the base image.
Without podman (or mmdebstrap/debootstrap when the base image is missing) the test is skipped,
except in CI (CI=true), where it fails: deploy/setup.sh installs them.
"""
import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

IMAGE = "localhost/kpipe:test"
BASE = "localhost/kpipe-base:bookworm"
IN_CI = os.environ.get("CI") == "true"
SUITES = {"bookworm", "bookworm-updates", "bookworm-security"}
DRAIN_TIMEOUT = 30  # shutdown.drain_timeout's default
# Timing lines go to stderr, for the record (ctest --output-on-failure shows them on failure).
T0 = time.monotonic()


def log(message):
    print(f"container_test [{time.monotonic() - T0:6.1f}s] {message}", file=sys.stderr,
          flush=True)


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            raise AssertionError(f"{name} is missing (package {package}): deploy/setup.sh "
                                 "installs it")
        raise unittest.SkipTest(f"{name} not installed (package {package})")
    return path


def run(args, timeout=120, check=True, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def podman(*args, timeout=120, check=True):
    return run([tool("podman", "podman"), *args], timeout=timeout, check=check)


def image_exists(name):
    return podman("image", "exists", name, check=False).returncode == 0


def debian_sources():
    """The host's apt sources for bookworm (deb822 paragraphs), so that apt in the base image
    and in the build reaches the same mirror as the host's apt."""
    paragraphs = []
    for path in glob.glob("/etc/apt/sources.list.d/*.sources"):
        with open(path) as f:
            for block in re.split(r"\n\s*\n", f.read()):
                fields = {}
                for line in block.splitlines():
                    m = re.match(r"([A-Za-z-]+):\s*(.*)", line)
                    if m and not line.startswith("#"):
                        fields[m.group(1)] = m.group(2).strip()
                suites = set(fields.get("Suites", "").split()) & SUITES
                if "deb" in fields.get("Types", "").split() and suites and \
                        fields.get("Enabled", "yes") != "no":
                    suites = " ".join(sorted(suites))
                    paragraphs.append({**fields, "Types": "deb", "Suites": suites})
    for path in ["/etc/apt/sources.list", *glob.glob("/etc/apt/sources.list.d/*.list")]:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                m = re.match(r"\s*deb\s+(\[[^]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
                if m and m.group(3) in SUITES:
                    paragraphs.append({"Types": "deb", "URIs": m.group(2), "Suites": m.group(3),
                                       "Components": m.group(4).split("#")[0].strip()})
    if not paragraphs:
        paragraphs = [{"Types": "deb", "URIs": "http://deb.debian.org/debian",
                       "Suites": "bookworm bookworm-updates", "Components": "main"},
                      {"Types": "deb", "URIs": "http://deb.debian.org/debian-security",
                       "Suites": "bookworm-security", "Components": "main"}]
    return "\n".join("".join(f"{k}: {v}\n" for k, v in p.items()) for p in paragraphs)


def apt_network_options():
    """The host's apt.conf files that decide whether apt reaches the mirror: proxies, and
    Release date checks (off for a snapshot mirror)."""
    files = sorted(glob.glob("/etc/apt/apt.conf.d/*")) + ["/etc/apt/apt.conf"]
    wanted = re.compile(r"^\s*Acquire::.*(Proxy|Check-Valid-Until|Check-Date)", re.I | re.M)
    out = []
    for path in files:
        try:
            with open(path) as f:
                if wanted.search(f.read()):
                    out.append(path)
        except (OSError, UnicodeDecodeError):
            pass
    return out


def make_base():
    """localhost/kpipe-base:bookworm: a minbase bookworm with the host's Debian sources."""
    work = tempfile.mkdtemp(prefix="kpipe-base-", dir="/var/tmp")
    try:
        sources = os.path.join(work, "debian.sources")
        with open(sources, "w") as f:
            f.write(debian_sources())
        tar = os.path.join(work, "rootfs.tar")
        if shutil.which("mmdebstrap"):
            # Parallel downloads and unpacking without fsync: about 3 times as fast as
            # debootstrap here. merged-usr hook: /usr merged without the usrmerge package
            # (which drags perl in).
            args = ["mmdebstrap", "--variant=minbase", "--quiet",
                    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"]
            args += [f"--aptopt={p}" for p in apt_network_options()]
            run(args + ["bookworm", tar, sources], timeout=1200)
        else:
            debootstrap = tool("debootstrap", "debootstrap")
            mirror = re.search(r"URIs:\s*(\S+)\s*\nSuites:[^\n]*(?<!\S)bookworm(?!\S)",
                               debian_sources())
            rootfs = os.path.join(work, "rootfs")
            run([debootstrap, "--variant=minbase", "bookworm", rootfs,
                 mirror.group(1) if mirror else "http://deb.debian.org/debian"], timeout=1800)
            os.remove(os.path.join(rootfs, "etc/apt/sources.list"))
            shutil.copy(sources, os.path.join(rootfs, "etc/apt/sources.list.d/debian.sources"))
            with open(os.path.join(rootfs, "etc/apt/apt.conf.d/99host-network"), "w") as out:
                for p in apt_network_options():
                    with open(p) as f:
                        out.write(f.read() + "\n")
            for d in ("var/lib/apt/lists", "var/cache/apt/archives"):
                run(["find", os.path.join(rootfs, d), "-maxdepth", "1", "-type", "f",
                     "-delete"])
            run(["tar", "-C", rootfs, "-cf", tar, "."], timeout=600)
        podman("import", "--change", "CMD [\"bash\"]", tar, BASE, timeout=600)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def container_options():
    """The podman options this machine needs to start a container (see the docstring)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    limits = ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]
    candidates = [([], []), ([], limits)]
    if shutil.which("runc"):
        candidates.append((["--runtime", "runc"], limits))
    errors = []
    for global_options, run_options in candidates:
        result = podman(*global_options, "run", "--rm", *run_options, IMAGE, "version",
                        check=False, timeout=300)
        if result.returncode == 0:
            return global_options, run_options, result.stdout
        errors.append(f"{global_options + run_options}: {result.stderr.strip()}")
    raise AssertionError("podman cannot start a container here:\n" + "\n".join(errors))


class ContainerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tool("podman", "podman")
        if os.environ.get("KPIPE_CONTAINER_REBUILD_BASE") == "1" and image_exists(BASE):
            podman("rmi", "--force", BASE)
        if not image_exists(BASE):
            if not shutil.which("mmdebstrap"):
                tool("debootstrap", "debootstrap")
            log(f"making {BASE}")
            make_base()
            log(f"made {BASE}")
        log(f"building {IMAGE}")
        # --pull=never: nothing comes from a registry. --layers (the default) caches each
        # step, so an unchanged daemon/ is not compiled again.
        podman("build", "--isolation=chroot", "--format=docker", "--pull=never",
               "--build-arg", f"BASE={BASE}", "--tag", IMAGE, h.SOURCE_DIR, timeout=3600)
        log(f"built {IMAGE}")
        cls.global_options, cls.run_options, cls.version = container_options()
        cls.inspect = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
        size = cls.inspect["Size"]
        base_size = json.loads(podman("image", "inspect", BASE).stdout)[0]["Size"]
        log(f"{IMAGE}: {size / 1e6:.0f} MB ({(size - base_size) / 1e6:.0f} MB above "
            f"{BASE}); container options {cls.global_options + cls.run_options}")

    def podman_run(self, *args, check=True, timeout=120):
        return podman(*self.global_options, "run", "--rm", *self.run_options, *args,
                      check=check, timeout=timeout)

    def test_version(self):
        self.assertRegex(self.version, r"^kpipe \d+\.\d+\.\d+")

    def test_check_default_config(self):
        result = self.podman_run(IMAGE, "check", "/etc/kpipe/kpipe.yaml", check=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("/etc/kpipe/kpipe.yaml: OK", result.stdout)
        # The schemas are in the config directory: nothing outside /etc/kpipe is needed.
        listing = self.podman_run("--entrypoint", "ls", IMAGE, "/etc/kpipe", "/etc").stdout
        etc, etc_kpipe = re.match(r"/etc:\n(.*)\n\n/etc/kpipe:\n(.*)", listing, re.S).groups()
        self.assertLessEqual({"kpipe.yaml", "pipelines", "schemas"}, set(etc_kpipe.split()))
        self.assertNotIn("schemas", etc.split())

    def test_image_config(self):
        config = self.inspect["Config"]
        self.assertEqual(config["User"], "kpipe")
        self.assertEqual(config["Entrypoint"], ["kpipe"])
        self.assertEqual(config["Cmd"], ["run", "/etc/kpipe/kpipe.yaml"])
        self.assertIn("9464/tcp", config["ExposedPorts"])
        self.assertIn("/var/lib/kpipe", config["Volumes"])
        self.assertIn("KPIPE_HTTP_LISTEN=0.0.0.0:9464", config["Env"])
        # The health check: in the image (docker format), and failing without kpipe listening.
        check = self.inspect["Healthcheck"]["Test"]
        self.assertEqual(check[0], "CMD")
        self.assertIn("/healthz", " ".join(check))
        result = self.podman_run("--entrypoint", check[1], IMAGE, *check[2:], check=False)
        self.assertNotEqual(result.returncode, 0, "the health check passes without kpipe")
        ids = self.podman_run("--entrypoint", "id", IMAGE).stdout
        self.assertRegex(ids, r"uid=10001\(kpipe\) gid=10001\(kpipe\)")
        # The state volume is writable by kpipe; the runtime image has no toolchain.
        self.podman_run("--entrypoint", "bash", IMAGE, "-c",
                        "touch /var/lib/kpipe/probe && ! command -v c++ cc cmake")

    def test_own_config_mounted(self):
        with tempfile.TemporaryDirectory(prefix="kpipe-ct-config-") as d:
            os.makedirs(os.path.join(d, "pipelines"))
            os.makedirs(os.path.join(d, "schemas"))
            shutil.copy(os.path.join(h.SOURCE_DIR, "schemas", "user-event.json"),
                        os.path.join(d, "schemas"))
            with open(os.path.join(d, "kpipe.yaml"), "w") as f:
                f.write("kafka: {bootstrap: embedded}\nhttp: {listen: 0.0.0.0:9464}\n"
                        "pipelines: pipelines/\n"
                        "stores: {local: {type: lmdb, path: /var/lib/kpipe/dedup, ttl: 1d}}\n")
            with open(os.path.join(d, "pipelines", "mine.yaml"), "w") as f:
                f.write("name: mine\ninput: {topic: mine, group: mine}\nkey: /user_id\n"
                        "schema: schemas/user-event.json\n"
                        "dedup: {id: /msg_id, store: local}\noutput: {topic: mine.out}\n")
            # The container's user (uid 10001) must be able to read it.
            for root, dirs, files in os.walk(d):
                os.chmod(root, 0o755)
                for name in files:
                    os.chmod(os.path.join(root, name), 0o644)
            result = self.podman_run("-v", f"{d}:/etc/kpipe:ro", IMAGE, "check",
                                     "/etc/kpipe/kpipe.yaml", check=False)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("OK, 1 pipeline", result.stdout)

    def test_runs_healthy_and_stops(self):
        name = f"kpipe-ct-{os.getpid()}"
        port = h.free_port()
        podman(*self.global_options, "run", "--detach", "--name", name, *self.run_options,
               "--health-interval=disable", "-p", f"127.0.0.1:{port}:9464", IMAGE)
        try:
            def healthz():
                state = json.loads(podman("inspect", name).stdout)[0]["State"]
                if state["Status"] != "running":
                    logs = podman("logs", name, check=False)
                    raise AssertionError(f"kpipe exited ({state['ExitCode']}):\n"
                                         f"{logs.stdout[-4000:]}{logs.stderr[-4000:]}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                                timeout=5) as r:
                        return r.read().decode() == "ok\n"
                except OSError:
                    return False

            h.wait_for(healthz, 60, "/healthz through the published port", interval=0.5)
            log("/healthz ok from the host")
            check = podman("healthcheck", "run", name, check=False)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
            state = json.loads(podman("inspect", name).stdout)[0]["State"]
            self.assertEqual(state["Health"]["Status"], "healthy", state["Health"])
            log("HEALTHCHECK healthy")

            started = time.monotonic()
            podman("stop", "--time", str(DRAIN_TIMEOUT + 15), name, timeout=DRAIN_TIMEOUT + 60)
            elapsed = time.monotonic() - started
            state = json.loads(podman("inspect", name).stdout)[0]["State"]
            logs = podman("logs", name)
            logs = logs.stdout + logs.stderr
            self.assertEqual(state["ExitCode"], 0, logs[-4000:])
            self.assertLess(elapsed, DRAIN_TIMEOUT, "stopped by SIGKILL, not by the drain")
            self.assertIn("kpipe stopped", logs)
            log(f"stopped in {elapsed:.1f}s, exit 0")
        finally:
            podman("rm", "--force", "--volumes", name, check=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
