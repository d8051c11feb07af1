"""Checks of helm/perfscope with real tools: the Helm v4 SDK
(helm-python-sdk: lint, schema, render), kubernetes-validate (every rendered
manifest against the Kubernetes schemas), promtool (the alert rules, their
unit tests, and every dashboard query), and a live scrape of `perfscope
demo` (every metric the dashboard and the rules use must exist).

    .venv/bin/python tests/helm_chart.py [path/to/perfscope]

Run by tests/run.sh after `cargo test`, which builds the binary.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest
import urllib.request
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "perfscope"
RULES = CHART / "rules" / "perfscope.rules.yaml"
RULE_TESTS = CHART / "rules" / "perfscope.rules.test.yaml"
DASHBOARD = CHART / "dashboards" / "perfscope.json"
KUBE_VERSION = "1.30.0"
BINARY = Path(os.environ.get("PERFSCOPE_BIN", ROOT / "target" / "debug" / "perfscope"))
ADMIN_TOKEN = "helm-chart-test-admin-token-0123456789"

# Metric names the dashboard or rules may use that a healthy demo does not
# export: Prometheus's own ALERTS; the memory limit, exported only under a
# cgroup memory limit (not set here); and counters of failures, which
# prometheus-client exports from their first event (an empty family is
# not declared at all). These must be in the README's metrics table.
NOT_IN_A_PLAIN_SCRAPE = {"ALERTS"}
EXPORTED_ON_FIRST_EVENT = {
    "process_memory_limit_bytes",
    "db_query_errors_total",
    "db_pool_timeouts_total",
    "perfscope_metric_overflow_total",
}
# pg_stat_io exists from PostgreSQL 16 on, and the demo's cluster is the
# newest installed major (15 here): the I/O reader exports no series and no
# family there (a server without the view has no I/O figures, not zeros).
# tests/io.rs checks them in a live scrape of PostgreSQL 18. These must be
# in the README's metrics table too.
NEEDS_POSTGRES_16 = {"pg_io_operations_total", "pg_io_bytes_total"}


def render(values: dict | None = None) -> list[dict]:
    """The chart rendered with `values`, as parsed objects."""
    chart = helm.Chart.load(str(CHART))
    manifests = chart.render(values or {}, name="perfscope", namespace="monitoring")
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(o for o in yaml.safe_load_all(text) if o)
    return objects


def ci_values() -> dict[str, dict]:
    return {
        p.name: yaml.safe_load(p.read_text()) or {}
        for p in sorted((CHART / "ci").glob("*-values.yaml"))
    }


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are
    not functions, keywords, label names or label values."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    keywords = {"and", "or", "unless", "bool", "offset", "by", "without", "inf", "nan"}
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        name = match.group(0)
        rest = expr[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in keywords:
            continue
        if match.start() > 0 and expr[match.start() - 1].isdigit():
            continue  # the exponent of a number such as 1e3
        names.add(name)
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    return queries


def as_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced."""
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("$job", ".*")
        .replace("$database", ".*")
    )


class Chart(unittest.TestCase):
    def test_app_version_is_the_crate_version(self):
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
        self.assertEqual(chart["appVersion"], cargo["package"]["version"])

    def test_lint_is_clean_in_strict_mode_for_every_values_file(self):
        for name, values in {"defaults": {}, **ci_values()}.items():
            report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
            problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
            self.assertEqual(problems, [], name)

    def test_every_manifest_is_valid_kubernetes(self):
        for name, values in {"defaults": {}, **ci_values()}.items():
            objects = render(values)
            self.assertTrue(by_kind(objects, "Deployment"), name)
            for obj in objects:
                if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                    continue  # no schemas: checked structurally below
                try:
                    kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
                except kubernetes_validate.ValidationError as error:
                    self.fail(f"{name}: {obj['kind']} {obj['metadata']['name']}: {error}")

    def test_secure_defaults_and_probes(self):
        objects = render()
        (deployment,) = by_kind(objects, "Deployment")
        spec = deployment["spec"]["template"]["spec"]
        self.assertEqual(deployment["spec"]["replicas"], 1)
        self.assertIs(spec["automountServiceAccountToken"], False)
        pod = spec["securityContext"]
        self.assertIs(pod["runAsNonRoot"], True)
        self.assertGreater(pod["runAsUser"], 0)
        self.assertEqual(pod["seccompProfile"]["type"], "RuntimeDefault")
        (container,) = spec["containers"]
        security = container["securityContext"]
        self.assertIs(security["readOnlyRootFilesystem"], True)
        self.assertIs(security["allowPrivilegeEscalation"], False)
        self.assertEqual(security["capabilities"]["drop"], ["ALL"])
        self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/readyz")
        self.assertIn("memory", container["resources"]["limits"])
        self.assertIn("cpu", container["resources"]["requests"])
        (config,) = by_kind(objects, "ConfigMap")
        self.assertEqual(config["data"]["PERFSCOPE_LISTEN"], "0.0.0.0:8080")
        (account,) = by_kind(objects, "ServiceAccount")
        self.assertIs(account["automountServiceAccountToken"], False)
        # History in an emptyDir by default, under the read-only root.
        self.assertEqual(config["data"]["PERFSCOPE_DATA_DIR"], "/var/lib/perfscope")
        (mount,) = container["volumeMounts"]
        self.assertEqual(mount["mountPath"], "/var/lib/perfscope")
        (volume,) = spec["volumes"]
        self.assertEqual(volume["name"], mount["name"])
        self.assertIn("emptyDir", volume)
        # Nothing optional by default, and no Secret without credentials.
        kinds = sorted(o["kind"] for o in objects)
        self.assertEqual(kinds, ["ConfigMap", "Deployment", "Service", "ServiceAccount"])

    def test_everything_on(self):
        objects = render(ci_values()["full-values.yaml"])
        kinds = {o["kind"] for o in objects}
        for kind in ["Secret", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "PrometheusRule", "PersistentVolumeClaim"]:
            self.assertIn(kind, kinds)
        (claim,) = by_kind(objects, "PersistentVolumeClaim")
        self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "2Gi")
        (secret,) = by_kind(objects, "Secret")
        self.assertEqual(len(secret["stringData"]), 8)
        (deployment,) = by_kind(objects, "Deployment")
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        for var in ["DATABASE_URL", "PERFSCOPE_ADMIN_TOKEN", "SENTRY_DSN", "OTEL_EXPORTER_OTLP_HEADERS"]:
            ref = env[var]["valueFrom"]["secretKeyRef"]
            self.assertEqual(ref["name"], secret["metadata"]["name"])
        # OTLP export is configured from the values, credentials aside.
        (config,) = [o for o in by_kind(objects, "ConfigMap") if "PERFSCOPE_LISTEN" in o["data"]]
        self.assertEqual(config["data"]["PERFSCOPE_STORE_MAX_BYTES"], "1073741824")
        volume = deployment["spec"]["template"]["spec"]["volumes"][0]
        self.assertEqual(volume["persistentVolumeClaim"]["claimName"], claim["metadata"]["name"])
        self.assertEqual(config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://otel-collector.monitoring:4317")
        self.assertEqual(config["data"]["OTEL_EXPORTER_OTLP_PROTOCOL"], "grpc")
        self.assertEqual(config["data"]["OTEL_EXPORTER_OTLP_COMPRESSION"], "gzip")
        self.assertTrue(config["data"]["OTEL_SERVICE_NAME"].startswith("perfscope"))
        self.assertEqual(config["data"]["OTEL_TRACES_SAMPLER_ARG"], "0.25")
        self.assertNotIn("OTEL_EXPORTER_OTLP_HEADERS", config["data"])
        # The route charts read every replica from Prometheus.
        self.assertEqual(config["data"]["PERFSCOPE_PROMETHEUS_URL"], "http://prometheus-operated.monitoring:9090")
        self.assertEqual(config["data"]["PERFSCOPE_PROMETHEUS_SELECTOR"], 'job="shop",namespace="prod"')
        # A password never lands in the ConfigMap or the pod spec.
        text = yaml.safe_dump([o for o in objects if o["kind"] != "Secret"])
        self.assertNotIn("change-me", text)
        (dashboards,) = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]
        self.assertEqual(dashboards["metadata"]["labels"]["grafana_dashboard"], "1")
        self.assertEqual(json.loads(dashboards["data"]["perfscope.json"]), json.loads(DASHBOARD.read_text()))

    def test_existing_secret_is_referenced_not_created(self):
        objects = render(ci_values()["existing-secret-values.yaml"])
        self.assertEqual(by_kind(objects, "Secret"), [])
        (deployment,) = by_kind(objects, "Deployment")
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        ]
        # One per credential of secrets.keys, the planner's password included.
        self.assertEqual(len(refs), 9)
        self.assertIn("PERFSCOPE_PLANNER_PASSWORD", [r["key"] for r in refs])
        self.assertTrue(all(r["name"] == "perfscope-credentials" and r["optional"] for r in refs))
        (monitor,) = by_kind(objects, "ServiceMonitor")
        credentials = monitor["spec"]["endpoints"][0]["authorization"]["credentials"]
        self.assertEqual(credentials, {"name": "perfscope-credentials", "key": "PERFSCOPE_ADMIN_TOKEN"})

    def test_service_monitor_and_rules_structure(self):
        objects = render(ci_values()["full-values.yaml"])
        (monitor,) = by_kind(objects, "ServiceMonitor")
        (service,) = by_kind(objects, "Service")
        endpoint = monitor["spec"]["endpoints"][0]
        self.assertEqual(endpoint["path"], "/api/performance/metrics")
        self.assertEqual(endpoint["port"], service["spec"]["ports"][0]["name"])
        self.assertEqual(endpoint["authorization"]["type"], "Bearer")
        self.assertEqual(endpoint["authorization"]["credentials"]["key"], "PERFSCOPE_METRICS_TOKEN")
        self.assertEqual(monitor["spec"]["selector"]["matchLabels"], service["spec"]["selector"])
        (rule,) = by_kind(objects, "PrometheusRule")
        self.assertEqual(rule["spec"]["groups"], yaml.safe_load(RULES.read_text())["groups"])
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            yaml.safe_dump({"groups": rule["spec"]["groups"]}, f)
            f.flush()
            result = promtool("check", "rules", f.name)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_the_database_load_threshold_and_trace_url_come_from_the_values(self):
        values = ci_values()["full-values.yaml"]
        values["prometheusRule"]["databaseLoad"] = {"activeSessions": 16}
        values["config"]["traceUrl"] = "https://tempo.example/trace/{trace_id}"
        objects = render(values)
        (rule,) = by_kind(objects, "PrometheusRule")
        (load,) = [r for g in rule["spec"]["groups"] for r in g["rules"] if r.get("alert") == "PostgresDatabaseLoadHigh"]
        self.assertEqual(load["expr"], "sum by (job, database) (pg_ash_active_sessions) > 16")
        (config,) = [o for o in by_kind(objects, "ConfigMap") if "PERFSCOPE_LISTEN" in o["data"]]
        self.assertEqual(config["data"]["PERFSCOPE_TRACE_URL"], "https://tempo.example/trace/{trace_id}")

    def test_schema_rejects_bad_values(self):
        chart = helm.Chart.load(str(CHART))
        chart.validate_schema({})
        for bad, field in [
            ({"replicaCount": "two"}, "replicaCount"),
            ({"unknownKey": 1}, "unknownKey"),
            ({"config": {"logFormat": "xml"}}, "logFormat"),
            ({"config": {"readinessDatabase": "maybe"}}, "readinessDatabase"),
            ({"config": {"sqlComments": "on"}}, "sqlComments"),
            ({"config": {"highMemoryThreshold": 1.7}}, "highMemoryThreshold"),
            ({"serviceMonitor": {"enabled": "yes"}}, "enabled"),
            ({"port": 70000}, "port"),
            ({"config": {"plannerUser": "a,b"}}, "plannerUser"),
            ({"config": {"planRoles": "app\n"}}, "planRoles"),
            ({"config": {"prometheusUrl": "http://user:pw@prom:9090"}}, "prometheusUrl"),
            ({"config": {"traceUrl": "javascript:alert(1)//{trace_id}"}}, "traceUrl"),
            ({"config": {"traceUrl": "https://tempo.example/trace/"}}, "traceUrl"),
            ({"prometheusRule": {"databaseLoad": {"activeSessions": 0}}}, "activeSessions"),
        ]:
            with self.assertRaises(helm.HelmValuesError, msg=str(bad)) as raised:
                chart.validate_schema(bad)
            self.assertIn(field, str(raised.exception))


class Rules(unittest.TestCase):
    def test_promtool_checks_and_unit_tests(self):
        result = promtool("check", "rules", str(RULES))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        result = promtool("test", "rules", str(RULE_TESTS))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_alert_has_annotations_and_a_runbook_section(self):
        runbooks = (ROOT / "docs" / "runbooks.md").read_text()
        anchors = {h.strip().lower() for h in re.findall(r"^## (.+)$", runbooks, re.M)}
        alerts = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]
        self.assertGreaterEqual(len(alerts), 10)
        for alert in alerts:
            annotations = alert["annotations"]
            for key in ["summary", "description", "runbook"]:
                self.assertTrue(annotations.get(key), f"{alert['alert']} has no {key}")
            self.assertIn(annotations["runbook"].split("#")[1], anchors, alert["alert"])


class Dashboard(unittest.TestCase):
    def test_every_panel_query_parses(self):
        queries = dashboard_queries()
        self.assertGreaterEqual(len(queries), 20)
        rules = {
            "groups": [
                {
                    "name": "dashboard",
                    "rules": [
                        {"record": f"dashboard:panel{i}", "expr": as_promql(expr)}
                        for i, (_, expr) in enumerate(queries)
                    ],
                }
            ]
        }
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            yaml.safe_dump(rules, f)
            f.flush()
            result = promtool("check", "rules", f.name)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_variables_and_required_panels(self):
        dashboard = json.loads(DASHBOARD.read_text())
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        self.assertTrue({"datasource", "database"} <= variables)
        exprs = " ".join(e for _, e in dashboard_queries())
        for needle in [
            "http_request_duration_seconds_bucket",
            "db_query_duration_seconds_bucket",
            "db_pool_waiting",
            "cache_operations_total",
            "runtime_event_loop_lag_seconds",
            "runtime_event_loop_utilization",
            "process_memory_limit_bytes",
            "ALERTS",
            "pg_stat_statements_exec_seconds_total",
            "pg_database_buffer_hit_ratio",
            "pg_database_connections",
            "pg_database_dead_tuples",
            "pg_database_deadlocks_total",
            "perfscope_agent_statement_seconds_total",
            "perfscope_agent_statement_calls_total",
        ]:
            self.assertIn(needle, exprs)

    def test_metric_names_exist_in_a_live_scrape_of_the_demo(self):
        used = set()
        for _, expr in dashboard_queries():
            used |= metric_names(as_promql(expr))
        for group in yaml.safe_load(RULES.read_text())["groups"]:
            for rule in group["rules"]:
                used |= metric_names(rule["expr"])
        recorded = {r["record"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "record" in r}
        scraped = scrape_demo()
        missing = sorted(
            used - recorded - NOT_IN_A_PLAIN_SCRAPE - EXPORTED_ON_FIRST_EVENT - NEEDS_POSTGRES_16 - scraped
        )
        self.assertEqual(missing, [], "used by the dashboard or rules but not exported by the demo")
        readme = (ROOT / "README.md").read_text()
        for name in (EXPORTED_ON_FIRST_EVENT | NEEDS_POSTGRES_16) & used:
            self.assertIn(f"`{name}`", readme, f"{name} is not in the README's metrics table")


def scrape_demo() -> set[str]:
    """Starts `perfscope demo`, lets its workload run until every subsystem
    has reported, and returns the metric names of one scrape."""
    if not BINARY.exists():
        raise AssertionError(f"{BINARY} is missing: run `cargo test --all-features` (tests/run.sh) first")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PERFSCOPE_LISTEN": "127.0.0.1:0",
        "PERFSCOPE_ADMIN_TOKEN": ADMIN_TOKEN,
        "PERFSCOPE_LOG_FORMAT": "json",
    }
    demo = subprocess.Popen(
        [str(BINARY), "demo"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        base = None
        deadline = time.monotonic() + 120
        while base is None and time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            if match:
                base = match.group(1)
        if base is None:
            raise AssertionError("the demo did not print its address")
        # Samples (not just declarations) from every subsystem the demo
        # drives: requests, queries, the cache, a measurement, the readers.
        needed = {
            "http_request_duration_seconds_count",
            "db_query_duration_seconds_count",
            "cache_operations_total",
            "custom_operation_duration_seconds_count",
            "pg_stat_statements_exec_seconds_total",
            "pg_database_buffer_hit_ratio",
        }
        sampled: set[str] = set()
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                f"{base}/api/performance/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                text = response.read().decode()
            names, sampled = set(), set()
            for line in text.splitlines():
                if line.startswith("# TYPE "):
                    # A family the agent declares, even before its first
                    # sample (e.g. an error counter that never counted).
                    _, _, family, kind = line.split(" ", 3)
                    suffixes = {
                        "counter": ["_total"],
                        "histogram": ["_bucket", "_count", "_sum"],
                    }.get(kind, [""])
                    names.update(family + suffix for suffix in suffixes)
                elif line and not line.startswith("#"):
                    sampled.add(re.split(r"[{ ]", line, maxsplit=1)[0])
            names |= sampled
            if needed <= sampled:
                return names
            time.sleep(2)
        raise AssertionError(f"the demo's scrape never showed {sorted(needed - sampled)}")
    finally:
        demo.stdout.close()
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        BINARY = Path(sys.argv.pop(1))
    unittest.main(verbosity=2)
