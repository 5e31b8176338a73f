"""The chart's MLflow flags and its `helm test` script against a real MLflow server (no cluster needed).

A real `mlflow server` (the venv of scripts/start-mlflow.sh) is started on loopback with the server arguments the
chart renders, and the rendered helm-test script is run unchanged: a curl wrapper first in PATH connects the
in-cluster Service name to the local port while keeping that name as the Host header, so MLflow 3's host check
sees exactly what it would see in the cluster.

Skipped (reported as such) when the MLflow venv is absent; scripts/test-chart.sh installs it first.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import CHART, FULLNAME, helms, render  # noqa: E402

MLFLOW_BIN = CHART.parent / ".cache" / "venvs" / "mlflow" / "bin" / "mlflow"
SERVICE = f"{FULLNAME}-mlflow"
SERVICE_PORT = 5000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(MLFLOW_BIN.exists(), f"no MLflow at {MLFLOW_BIN} (scripts/start-mlflow.sh --install-only)")
@unittest.skipUnless(shutil.which("curl"), "curl is needed to run the helm test script")
class LiveMlflow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        helm = next(iter(helms().values()))
        out = render(helm, sets=("mlflow.enabled=true",))
        cls.container = out.container("Deployment", SERVICE)
        cls.test_script = out.must("Pod", f"{FULLNAME}-test-mlflow")["spec"]["containers"][0]["args"][0]
        cls.tmp = tempfile.TemporaryDirectory()
        tmp = Path(cls.tmp.name)
        cls.port = free_port()
        args = []
        for arg in cls.container["args"]:
            if arg.startswith(("--host=", "--port=", "--artifacts-destination=")):
                continue
            args.append(arg)
        args += [f"--host=127.0.0.1", f"--port={cls.port}", f"--artifacts-destination={tmp / 'artifacts'}"]
        env = dict(os.environ)
        for e in cls.container.get("env") or []:
            if "value" in e:
                env[e["name"]] = e["value"]
        env.update(HOME=str(tmp), TMPDIR=str(tmp), MLFLOW_BACKEND_STORE_URI=f"sqlite:///{tmp / 'mlflow.db'}")
        cls.log = open(tmp / "server.log", "wb")
        cls.proc = subprocess.Popen([str(MLFLOW_BIN), *args], env=env, stdout=cls.log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if cls.proc.poll() is not None:
                raise RuntimeError(f"mlflow exited: {(tmp / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("mlflow did not answer /health in 180 s")

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.log.close()
        cls.tmp.cleanup()

    def curl(self, host: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--connect-to", f"{host}:127.0.0.1:{self.port}",
             *extra], capture_output=True, text=True)

    def test_in_cluster_service_names_pass_the_host_check(self):
        for host in (SERVICE, f"{SERVICE}.thunder", f"{SERVICE}.thunder.svc", f"{SERVICE}.thunder.svc.cluster.local"):
            with self.subTest(host=host):
                proc = self.curl(f"{host}:{SERVICE_PORT}", "-X", "POST", "-H", "Content-Type: application/json",
                                 "-d", '{"max_results":1}',
                                 f"http://{host}:{SERVICE_PORT}/api/2.0/mlflow/experiments/search")
                self.assertEqual(proc.stdout, "200", proc.stderr)

    def test_other_hosts_are_still_refused(self):
        proc = self.curl(f"evil.example:{SERVICE_PORT}", "-X", "POST", "-H", "Content-Type: application/json",
                         "-d", '{"max_results":1}', f"http://evil.example:{SERVICE_PORT}/api/2.0/mlflow/experiments/search")
        self.assertEqual(proc.stdout, "403")

    def test_rendered_helm_test_script_passes(self):
        with tempfile.TemporaryDirectory() as bindir:
            wrapper = Path(bindir) / "curl"
            wrapper.write_text(
                "#!/bin/sh\n"
                f'exec {shutil.which("curl")} --connect-to {SERVICE}:{SERVICE_PORT}:127.0.0.1:{self.port} "$@"\n')
            wrapper.chmod(0o755)
            env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
            proc = subprocess.run(["sh", "-ec", self.test_script], capture_output=True, text=True, env=env, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            self.assertIn('"experiments"', proc.stdout)


if __name__ == "__main__":
    unittest.main()
