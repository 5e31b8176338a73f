"""The bridge wiring the chart renders, exercised with a real cerebros-bridge binary the way Thunderline runs it.

The init container's copy command (rendered) is run with the shared volume mapped to a scratch directory; then the
checks of Thunderline's validator (CEREBROS_PYTHON executable, CEREBROS_SCRIPT a regular file, CEREBROS_REPO a
directory) and the invoker's argv `$CEREBROS_PYTHON $CEREBROS_SCRIPT --bridge-op OP`, with the payload in
CEREBROS_BRIDGE_PAYLOAD and a stdin that is never closed.

The binary comes from $CEREBROS_BRIDGE_BIN, target/*/cerebros-bridge or /work/targets/*/*/cerebros-bridge; the test
is skipped (and reported as such) when none is built.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import CHART, FULLNAME, helms, render  # noqa: E402


def bridge_binary() -> Path | None:
    candidates = [os.environ.get("CEREBROS_BRIDGE_BIN", "")]
    candidates += sorted(glob.glob(str(CHART.parent / "target" / "*" / "cerebros-bridge")))
    candidates += sorted(glob.glob("/work/targets/*/*/cerebros-bridge"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


@unittest.skipUnless(bridge_binary(), "no cerebros-bridge binary (set CEREBROS_BRIDGE_BIN or build it)")
class LiveBridge(unittest.TestCase):
    def test_rendered_wiring_runs_the_bridge_like_thunderline(self):
        helm = next(iter(helms().values()))
        out = render(helm)
        env = out.configmap(f"{FULLNAME}-env")
        spec = out.must("Deployment", f"{FULLNAME}-worker")["spec"]["template"]["spec"]
        init = spec["initContainers"][0]
        mount = init["volumeMounts"][0]["mountPath"]
        with tempfile.TemporaryDirectory() as tmp:
            image_root, volume = Path(tmp) / "image", Path(tmp) / "volume"
            (image_root / "usr/local/bin").mkdir(parents=True)
            volume.mkdir()
            src = image_root / "usr/local/bin/cerebros-bridge"
            src.write_bytes(bridge_binary().read_bytes())
            src.chmod(0o755)

            def local(path: str) -> str:
                if path.startswith(mount):
                    return str(volume) + path[len(mount):]
                if path.startswith("/usr/local/bin/"):
                    return str(image_root) + path
                return path

            copy = subprocess.run([local(a) for a in init["command"]], capture_output=True, text=True)
            self.assertEqual(copy.returncode, 0, copy.stderr)
            python, script, repo = (local(env[k]) for k in ("CEREBROS_PYTHON", "CEREBROS_SCRIPT", "CEREBROS_REPO"))
            self.assertTrue(os.access(python, os.X_OK), "validator: CEREBROS_PYTHON must be executable")
            self.assertTrue(Path(script).is_file(), "validator: CEREBROS_SCRIPT must be a regular file")
            self.assertTrue(Path(repo).is_dir(), "validator: CEREBROS_REPO must be a directory")

            payload = {"op": "record_trial", "payload": {"run_id": "r-01", "trial_id": "t-01", "status": "succeeded",
                                                          "metrics": {"accuracy": 0.91}}}
            child_env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBROS_")}
            child_env.update(CEREBROS_BRIDGE_OP="record_trial", CEREBROS_BRIDGE_PAYLOAD=json.dumps(payload),
                             PYTHONUNBUFFERED="1")
            # Thunderline never closes the child's stdin: keep it open for the whole call.
            proc = subprocess.Popen([python, script, "--bridge-op", "record_trial"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env, text=True)
            try:
                proc.wait(timeout=20)  # communicate() would close stdin; the output is small enough for the pipe
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                stdout, stderr = proc.stdout.read(), proc.stderr.read()
                for stream in (proc.stdin, proc.stdout, proc.stderr):
                    stream.close()
            self.assertEqual(proc.returncode, 0, stderr)
            reply = json.loads(stdout)
            self.assertEqual(reply["status"], "ok")
            self.assertEqual(reply["op"], "record_trial")


if __name__ == "__main__":
    unittest.main()
