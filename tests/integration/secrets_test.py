#!/usr/bin/python3
"""Secrets (issue #9): values read from *_file, credentials in URLs and headers, never shown;
TLS verification of the HTTP sink.

- `kpipe check` accepts librdkafka's security properties (security.protocol, sasl.*, ssl.*, as
  librdkafka itself checks them) with sasl.password_file and ${VAR}, and no secret appears in
  its output, for a good config or a broken one;
- `kpipe run` with an HTTPS output whose URL carries a token in its query and whose
  Authorization header comes from a file: the endpoint gets both, and neither appears in the log,
  /status or the status page; with `tls: {verify: false}` a self-signed endpoint is accepted and
  a warning says so;
- without it, the same endpoint is refused (certificate verification is on by default): the
  messages wait, nothing is delivered.
"""
import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(__file__))
import harness as h  # noqa: E402

TOKEN = "tok-SECRET-4711"         # Authorization header, from a file
QUERY_TOKEN = "q-SECRET-0815"     # in the URL's query
KAFKA_PASSWORD = "kafka-SECRET-42"
KEY_PASSWORD = "key-SECRET-23"


class TlsEndpoint:
    """An HTTPS server with a self-signed certificate for 127.0.0.1, recording requests."""

    def __init__(self, workdir):
        self.requests = []  # (path, headers dict, body)
        self.lock = threading.Lock()
        cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint.lock:
                    endpoint.requests.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def pipeline(topic, port, tls=""):
    return f"""
name: {topic}
input: {{topic: {topic}, group: {topic}-group}}
key: /user_id
dedup: {{id: /msg_id}}
output:
  http:
    url: "https://127.0.0.1:{port}/events?token={QUERY_TOKEN}"
    headers: {{Authorization_file: secrets/token, X-Tenant: acme}}
    timeout: 2s
    {tls}
errors: {{topic: {topic}.errors, audit_topic: {topic}.audit, retry: {{initial: 100ms, max: 1s}}}}
"""


def events(n):
    lines = []
    for i in range(n):
        value = {"msg_id": str(uuid.uuid4()), "user_id": f"user-{i % 3}", "seq": i}
        lines.append(f"user-{i % 3}\t{json.dumps(value)}")
    return lines


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class SecretsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kpipe-secrets-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.tmp])

    def assertNoSecret(self, text, where):
        for secret in (TOKEN, QUERY_TOKEN, KAFKA_PASSWORD, KEY_PASSWORD, "SECRET"):
            self.assertNotIn(secret, text, f"{where} shows a secret:\n{text[-3000:]}")

    def check(self, config_dir, **env):
        result = subprocess.run([h.KPIPE, "check", os.path.join(config_dir, "kpipe.yaml")],
                                capture_output=True, text=True, timeout=30,
                                env={**os.environ, **env})
        return result.returncode, result.stdout + result.stderr

    def test_check_passes_security_properties_through_and_shows_no_secret(self):
        config = os.path.join(self.tmp, "check")
        write(os.path.join(config, "secrets", "kafka-password"), KAFKA_PASSWORD + "\n")
        write(os.path.join(config, "secrets", "token"), f"Bearer {TOKEN}\n")
        write(os.path.join(config, "pipelines", "p.yaml"), f"""
name: p
input: {{topic: t, group: g}}
key: /k
output:
  http:
    url: "https://api.example.com/events?token={QUERY_TOKEN}"
    headers: {{Authorization_file: secrets/token}}
""")
        main = """
kafka:
  bootstrap: broker-1:9093
  properties:
    security.protocol: SASL_SSL
    sasl.mechanism: SCRAM-SHA-512
    sasl.username: kpipe
    sasl.password_file: secrets/kafka-password
    ssl.ca.location: /etc/ssl/certs/ca-certificates.crt
    ssl.key.password: ${KEY_PASSWORD}
    ssl.endpoint.identification.algorithm: https
  consumer_properties: {ssl.keystore.password_file: secrets/kafka-password}
"""
        write(os.path.join(config, "kpipe.yaml"), main)
        code, out = self.check(config, KEY_PASSWORD=KEY_PASSWORD)
        self.assertEqual(code, 0, out)
        self.assertNoSecret(out, "kpipe check")

        # librdkafka refuses a misspelled property; the message names it, not its value.
        write(os.path.join(config, "kpipe.yaml"),
              main.replace("sasl.username: kpipe", f"sasl.pasword: {KAFKA_PASSWORD}"))
        code, out = self.check(config, KEY_PASSWORD=KEY_PASSWORD)
        self.assertEqual(code, 1, out)
        self.assertIn("kafka property sasl.pasword", out)
        self.assertNoSecret(out, "kpipe check")

        # A value with a line break (a pasted key), an URL with credentials where the HTTP sink
        # refuses them: errors with file and line, no secret.
        write(os.path.join(config, "kpipe.yaml"), main)
        write(os.path.join(config, "pipelines", "p.yaml"), f"""
name: p
input: {{topic: t, group: g}}
key: /k
output: {{http: {{url: "https://kpipe:{TOKEN}@api.example.com/?token={QUERY_TOKEN}"}}}}
""")
        code, out = self.check(config, KEY_PASSWORD=KEY_PASSWORD + "\n" + KEY_PASSWORD)
        self.assertEqual(code, 1, out)
        self.assertIn("kpipe.yaml:10:23: kafka.properties.ssl.key.password: environment variable "
                      "KEY_PASSWORD contains a line break", out)
        self.assertNoSecret(out, "kpipe check")
        code, out = self.check(config, KEY_PASSWORD=KEY_PASSWORD)
        self.assertEqual(code, 1, out)
        self.assertIn("output.http.url: \"https://kpipe:***@api.example.com/?token=***\" has user "
                      "information", out)
        self.assertNoSecret(out, "kpipe check")

    def _run(self, tls):
        topic = "hooks"
        broker = h.Broker([f"{topic}:2", f"{topic}.errors:2", f"{topic}.audit:2"])
        self.addCleanup(broker.stop)
        endpoint = TlsEndpoint(self.tmp)
        self.addCleanup(endpoint.stop)
        config = h.ConfigDir(broker.bootstrap, {topic: pipeline(topic, endpoint.port, tls)})
        self.addCleanup(config.cleanup)
        write(os.path.join(config.dir, "secrets", "token"), f"Bearer {TOKEN}\n")
        h.kcat_produce(broker.bootstrap, topic, events(5))
        return config, endpoint, h.Kpipe(config)

    def test_run_delivers_with_the_secrets_and_shows_none(self):
        config, endpoint, kpipe = self._run("tls: {verify: false}")
        try:
            h.wait_for(lambda: endpoint.count() >= 5, 60, "5 requests at the endpoint")
            h.wait_for(lambda: kpipe.metric_sum("kpipe_messages_total", outcome="ok") == 5, 30,
                       "5 messages done")
            status = kpipe.get("/status")
            page = kpipe.get("/")
            self.assertIn("https://127.0.0.1", status)  # the output is there, masked
        finally:
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())
        for path, headers, _ in endpoint.requests:
            self.assertEqual(path, f"/events?token={QUERY_TOKEN}")
            self.assertEqual(headers.get("Authorization"), f"Bearer {TOKEN}")
            self.assertEqual(headers.get("X-Tenant"), "acme")
        log = kpipe.log_text(tail=None)
        self.assertNoSecret(status, "/status")
        self.assertNoSecret(page, "the status page")
        self.assertNoSecret(log, "the log")
        warnings = [r for r in kpipe.log_records()
                    if "TLS certificate verification is off" in r.get("msg", "")]
        self.assertTrue(warnings, log[-3000:])
        self.assertEqual(warnings[0].get("level"), "warn")
        # kpipe check says it too.
        code, out = self.check(config.dir)
        self.assertEqual(code, 0, out)
        self.assertIn("TLS certificate verification is off", out)
        self.assertNoSecret(out, "kpipe check")

    def test_certificates_are_verified_unless_turned_off(self):
        _, endpoint, kpipe = self._run("")
        try:
            h.wait_for(lambda: kpipe.metric_sum("kpipe_errors_total",
                                                **{"class": "blocking", "stage": "sink"}) >= 2,
                       60, "blocking sink failures")
            status = kpipe.get("/status")
            self.assertEqual(endpoint.count(), 0)
            self.assertEqual(kpipe.metric_sum("kpipe_messages_total"), 0)
        finally:
            self.assertEqual(kpipe.stop(), 0, kpipe.log_text())
        log = kpipe.log_text(tail=None)
        self.assertIn("certificate", status + log)
        self.assertNotIn("TLS certificate verification is off", log)
        self.assertNoSecret(status + log, "/status and the log")


if __name__ == "__main__":
    unittest.main()
