"""Render the chart with a real helm binary and query the resulting Kubernetes objects."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
RELEASE = "thunderline"
NAMESPACE = "thunder"
FULLNAME = "thunderline-thunderhelm"

# Names of env entries / ConfigMap keys that hold credentials.
CREDENTIAL_NAME = re.compile(
    r"(PASSWORD|PASSWD|SECRET|TOKEN|ACCESS_KEY|ACCESS_KEY_ID|SECRET_KEY|KEY_BASE|COOKIE|PRIVATE_KEY|API_KEY|CREDENTIALS)$",
    re.IGNORECASE,
)
# A URL with a literal password (user:password@host); $(VAR) references are not literals.
CREDENTIAL_URL = re.compile(r"://[^/@:\s]+:[^/@\s$][^/@\s]*@")
# Every http(s) URL in a string.
URL = re.compile(r"https?://([A-Za-z0-9.-]+)(?::(\d+))?")


def helms() -> dict[str, str]:
    """Helm binaries under test: CHART_TEST_HELMS="helm3=/path,helm4=/path" (default: .cache/bin/helm3 and helm4)."""
    spec = os.environ.get("CHART_TEST_HELMS")
    if not spec:
        bin_dir = CHART.parent / ".cache" / "bin"
        spec = f"helm3={bin_dir / 'helm3'},helm4={bin_dir / 'helm4'}"
    return dict(item.split("=", 1) for item in spec.split(",") if item)


class RenderError(Exception):
    """helm template failed; the message is helm's stderr."""


@dataclass(frozen=True)
class Render:
    """The objects of one `helm template` run."""

    docs: tuple

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict | None:
        for d in self.docs:
            if d["kind"] == kind and d["metadata"]["name"] == name:
                return d
        return None

    def must(self, kind: str, name: str) -> dict:
        found = self.get(kind, name)
        if found is None:
            have = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in self.docs)
            raise AssertionError(f"{kind}/{name} not rendered; rendered: {have}")
        return found

    def names(self, kind: str) -> set[str]:
        return {d["metadata"]["name"] for d in self.of_kind(kind)}

    def pod_specs(self, include_hooks: bool = True) -> list[tuple[str, dict]]:
        """(label, pod spec) of every workload and, optionally, every hook Pod."""
        out = []
        for d in self.docs:
            label = f"{d['kind']}/{d['metadata']['name']}"
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                out.append((label, d["spec"]["template"]["spec"]))
            elif d["kind"] == "Pod" and include_hooks:
                out.append((label, d["spec"]))
        return out

    def containers(self, include_init: bool = True, include_hooks: bool = True):
        """(label, pod spec, container, is_init) for every container."""
        for label, spec in self.pod_specs(include_hooks):
            for c in spec.get("containers", []):
                yield f"{label}:{c['name']}", spec, c, False
            if include_init:
                for c in spec.get("initContainers", []):
                    yield f"{label}:init:{c['name']}", spec, c, True

    def container(self, kind: str, name: str, container: str | None = None) -> dict:
        spec = self.must(kind, name)["spec"]["template"]["spec"]
        cs = spec["containers"]
        if container is None:
            return cs[0]
        return next(c for c in cs if c["name"] == container)

    def configmap(self, name: str) -> dict:
        return self.must("ConfigMap", name).get("data") or {}


def env_of(container: dict) -> dict:
    """name -> env entry of a container."""
    return {e["name"]: e for e in container.get("env") or []}


def env_value(container: dict, name: str) -> str | None:
    entry = env_of(container).get(name)
    return None if entry is None else entry.get("value")


def _args(values: tuple, sets: tuple, set_strings: tuple, extra: tuple) -> list[str]:
    args = []
    for f in values:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    for s in set_strings:
        args += ["--set-string", s]
    return args + list(extra)


@functools.lru_cache(maxsize=None)
def _template(helm: str, values: tuple, sets: tuple, set_strings: tuple, extra: tuple) -> str:
    cmd = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *_args(values, sets, set_strings, extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=helm_env())
    if proc.returncode != 0:
        raise RenderError(proc.stderr.strip() or proc.stdout.strip())
    return proc.stdout


def helm_env() -> dict:
    """Environment for helm: its cache/config/data homes under .cache so runs leave nothing in $HOME."""
    base = CHART.parent / ".cache" / "helm-home"
    env = dict(os.environ)
    env.update(
        HELM_CACHE_HOME=str(base / "cache"),
        HELM_CONFIG_HOME=str(base / "config"),
        HELM_DATA_HOME=str(base / "data"),
    )
    return env


def render(helm: str, values=(), sets=(), set_strings=(), extra=()) -> Render:
    """Render the chart; raises RenderError with helm's message when it refuses the values."""
    text = _template(helm, tuple(values), tuple(sets), tuple(set_strings), tuple(extra))
    return Render(tuple(d for d in yaml.safe_load_all(text) if d))


def render_text(helm: str, values=(), sets=(), set_strings=(), extra=()) -> str:
    return _template(helm, tuple(values), tuple(sets), tuple(set_strings), tuple(extra))


def render_error(helm: str, values=(), sets=(), set_strings=()) -> str:
    """helm's error message for values it must refuse; fails the caller when helm renders them."""
    try:
        _template(helm, tuple(values), tuple(sets), tuple(set_strings), ())
    except RenderError as err:
        return str(err)
    raise AssertionError(f"helm rendered values it should refuse: values={values} sets={sets} set_strings={set_strings}")


def load_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


# Value sets every structural test runs over: the defaults, each example, and everything switched on.
ALL_ON = Path(__file__).resolve().parent / "values-all-on.yaml"


def scenarios() -> dict[str, dict]:
    """name -> render arguments of the value sets the structural tests cover."""
    out = {"defaults": {}}
    for example in EXAMPLES:
        out[example.stem] = {"values": (example,)}
    out["all-on"] = {"values": (ALL_ON,)}
    out["all-on+livebook-tls"] = {"values": (ALL_ON, CHART / "examples" / "values-livebook-tls.yaml")}
    return out
