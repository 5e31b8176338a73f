"""Assertions over the chart's rendered YAML, run once per helm binary (Helm 3 and Helm 4).

Run: .cache/venvs/chart/bin/python -m unittest discover -s chart/tests -v
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import (  # noqa: E402
    ALL_ON,
    CHART,
    CREDENTIAL_NAME,
    CREDENTIAL_URL,
    EXAMPLES,
    FULLNAME,
    NAMESPACE,
    RELEASE,
    URL,
    env_of,
    env_value,
    helm_env,
    helms,
    load_values,
    render,
    render_error,
    render_text,
    scenarios,
)

RUNNER = f"{FULLNAME}-cerebros"
MLFLOW = f"{FULLNAME}-mlflow"
EXAMPLE = {p.stem: p for p in EXAMPLES}
# Containers whose root filesystem stays writable, with the reason documented in values.yaml and README.
WRITABLE_ROOT = {f"Deployment/{FULLNAME}-livebook:livebook"}


class ChartCase:
    """Mixed into one TestCase per helm binary; self.helm is the binary."""

    helm: str

    def r(self, **kw):
        return render(self.helm, **kw)

    def each_scenario(self):
        """(name, render) of every scenario; callers wrap their checks in self.subTest(scenario=name)."""
        return [(name, self.r(**kw)) for name, kw in scenarios().items()]

    # ---------------------------------------------------------------- wiring

    def test_urls_name_rendered_services_and_their_ports(self):
        """Every in-cluster URL in a ConfigMap, env value or arg names a rendered Service on one of its ports."""
        for name, out in self.each_scenario():
            with self.subTest(scenario=name):
                services = {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in out.of_kind("Service")}
                texts = []
                for cm in out.of_kind("ConfigMap"):
                    texts += [f"ConfigMap/{cm['metadata']['name']}[{k}]={v}" for k, v in (cm.get("data") or {}).items()]
                for label, _, c, _ in out.containers():
                    texts += [f"{label} env {e['name']}={e['value']}" for e in c.get("env") or [] if "value" in e]
                    texts += [f"{label} arg {a}" for a in (c.get("args") or []) + (c.get("command") or [])]
                checked = 0
                for text in texts:
                    for host, port in URL.findall(text):
                        if not host.startswith(RELEASE):
                            continue
                        checked += 1
                        self.assertIn(host, services, f"{name}: {text} names a Service that is not rendered")
                        self.assertIn(int(port), services[host], f"{name}: {text} uses a port {host} does not serve")
                if name in ("values-hpo-demo", "all-on"):
                    self.assertGreater(checked, 0, f"{name}: no in-release URL found at all")

    def test_computed_urls_follow_configured_service_ports(self):
        out = self.r(sets=("cerebrosRunner.enabled=true", "mlflow.enabled=true", "cerebrosRunner.service.port=9911",
                           "mlflow.service.port=5999"))
        env = out.configmap(f"{FULLNAME}-env")
        self.assertEqual(env["CEREBROS_URL"], f"http://{RUNNER}:9911")
        self.assertEqual(env["CEREBROS_REMOTE_URL"], f"http://{RUNNER}:9911")
        self.assertEqual(env["MLFLOW_TRACKING_URI"], f"http://{MLFLOW}:5999")
        runner = out.configmap(f"{FULLNAME}-cerebros-runner")
        self.assertEqual(runner["MLFLOW_TRACKING_URI"], f"http://{MLFLOW}:5999")

    def test_no_url_to_a_component_that_is_off(self):
        env = self.r().configmap(f"{FULLNAME}-env")
        for key in ("CEREBROS_URL", "CEREBROS_REMOTE_URL", "MLFLOW_TRACKING_URI"):
            self.assertNotIn(key, env, "defaults render neither the runner nor MLflow")
        env = self.r(sets=("cerebrosRunner.enabled=true", "cerebrosRunner.service.enabled=false")).configmap(f"{FULLNAME}-env")
        self.assertNotIn("CEREBROS_URL", env, "the runner Service is off")
        runner = self.r(sets=("cerebrosRunner.enabled=true",)).configmap(f"{FULLNAME}-cerebros-runner")
        self.assertNotIn("MLFLOW_TRACKING_URI", runner, "MLflow is off")

    def test_user_values_win_over_computed_urls(self):
        out = self.r(sets=(
            "cerebrosRunner.enabled=true", "mlflow.enabled=true",
            "env.CEREBROS_URL=http://runner.example:1234",
            "env.CEREBROS_REMOTE_URL=http://bridge-target.example:4321",
            "env.MLFLOW_TRACKING_URI=http://mlflow.example:80",
            "env.CEREBROS_SCRIPT=/srv/custom-bridge",
            "env.CEREBROS_PYTHON=/srv/custom-python",
            "cerebrosRunner.env.MLFLOW_TRACKING_URI=http://other-mlflow.example:81",
            "mlflow.artifactRoot=s3://elsewhere/mlflow",
        ))
        env = out.configmap(f"{FULLNAME}-env")
        self.assertEqual(env["CEREBROS_URL"], "http://runner.example:1234")
        self.assertEqual(env["CEREBROS_REMOTE_URL"], "http://bridge-target.example:4321")
        self.assertEqual(env["MLFLOW_TRACKING_URI"], "http://mlflow.example:80")
        self.assertEqual(env["CEREBROS_SCRIPT"], "/srv/custom-bridge")
        self.assertEqual(env["CEREBROS_PYTHON"], "/srv/custom-python")
        self.assertEqual(out.configmap(f"{FULLNAME}-cerebros-runner")["MLFLOW_TRACKING_URI"], "http://other-mlflow.example:81")
        self.assertIn("--artifacts-destination=s3://elsewhere/mlflow", out.container("Deployment", MLFLOW)["args"])

    def test_bridge_reaches_thunderline_pods(self):
        out = self.r(sets=("cerebrosRunner.enabled=true",))
        env = out.configmap(f"{FULLNAME}-env")
        binary = "/opt/cerebros-bridge/cerebros-bridge"
        self.assertEqual(env["CEREBROS_PYTHON"], binary)
        self.assertEqual(env["CEREBROS_SCRIPT"], binary, "the validator needs a regular file; the binary ignores it as argv[1]")
        self.assertEqual(env["CEREBROS_REPO"], "/opt/cerebros-bridge", "the validator needs an existing directory")
        for component in ("web", "worker"):
            spec = out.must("Deployment", f"{FULLNAME}-{component}")["spec"]["template"]["spec"]
            init = {c["name"]: c for c in spec["initContainers"]}["install-cerebros-bridge"]
            self.assertEqual(init["image"], "ghcr.io/thunderline/cerebros-runner:0.1.0")
            self.assertEqual(init["command"], ["cp", "/usr/local/bin/cerebros-bridge", binary])
            mount = {m["name"]: m for m in init["volumeMounts"]}["cerebros-bridge"]
            self.assertEqual(mount["mountPath"], "/opt/cerebros-bridge")
            main = spec["containers"][0]
            main_mount = {m["name"]: m for m in main["volumeMounts"]}["cerebros-bridge"]
            self.assertEqual(main_mount["mountPath"], "/opt/cerebros-bridge")
            self.assertTrue(main_mount["readOnly"])
            volume = {v["name"]: v for v in spec["volumes"]}["cerebros-bridge"]
            self.assertIn("emptyDir", volume)
            refs = [e.get("configMapRef", {}).get("name") for e in main["envFrom"]]
            self.assertIn(f"{FULLNAME}-env", refs)

    def test_bridge_off_requires_a_script(self):
        message = render_error(self.helm, sets=("cerebrosRunner.bridge.enabled=false",))
        self.assertIn("env.CEREBROS_SCRIPT is required", message)
        out = self.r(sets=("cerebrosRunner.bridge.enabled=false", "env.CEREBROS_SCRIPT=/app/bin/bridge"))
        spec = out.must("Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]
        self.assertNotIn("initContainers", spec)
        self.assertEqual(out.configmap(f"{FULLNAME}-env")["CEREBROS_SCRIPT"], "/app/bin/bridge")

    def test_in_release_postgres_and_store_are_wired(self):
        out = self.r(values=(EXAMPLE["values-hpo-demo"],))
        pg_secret = f"{FULLNAME}-postgresql"
        runner = out.container("Deployment", RUNNER)
        env = env_of(runner)
        self.assertEqual(env["RUNNER_DB_PASSWORD"]["valueFrom"]["secretKeyRef"], {"name": pg_secret, "key": "password"})
        self.assertEqual(env["RUNNER_DATABASE_URL"]["value"],
                         f"postgres://postgres:$(RUNNER_DB_PASSWORD)@{FULLNAME}-postgresql:5432/cerebros")
        self.assertEqual(env["MINIO_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"], f"{FULLNAME}-minio")
        cm = out.configmap(f"{FULLNAME}-cerebros-runner")
        self.assertEqual(cm["MINIO_ENDPOINT"], f"http://{FULLNAME}-minio:9000")
        self.assertEqual(cm["MINIO_BUCKET"], "thunderline-artifacts")
        self.assertEqual(cm["RUNNER_DATA_DIR"], "/data")
        web = out.container("Deployment", f"{FULLNAME}-web")
        self.assertEqual(env_value(web, "DATABASE_URL"),
                         f"ecto://postgres:$(THUNDERHELM_DB_PASSWORD)@{FULLNAME}-postgresql:5432/thunderline")
        mlflow = out.container("Deployment", MLFLOW)
        self.assertEqual(env_value(mlflow, "MLFLOW_BACKEND_STORE_URI"),
                         f"postgresql://postgres:$(MLFLOW_DB_PASSWORD)@{FULLNAME}-postgresql:5432/mlflow")
        self.assertEqual(env_value(mlflow, "MLFLOW_S3_ENDPOINT_URL"), f"http://{FULLNAME}-minio:9000")
        self.assertIn("--artifacts-destination=s3://thunderline-artifacts/mlflow", mlflow["args"])
        init_sql = out.configmap(f"{FULLNAME}-postgresql-init")["10-databases.sql"]
        self.assertIn('CREATE DATABASE "cerebros";', init_sql)
        self.assertIn('CREATE DATABASE "mlflow";', init_sql)

    def test_external_database_and_store_through_existing_secrets(self):
        out = self.r(sets=(
            "cerebrosRunner.enabled=true", "mlflow.enabled=true",
            "cerebrosRunner.database.existingSecret=runner-db", "cerebrosRunner.database.existingSecretKey=dsn",
            "mlflow.backendStore.existingSecret=mlflow-db",
            "minio.external.endpoint=https://s3.example.com", "minio.auth.existingSecret=s3-keys",
        ))
        runner = out.container("Deployment", RUNNER)
        self.assertEqual(env_of(runner)["RUNNER_DATABASE_URL"]["valueFrom"]["secretKeyRef"], {"name": "runner-db", "key": "dsn"})
        self.assertEqual(env_of(runner)["MINIO_ACCESS_KEY"]["valueFrom"]["secretKeyRef"], {"name": "s3-keys", "key": "root-user"})
        self.assertEqual(out.configmap(f"{FULLNAME}-cerebros-runner")["MINIO_ENDPOINT"], "https://s3.example.com")
        mlflow = out.container("Deployment", MLFLOW)
        self.assertEqual(env_of(mlflow)["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"], "mlflow-db")
        self.assertEqual(env_of(mlflow)["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"], {"name": "s3-keys", "key": "root-password"})
        self.assertEqual(out.names("StatefulSet"), set(), "no in-release Postgres or store when external ones are used")

    def test_sqlite_and_local_artifacts_without_services(self):
        out = self.r(sets=("mlflow.enabled=true", "cerebrosRunner.enabled=true"))
        mlflow = out.container("Deployment", MLFLOW)
        self.assertEqual(env_value(mlflow, "MLFLOW_BACKEND_STORE_URI"), "sqlite:////data/mlflow.db")
        self.assertIn("--artifacts-destination=/data/artifacts", mlflow["args"])
        self.assertIn("/data", [m["mountPath"] for m in mlflow["volumeMounts"]])
        self.assertNotIn("RUNNER_DATABASE_URL", env_of(out.container("Deployment", RUNNER)))
        self.assertNotIn("MINIO_ENDPOINT", out.configmap(f"{FULLNAME}-cerebros-runner"))

    def test_mlflow_server_flags(self):
        out = self.r(sets=("mlflow.enabled=true", "mlflow.allowedHosts={mlflow.example.com}"))
        c = out.container("Deployment", MLFLOW)
        self.assertEqual(c["command"], ["mlflow"])
        self.assertEqual(c["args"][0], "server")
        self.assertIn("--serve-artifacts", c["args"])
        self.assertTrue(c["image"].startswith("ghcr.io/mlflow/mlflow:v3."), c["image"])
        hosts = next(a for a in c["args"] if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
        for host in (MLFLOW, f"{MLFLOW}:*", f"{MLFLOW}.{NAMESPACE}:*", f"{MLFLOW}.{NAMESPACE}.svc:*",
                     f"{MLFLOW}.{NAMESPACE}.svc.cluster.local:*", "mlflow.example.com"):
            self.assertIn(host, hosts)
        explicit = self.r(sets=("mlflow.enabled=true", "mlflow.backendStoreUri=postgresql://u:pw-literal@db.example/ml"))
        secret = explicit.must("Secret", MLFLOW)
        self.assertEqual(secret["stringData"]["MLFLOW_BACKEND_STORE_URI"], "postgresql://u:pw-literal@db.example/ml")
        self.assertNotIn("MLFLOW_BACKEND_STORE_URI", env_of(explicit.container("Deployment", MLFLOW)))

    def test_otel_collector_wiring(self):
        out = self.r(sets=("opentelemetryCollector.enabled=true", "cerebrosRunner.enabled=true"))
        self.assertEqual(out.configmap(f"{FULLNAME}-env")["OTEL_EXPORTER_OTLP_ENDPOINT"], f"http://{FULLNAME}-otelcol:4318")
        self.assertEqual(out.configmap(f"{FULLNAME}-cerebros-runner")["OTEL_EXPORTER_OTLP_PROTOCOL"], "http/protobuf")
        config = yaml.safe_load(out.configmap(f"{FULLNAME}-otelcol")["collector-config.yaml"])
        self.assertEqual(config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"], "0.0.0.0:4317")
        self.assertNotIn("logging", config["exporters"], "the logging exporter is deprecated")
        grpc = self.r(sets=("opentelemetryCollector.enabled=true", "opentelemetryCollector.protocol=grpc",
                            "opentelemetryCollector.service.grpcPort=14317"))
        self.assertEqual(grpc.configmap(f"{FULLNAME}-env")["OTEL_EXPORTER_OTLP_ENDPOINT"], f"http://{FULLNAME}-otelcol:14317")
        user = self.r(sets=("opentelemetryCollector.enabled=true", "env.secrets.OTEL_EXPORTER_OTLP_ENDPOINT=http://collector.example:4318"))
        self.assertNotIn("OTEL_EXPORTER_OTLP_ENDPOINT", user.configmap(f"{FULLNAME}-env"), "the user's secret value wins")

    def test_federation_uses_official_image_and_ports_from_values(self):
        out = self.r(sets=("federation.enabled=true", "federation.port=19092", "federation.controlPort=19093"))
        c = out.container("Deployment", f"{FULLNAME}-federation")
        self.assertTrue(c["image"].startswith("flwr/superlink:"), c["image"])
        joined = " ".join((c.get("command") or []) + c["args"])
        self.assertNotIn("pip", joined)
        self.assertIn("--fleet-api-address=0.0.0.0:19092", c["args"])
        self.assertIn("--control-api-address=0.0.0.0:19093", c["args"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports["fleet"], 19092)
        svc_ports = {p["name"]: p["port"] for p in out.must("Service", f"{FULLNAME}-federation")["spec"]["ports"]}
        self.assertEqual(svc_ports["fleet"], 19092)
        self.assertEqual(svc_ports["control"], 19093)

    # ---------------------------------------------------------------- credentials

    def test_no_credential_in_configmaps_or_plain_env(self):
        for name, out in self.each_scenario():
            with self.subTest(scenario=name):
                for cm in out.of_kind("ConfigMap"):
                    for key, value in (cm.get("data") or {}).items():
                        self.assertIsNone(CREDENTIAL_NAME.search(key), f"{name}: ConfigMap/{cm['metadata']['name']} holds {key}")
                        self.assertIsNone(CREDENTIAL_URL.search(str(value)), f"{name}: ConfigMap/{cm['metadata']['name']}[{key}] has a password in a URL")
                for label, _, c, _ in out.containers():
                    for e in c.get("env") or []:
                        if "value" not in e:
                            continue
                        if e["value"]:
                            self.assertIsNone(CREDENTIAL_NAME.search(e["name"]), f"{name}: {label} sets {e['name']} as plain env")
                        self.assertIsNone(CREDENTIAL_URL.search(e["value"]), f"{name}: {label} env {e['name']} has a password in a URL")
                    for a in (c.get("args") or []) + (c.get("command") or []):
                        self.assertIsNone(CREDENTIAL_URL.search(a), f"{name}: {label} arg has a password in a URL")

    def test_given_credentials_only_land_in_secrets(self):
        secrets = {
            "livebook.secrets.password": "lb-password-0123456789",
            "minio.auth.rootPassword": "minio-password-0123",
            "postgresql.auth.password": "pg-password-0123",
            "cerebrosRunner.auth.token": "runner-token-0123",
            "env.secrets.DATABASE_URL": "ecto://app:app-db-pass-0123@db.example/app",
            "mlflow.secrets.MLFLOW_TRACKING_PASSWORD": "mlflow-pass-0123",
        }
        out = self.r(values=(ALL_ON,), sets=tuple(f"{k}={v}" for k, v in secrets.items()))
        for doc in out.docs:
            if doc["kind"] == "Secret":
                continue
            text = json.dumps(doc)
            for key, value in secrets.items():
                marker = value.split("@")[0].split(":")[-1]
                self.assertNotIn(marker, text, f"{key} leaked into {doc['kind']}/{doc['metadata']['name']}")
        stored = json.dumps([d for d in out.docs if d["kind"] == "Secret"])
        for key, value in secrets.items():
            self.assertIn(value.split("@")[0].split(":")[-1], stored, f"{key} is in no Secret")

    def test_credentials_in_plain_env_maps_are_refused(self):
        cases = {
            "web.env.API_TOKEN=abc": "web.env.API_TOKEN is a credential",
            "cerebrosRunner.env.MLFLOW_TRACKING_PASSWORD=abc": "cerebrosRunner.env.MLFLOW_TRACKING_PASSWORD is a credential",
            "mlflow.env.AWS_SECRET_ACCESS_KEY=abc": "mlflow.env.AWS_SECRET_ACCESS_KEY is a credential",
            "env.DATABASE_URL=ecto://u:secretpw@db/app": "env.DATABASE_URL holds a URL with a password",
        }
        for setting, expected in cases.items():
            with self.subTest(setting=setting):
                self.assertIn(expected, render_error(self.helm, sets=(setting,)))

    def test_secret_env_leaves_out_empty_values(self):
        out = self.r(sets=("env.secrets.DATABASE_URL=ecto://a:b@db/x",))
        data = out.must("Secret", f"{FULLNAME}-secrets")["stringData"]
        self.assertEqual(data, {"DATABASE_URL": "ecto://a:b@db/x"})

    # ---------------------------------------------------------------- pod hardening

    def test_security_context_on_every_container(self):
        for name, out in self.each_scenario():
            with self.subTest(scenario=name):
                for label, spec in out.pod_specs():
                    psc = spec.get("securityContext") or {}
                    self.assertEqual((psc.get("seccompProfile") or {}).get("type"), "RuntimeDefault", f"{name}: {label} seccomp")
                    self.assertFalse(spec.get("automountServiceAccountToken", True), f"{name}: {label} mounts an API token")
                for label, spec, c, _ in out.containers():
                    psc = spec.get("securityContext") or {}
                    sc = c.get("securityContext") or {}
                    self.assertTrue(sc.get("runAsNonRoot", psc.get("runAsNonRoot")), f"{name}: {label} may run as root")
                    self.assertNotEqual(sc.get("runAsUser", psc.get("runAsUser")), 0, f"{name}: {label} runs as UID 0")
                    self.assertIs(sc.get("allowPrivilegeEscalation"), False, f"{name}: {label} allows privilege escalation")
                    self.assertFalse(sc.get("privileged", False), f"{name}: {label} is privileged")
                    self.assertIn("ALL", (sc.get("capabilities") or {}).get("drop", []), f"{name}: {label} keeps capabilities")
                    if label in WRITABLE_ROOT:
                        continue
                    self.assertIs(sc.get("readOnlyRootFilesystem"), True, f"{name}: {label} has a writable root filesystem")

    def test_probes_on_every_container(self):
        for name, out in self.each_scenario():
            with self.subTest(scenario=name):
                for label, spec, c, is_init in out.containers(include_hooks=False):
                    if is_init:
                        continue  # Kubernetes refuses liveness/readiness probes on init containers.
                    for probe in ("livenessProbe", "readinessProbe"):
                        self.assertIn(probe, c, f"{name}: {label} has no {probe}")
                        target = c[probe]
                        port = (target.get("httpGet") or target.get("tcpSocket") or {}).get("port")
                        if isinstance(port, str):
                            self.assertIn(port, [p["name"] for p in c.get("ports", [])], f"{name}: {label} {probe} port {port}")
                        if "exec" in target:
                            self.assertNotIn(target["exec"]["command"][:1], (["echo"], ["true"]), f"{name}: {label} {probe} tests nothing")

    def test_probe_paths_are_the_ones_the_apps_serve(self):
        out = self.r(values=(ALL_ON,))
        paths = {
            f"{FULLNAME}-web": ("/api/health", "/api/health"),
            RUNNER: ("/healthz", "/readyz"),
            MLFLOW: ("/health", "/health"),
            f"{FULLNAME}-livebook": ("/public/health", "/public/health"),
        }
        for deployment, (live, ready) in paths.items():
            c = out.container("Deployment", deployment)
            self.assertEqual(c["livenessProbe"]["httpGet"]["path"], live, deployment)
            self.assertEqual(c["readinessProbe"]["httpGet"]["path"], ready, deployment)
        worker = out.container("Deployment", f"{FULLNAME}-worker")
        self.assertEqual(worker["livenessProbe"]["exec"]["command"], ["/app/bin/thunderline", "pid"])
        pg = out.container("StatefulSet", f"{FULLNAME}-postgresql")
        self.assertEqual(pg["readinessProbe"]["exec"]["command"][0], "pg_isready")

    def test_resources_on_every_container(self):
        for name, out in self.each_scenario():
            with self.subTest(scenario=name):
                for label, _, c, _ in out.containers():
                    res = c.get("resources") or {}
                    self.assertIn("memory", res.get("requests", {}), f"{name}: {label} has no memory request")
                    self.assertIn("memory", res.get("limits", {}), f"{name}: {label} has no memory limit")

    def test_checksum_annotations_roll_pods(self):
        base = self.r(values=(ALL_ON,))
        for d in base.of_kind("Deployment") + base.of_kind("StatefulSet"):
            notes = d["spec"]["template"]["metadata"].get("annotations") or {}
            self.assertTrue(any(k.startswith("checksum/") for k in notes), f"{d['metadata']['name']} has no checksum annotation")
        web = lambda out: out.must("Deployment", f"{FULLNAME}-web")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        runner = lambda out: out.must("Deployment", RUNNER)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        changed = self.r(values=(ALL_ON,), sets=("env.LOG_LEVEL=debug", "cerebrosRunner.env.RUST_LOG=debug"))
        self.assertNotEqual(web(base), web(changed))
        self.assertNotEqual(runner(base), runner(changed))
        lb = lambda out: out.must("Deployment", f"{FULLNAME}-livebook")["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
        fixed = ("livebook.enabled=true", "livebook.secrets.secretKeyBase=" + "k" * 64, "livebook.secrets.cookie=c")
        one = self.r(sets=fixed + ("livebook.secrets.password=first-password-1",))
        two = self.r(sets=fixed + ("livebook.secrets.password=second-password-2",))
        self.assertNotEqual(lb(one), lb(two))

    def test_service_account(self):
        out = self.r(sets=("serviceAccount.create=false",))
        spec = out.must("Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]
        self.assertEqual(spec["serviceAccountName"], "default", "no ServiceAccount is created, so use one that exists")
        self.assertEqual(out.names("ServiceAccount"), set())
        named = self.r(sets=("serviceAccount.create=false", "serviceAccount.name=ops"))
        self.assertEqual(named.must("Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]["serviceAccountName"], "ops")
        self.assertEqual(self.r().names("ServiceAccount"), {FULLNAME})

    # ---------------------------------------------------------------- components and names

    def test_enabled_flags_are_respected(self):
        out = self.r(sets=("web.enabled=false", "worker.enabled=false"))
        self.assertEqual(out.names("Deployment"), set())
        self.assertNotIn(f"{FULLNAME}-web", out.names("Service"))
        on = self.r(values=(ALL_ON,))
        expected = {f"{FULLNAME}-{n}" for n in ("web", "worker", "cerebros", "mlflow", "livebook", "federation", "otelcol")}
        self.assertEqual(on.names("Deployment"), expected)
        self.assertEqual(on.names("StatefulSet"), {f"{FULLNAME}-postgresql", f"{FULLNAME}-minio"})

    def test_original_resource_names_labels_and_selectors(self):
        out = self.r(values=(ALL_ON,))
        names = {f"{d['kind']}/{d['metadata']['name']}" for d in out.docs}
        for suffix in ("web", "worker", "cerebros", "mlflow", "livebook", "federation", "otelcol"):
            self.assertIn(f"Deployment/{FULLNAME}-{suffix}", names)
        for cm in ("env", "cerebros-runner", "otelcol"):
            self.assertIn(f"ConfigMap/{FULLNAME}-{cm}", names)
        self.assertIn(f"Secret/{FULLNAME}-secrets", names)
        self.assertIn(f"Service/{FULLNAME}-postgresql", names)
        for d in out.of_kind("Deployment") + out.of_kind("StatefulSet"):
            selector = d["spec"]["selector"]["matchLabels"]
            self.assertEqual(set(selector), {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"})
            self.assertEqual(selector["app.kubernetes.io/name"], "thunderhelm")
            self.assertEqual(selector["app.kubernetes.io/instance"], RELEASE)
            labels = d["spec"]["template"]["metadata"]["labels"]
            self.assertTrue(set(selector.items()) <= set(labels.items()))
        for d in out.docs:
            labels = d["metadata"]["labels"]
            self.assertEqual(labels["helm.sh/chart"], "thunderhelm-" + yaml.safe_load((CHART / "Chart.yaml").read_text())["version"])
            self.assertEqual(labels["app.kubernetes.io/managed-by"], "Helm")
        self.assertEqual(self.r().names("Deployment"), {f"{FULLNAME}-web", f"{FULLNAME}-worker"})

    def test_fullname_override(self):
        out = self.r(sets=("global.fullnameOverride=tl", "cerebrosRunner.enabled=true"))
        self.assertEqual(out.configmap("tl-env")["CEREBROS_URL"], "http://tl-cerebros:8088")

    def test_postgres_and_store_are_official_images_without_subcharts(self):
        out = self.r(values=(ALL_ON,))
        pg = out.container("StatefulSet", f"{FULLNAME}-postgresql")
        self.assertTrue(pg["image"].startswith("postgres:"), pg["image"])
        self.assertEqual(env_of(pg)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"], f"{FULLNAME}-postgresql")
        minio = out.container("StatefulSet", f"{FULLNAME}-minio")
        self.assertTrue(minio["image"].startswith("minio/minio:"), minio["image"])
        self.assertNotIn("bitnami", render_text(self.helm, values=(ALL_ON,)).lower())
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        self.assertNotIn("dependencies", chart)
        self.assertFalse((CHART / "charts").exists() or (CHART / "Chart.lock").exists())
        self.assertEqual(chart["name"], "thunderhelm")
        self.assertEqual(chart["apiVersion"], "v2")
        init = out.must("StatefulSet", f"{FULLNAME}-minio")["spec"]["template"]["spec"]["initContainers"][0]
        self.assertEqual(init["command"], ["mkdir", "-p", "/data/thunderline-artifacts"])

    def test_runner_image_and_data_dir(self):
        out = self.r(sets=("cerebrosRunner.enabled=true", "cerebrosRunner.persistence.enabled=true"))
        c = out.container("Deployment", RUNNER)
        self.assertEqual(c["image"], "ghcr.io/thunderline/cerebros-runner:0.1.0")
        self.assertNotIn("command", c, "the image's entrypoint runs; nothing is installed at start")
        self.assertIn("/data", [m["mountPath"] for m in c["volumeMounts"]])
        volumes = {v["name"]: v for v in out.must("Deployment", RUNNER)["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["data"]["persistentVolumeClaim"]["claimName"], RUNNER)
        self.assertIn(RUNNER, out.names("PersistentVolumeClaim"))
        self.assertEqual(out.configmap(f"{FULLNAME}-cerebros-runner")["PORT"], "8088")
        pinned = self.r(sets=("cerebrosRunner.enabled=true", "cerebrosRunner.image.digest=sha256:" + "a" * 64))
        self.assertEqual(pinned.container("Deployment", RUNNER)["image"], "ghcr.io/thunderline/cerebros-runner@sha256:" + "a" * 64)

    def test_runner_token_reaches_runner_thunderline_and_test_pod(self):
        out = self.r(sets=("cerebrosRunner.enabled=true", "cerebrosRunner.auth.token=tok-123"))
        self.assertEqual(out.must("Secret", f"{FULLNAME}-cerebros-runner")["stringData"]["RUNNER_API_TOKEN"], "tok-123")
        for deployment in (f"{FULLNAME}-web", f"{FULLNAME}-worker"):
            ref = env_of(out.container("Deployment", deployment))["RUNNER_API_TOKEN"]["valueFrom"]["secretKeyRef"]
            self.assertEqual(ref, {"name": f"{FULLNAME}-cerebros-runner", "key": "RUNNER_API_TOKEN"})
        test_pod = out.must("Pod", f"{FULLNAME}-test-cerebros")
        self.assertIn("RUNNER_API_TOKEN", env_of(test_pod["spec"]["containers"][0]))

    # ---------------------------------------------------------------- livebook

    def test_livebook_secret_always_mounted_and_stable_keys(self):
        out = self.r(sets=("livebook.enabled=true",))
        secret = out.must("Secret", f"{FULLNAME}-livebook")["stringData"]
        self.assertNotIn("LIVEBOOK_PASSWORD", secret)
        self.assertEqual(len(secret["LIVEBOOK_SECRET_KEY_BASE"]), 64)
        self.assertTrue(secret["LIVEBOOK_COOKIE"])
        c = out.container("Deployment", f"{FULLNAME}-livebook")
        self.assertIn({"secretRef": {"name": f"{FULLNAME}-livebook"}}, c["envFrom"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(ports, {"http": 8080, "iframe": 8081})
        given = self.r(sets=("livebook.enabled=true", "livebook.secrets.secretKeyBase=" + "s" * 64, "livebook.secrets.cookie=cookie-1"))
        data = given.must("Secret", f"{FULLNAME}-livebook")["stringData"]
        self.assertEqual(data["LIVEBOOK_SECRET_KEY_BASE"], "s" * 64)
        self.assertEqual(data["LIVEBOOK_COOKIE"], "cookie-1")
        template = (CHART / "templates" / "livebook-secret.yaml").read_text()
        self.assertIn("thunderhelm.stableRandom", template, "generated keys must be looked up from the live Secret on upgrade")

    def test_livebook_tls_example_has_one_certificate_per_secret(self):
        for name, out in self.each_scenario():
            with self.subTest(scenario=name):
                certs = out.of_kind("Certificate")
                secrets = [c["spec"]["secretName"] for c in certs]
                self.assertEqual(len(secrets), len(set(secrets)), f"{name}: two Certificates for one Secret")
                for ing in out.of_kind("Ingress"):
                    notes = ing["metadata"].get("annotations") or {}
                    if certs:
                        self.assertFalse({"cert-manager.io/cluster-issuer", "cert-manager.io/issuer"} & set(notes),
                                         f"{name}: Ingress annotation and chart Certificate would both issue")
        out = self.r(values=(EXAMPLE["values-livebook-tls"],))
        cert = out.must("Certificate", f"{FULLNAME}-livebook")
        self.assertEqual(cert["spec"]["secretName"], "livebook-tls")
        self.assertEqual(cert["spec"]["issuerRef"], {"name": "letsencrypt-prod", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        self.assertEqual(cert["spec"]["dnsNames"], ["livebook.example.com"])
        ing = out.must("Ingress", f"{FULLNAME}-livebook")
        self.assertEqual(ing["spec"]["tls"][0]["secretName"], "livebook-tls")
        backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        self.assertEqual(backend, {"name": f"{FULLNAME}-livebook", "port": {"number": 8080}})
        generated = self.r(sets=("livebook.enabled=true", "livebook.secrets.password=long-enough-pw",
                                 "livebook.ingress.enabled=true", "livebook.ingress.certManager.enabled=true",
                                 "livebook.ingress.certManager.clusterIssuer=issuer"))
        tls = generated.must("Ingress", f"{FULLNAME}-livebook")["spec"]["tls"]
        self.assertEqual(tls, [{"secretName": f"{FULLNAME}-livebook-tls", "hosts": ["livebook.local"]}])

    def test_examples_are_correct(self):
        for path in EXAMPLES:
            with self.subTest(example=path.name):
                values = yaml.safe_load(path.read_text())
                password = ((values.get("livebook") or {}).get("secrets") or {}).get("password")
                if password:
                    self.assertGreaterEqual(len(password), 12)
                text = path.read_text()
                for stale in ("minio:9000", "thunderline-cerebros:", "thunderline-minio", "pip install", "bitnami"):
                    self.assertNotIn(stale, text)
        hpo = self.r(values=(EXAMPLE["values-hpo-demo"],))
        self.assertTrue({f"{FULLNAME}-{n}" for n in ("cerebros", "mlflow", "livebook", "otelcol")} <= hpo.names("Deployment"))
        self.assertEqual(hpo.names("StatefulSet"), {f"{FULLNAME}-postgresql", f"{FULLNAME}-minio"})
        fed = self.r(values=(EXAMPLE["values-federation-demo"],))
        self.assertIn(f"{FULLNAME}-federation", fed.names("Deployment"))

    # ---------------------------------------------------------------- helm test hooks

    def test_helm_test_hooks(self):
        out = self.r(sets=("cerebrosRunner.enabled=true", "mlflow.enabled=true"))
        runner = out.must("Pod", f"{FULLNAME}-test-cerebros")
        self.assertEqual(runner["metadata"]["annotations"]["helm.sh/hook"], "test")
        script = runner["spec"]["containers"][0]["args"][0]
        self.assertIn(f"url=http://{RUNNER}:8088", script)
        self.assertIn('"$url/healthz"', script)
        self.assertIn('"$url/propose"', script)
        self.assertIn('{"run_id":"helm-test","k":2,"space":{"lr":{"loguniform":[0.0001,0.1]}}}', script)
        mlflow = out.must("Pod", f"{FULLNAME}-test-mlflow")
        script = mlflow["spec"]["containers"][0]["args"][0]
        self.assertIn(f"url=http://{MLFLOW}:5000", script)
        self.assertIn('"$url/health"', script)
        self.assertEqual(self.r().of_kind("Pod"), [], "no test Pods for components that are off")

    def test_helm_test_scripts_are_valid_shell(self):
        out = self.r(sets=("cerebrosRunner.enabled=true", "mlflow.enabled=true"))
        for pod in out.of_kind("Pod"):
            script = pod["spec"]["containers"][0]["args"][0]
            proc = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, f"{pod['metadata']['name']}: {proc.stderr}")

    # ---------------------------------------------------------------- refused values

    def test_bad_values_fail_with_a_clear_message(self):
        cases = [
            (("livebook.enabled=true", "livebook.ingress.enabled=true"), (),
             "livebook.secrets.password is required when livebook.ingress.enabled is true"),
            (("livebook.enabled=true",), ("livebook.secrets.password=elevenchars",),
             "livebook.secrets.password must be at least 12 characters"),
            ((), ("web.replicas=two",), "/web/replicas"),
            (("web.bogus=1",), (), "additional properties 'bogus' not allowed"),
            (("bogusTopLevel=1",), (), "additional properties 'bogusTopLevel' not allowed"),
            (("cerebrosRunner.pipPackages={fastapi}",), (), "cerebrosRunner.pipPackages is no longer supported"),
            (("rbac.create=true",), (), "rbac.create"),
            (("mlflow.enabled=true", "mlflow.replicas=2"), (), "mlflow.replicas > 1 needs a database backend store"),
            (("cerebrosRunner.enabled=true", "cerebrosRunner.replicas=2"), (), "cerebrosRunner.replicas > 1 needs a shared Postgres"),
            (("livebook.replicas=2",), (), "/livebook/replicas"),
            (("web.ingress.enabled=true", "web.service.enabled=false"), (), "web.ingress.enabled needs web.enabled and web.service.enabled"),
            (("livebook.enabled=true", "livebook.secrets.password=long-enough-pw", "livebook.ingress.enabled=true",
              "livebook.ingress.certManager.enabled=true"), (), "livebook.ingress.certManager.clusterIssuer is required"),
            (("minio.enabled=true", "minio.auth.rootPassword=short"), (), "minio.auth.rootPassword must be at least 8 characters"),
            (("opentelemetryCollector.protocol=udp",), (), "/opentelemetryCollector/protocol"),
        ]
        for sets, set_strings, expected in cases:
            with self.subTest(sets=sets, set_strings=set_strings):
                self.assertIn(expected, render_error(self.helm, sets=sets, set_strings=set_strings))
        no_hosts = Path(__file__).resolve().parent / "values-ingress-without-hosts.yaml"
        self.assertIn("web.ingress.hosts must list at least one host", render_error(self.helm, values=(no_hosts,)))
        tls = yaml.safe_load(EXAMPLE["values-livebook-tls"].read_text())
        message = render_error(self.helm, values=(EXAMPLE["values-livebook-tls"],),
                               sets=("livebook.ingress.annotations.cert-manager\\.io/cluster-issuer=letsencrypt-prod",))
        self.assertIn("second Certificate", message)
        self.assertTrue(tls["livebook"]["ingress"]["certManager"]["enabled"])

    def test_livebook_password_of_valid_length_is_accepted(self):
        out = self.r(sets=("livebook.enabled=true", "livebook.ingress.enabled=true"), set_strings=("livebook.secrets.password=twelve-chars",))
        self.assertEqual(out.must("Secret", f"{FULLNAME}-livebook")["stringData"]["LIVEBOOK_PASSWORD"], "twelve-chars")

    def test_kubernetes_older_than_1_24_is_refused(self):
        proc = subprocess.run([self.helm, "template", RELEASE, str(CHART), "--kube-version", "1.23.0"],
                              capture_output=True, text=True, env=helm_env())
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("kubeVersion", proc.stderr + proc.stdout)

    # ---------------------------------------------------------------- NOTES

    def test_notes_are_rendered(self):
        """NOTES.txt sits under templates/ and renders. Helm 4 shows it on a client-side dry-run install; Helm 3's
        dry-run needs a cluster, so there the same template is rendered through an include in a scratch copy."""
        args = ["-n", NAMESPACE, "--set", "cerebrosRunner.enabled=true"]
        self.assertTrue((CHART / "templates" / "NOTES.txt").is_file())
        proc = subprocess.run([self.helm, "install", RELEASE, str(CHART), "--dry-run=client", *args],
                              capture_output=True, text=True, env=helm_env())
        if proc.returncode == 0:
            notes = proc.stdout.split("NOTES:", 1)[1]
        else:
            self.assertIn("cluster unreachable", proc.stderr)
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / "thunderhelm"
                shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("tests", "__pycache__"))
                (copy / "templates" / "notes-probe.yaml").write_text(
                    '# {{ include (print $.Template.BasePath "/NOTES.txt") . | replace "\\n" "\\n# " }}\n')
                proc = subprocess.run([self.helm, "template", RELEASE, str(copy), "-s", "templates/notes-probe.yaml", *args],
                                      capture_output=True, text=True, env=helm_env())
                self.assertEqual(proc.returncode, 0, proc.stderr)
                notes = proc.stdout
        self.assertIn(f"CEREBROS_URL=http://{RUNNER}:8088", notes)
        self.assertIn(f"helm test {RELEASE}", notes)


    def test_package_keeps_hooks_and_leaves_out_the_render_tests(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([self.helm, "package", str(CHART), "-d", tmp], capture_output=True, text=True, env=helm_env())
            self.assertEqual(proc.returncode, 0, proc.stderr)
            listing = subprocess.run(["tar", "tzf", next(Path(tmp).glob("*.tgz"))], capture_output=True, text=True).stdout.split()
        self.assertIn("thunderhelm/templates/tests/test-cerebros-runner.yaml", listing)
        self.assertIn("thunderhelm/templates/NOTES.txt", listing)
        self.assertFalse([f for f in listing if f.startswith("thunderhelm/tests/")], "chart/tests is packaged")


class ValuesDocumentation(unittest.TestCase):
    """values.yaml, values.schema.json and README.md agree."""

    def leaf_paths(self):
        schema = json.loads((CHART / "values.schema.json").read_text())
        defs = schema["definitions"]

        def resolve(node):
            while "$ref" in node or ("allOf" in node and len(node["allOf"]) == 1 and "properties" not in node):
                node = defs[node["$ref"].split("/")[-1]] if "$ref" in node else node["allOf"][0]
            return node

        out = []

        def walk(value, node, path):
            node = resolve(node)
            if isinstance(value, dict) and "properties" in node:
                for key, sub in value.items():
                    self.assertIn(key, node["properties"], f"{'.'.join(path + [key])} is not in values.schema.json")
                    walk(sub, node["properties"][key], path + [key])
            else:
                out.append(".".join(path))

        walk(load_values(), schema, [])
        return out

    def test_every_value_is_typed_and_documented(self):
        readme = (CHART / "README.md").read_text()
        for path in self.leaf_paths():
            with self.subTest(value=path):
                self.assertIn(f"`{path}`", readme, f"README.md does not document {path}")

    def test_every_example_is_documented(self):
        readme = (CHART / "README.md").read_text()
        for path in EXAMPLES:
            self.assertIn(f"examples/{path.name}", readme)


def _make_cases():
    for label, binary in helms().items():
        name = f"Chart_{label}"
        globals()[name] = type(name, (ChartCase, unittest.TestCase), {"helm": binary})


_make_cases()

if __name__ == "__main__":
    unittest.main()
