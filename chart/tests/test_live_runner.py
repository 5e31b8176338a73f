"""The chart's runner `helm test` script against a real cerebros-runner binary (no cluster needed).

The binary comes from $CEREBROS_RUNNER_BIN or target/{release,debug}/cerebros-runner; the test is skipped (and
reported as such) when none is built. The runner starts with the environment the chart renders for it (ConfigMap
<fullname>-cerebros-runner, with the data dir moved to a scratch directory), and the rendered helm-test script runs
unchanged, its in-cluster Service name connected to the local port by a curl wrapper.
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

SERVICE = f"{FULLNAME}-cerebros"
SERVICE_PORT = 8088


def runner_binary() -> Path | None:
    candidates = [os.environ.get("CEREBROS_RUNNER_BIN", "")]
    candidates += [str(CHART.parent / "target" / kind / "cerebros-runner") for kind in ("release", "debug")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(runner_binary(), "no cerebros-runner binary (set CEREBROS_RUNNER_BIN or build it)")
@unittest.skipUnless(shutil.which("curl"), "curl is needed to run the helm test script")
class LiveRunner(unittest.TestCase):
    def run_script_against_runner(self, sets: tuple, token: str | None):
        helm = next(iter(helms().values()))
        out = render(helm, sets=("cerebrosRunner.enabled=true", *sets))
        script = out.must("Pod", f"{FULLNAME}-test-cerebros")["spec"]["containers"][0]["args"][0]
        config = out.configmap(f"{FULLNAME}-cerebros-runner")
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            env = dict(os.environ)
            env.update(config)
            env.update(PORT=str(port), RUNNER_BIND="127.0.0.1", RUNNER_DATA_DIR=tmp, TMPDIR=tmp)
            if token:
                env["RUNNER_API_TOKEN"] = token
            with open(Path(tmp) / "runner.log", "wb") as log:
                proc = subprocess.Popen([str(runner_binary())], env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        self.assertIsNone(proc.poll(), (Path(tmp) / "runner.log").read_text()[-2000:])
                        try:
                            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                                break
                        except OSError:
                            time.sleep(0.3)
                    bindir = Path(tmp) / "bin"
                    bindir.mkdir()
                    (bindir / "curl").write_text(
                        "#!/bin/sh\n"
                        f'exec {shutil.which("curl")} --connect-to {SERVICE}:{SERVICE_PORT}:127.0.0.1:{port} "$@"\n')
                    (bindir / "curl").chmod(0o755)
                    script_env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
                    if token:
                        script_env["RUNNER_API_TOKEN"] = token
                    return subprocess.run(["sh", "-ec", script], capture_output=True, text=True, env=script_env, timeout=120)
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)

    def test_rendered_helm_test_script_passes(self):
        result = self.run_script_against_runner((), None)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_rendered_helm_test_script_sends_the_token(self):
        result = self.run_script_against_runner(("cerebrosRunner.auth.token=live-token",), "live-token")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main()
