"""Deployment as code: alert rules (promtool), the Grafana dashboard, docker-compose.yml.

There is no Docker engine on our machines, so the compose file is checked against the
Compose Specification's JSON schema (as vendored by check-jsonschema) and every file it
mounts or builds from must exist. Every PromQL query in the dashboard and the alert rules
may only name metrics that ``leadflow metrics names`` lists.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from workflows.telemetry import metric_names

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
PROMETHEUS_BUILTINS = {"up"}
_METRIC = re.compile(r"\b((?:leadflow|temporal)_[a-z0-9_]+|up)\b")
_HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool not found: install Debian's prometheus package (apt-get install prometheus), as .ci/run does"
    return found


def _metric_in(name: str, listed: set[str]) -> bool:
    if name in listed or name in PROMETHEUS_BUILTINS:
        return True
    return any(name.endswith(part) and name.removesuffix(part) in listed for part in _HISTOGRAM_PARTS)


def names_used(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in _METRIC.findall(re.sub(r"\{[^}]*\}", "", expr))}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "leadflow.json").read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    queries += [variable["definition"] for variable in dashboard["templating"]["list"]]
    return queries


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alert-rules.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_alert_rules_pass_their_promtool_unit_tests():
    result = subprocess.run(
        [promtool(), "test", "rules", "alert-rules.test.yml"], cwd=DEPLOY / "prometheus", capture_output=True, text=True
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_case():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alert-rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alert-rules.test.yml").read_text())["tests"]
    firing, silent = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing == alerts
    # "Worker down" is silent for the healthy worker in the same case that fires for the dead one.
    assert silent | {"LeadflowWorkerDown"} == alerts
    assert {"LeadflowSLAAttainmentLow", "LeadflowBreachRateSpike", "LeadflowEscalationBacklog", "LeadflowWorkflowTaskFailures",
            "LeadflowScheduleToStartHigh", "LeadflowWorkerDown"} <= alerts


def test_prometheus_config_and_rules_are_valid():
    for command in (["check", "config", "prometheus.yml"], ["check", "rules", "alert-rules.yml"]):
        result = subprocess.run([promtool(), *command], cwd=DEPLOY / "prometheus", capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["leadflow-worker"]["static_configs"][0]["targets"] == ["worker:9464"]
    assert "temporal-server" in jobs


def test_dashboard_json_is_what_the_generator_builds():
    result = subprocess.run([sys.executable, str(DEPLOY / "grafana" / "build_dashboard.py"), "--check"], capture_output=True)
    assert result.returncode == 0, "deploy/grafana/dashboards/leadflow.json is stale: run deploy/grafana/build_dashboard.py"


def test_dashboard_covers_what_ops_watch():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "leadflow.json").read_text())
    titles = " | ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for topic in ("stage", "sla attainment", "time to first contact", "breaches", "escalations", "open leads per team",
                  "task slots", "schedule-to-start", "workflow task failures"):
        assert topic in titles, topic
    queries = " ".join(dashboard_queries())
    for quantile in ("0.50", "0.90", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(leadflow_time_to_first_contact_business_seconds_bucket" in queries


@pytest.mark.parametrize("source", ["dashboard", "alert rules"])
def test_queries_only_name_metrics_the_worker_exposes(source):
    listed = set(metric_names())
    expressions = dashboard_queries() if source == "dashboard" else alert_expressions()
    used = names_used(expressions)
    assert used, "no metric names found: the extraction is broken"
    unknown = sorted(name for name in used if not _metric_in(name, listed))
    assert unknown == [], f"{source} queries metrics the worker does not expose: {unknown}"


def test_metrics_names_command_prints_the_list():
    result = subprocess.run([sys.executable, "-m", "cli.main", "metrics", "names"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split()
    assert printed == metric_names()
    assert any(name.startswith("temporal_") for name in printed) and any(name.startswith("leadflow_") for name in printed)


# -- docker-compose.yml --------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification():
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_schema_check_catches_a_broken_file():
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text())
    broken = compose()
    broken["services"]["worker"]["depends_on"]["postgres"]["condition"] = "whenever"
    broken["services"]["grafana"]["ports"] = "3000"
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))
    assert len(errors) >= 2


def test_compose_has_the_whole_stack_with_health_checks_and_ordering():
    services = compose()["services"]
    assert {"postgres", "temporal", "temporal-ui", "prometheus", "grafana", "worker", "api"} <= services.keys()
    for name in ("postgres", "temporal", "prometheus", "grafana", "worker", "api"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert services["worker"]["depends_on"]["temporal-setup"]["condition"] == "service_completed_successfully"
    assert services["worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["worker"]["build"]["dockerfile"] == "Dockerfile"
    assert compose()["volumes"].keys() >= {"postgres-data", "prometheus-data", "grafana-data"}


def test_every_file_the_compose_file_mounts_or_builds_from_exists():
    services = compose()["services"]
    checked = 0
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is not in the repository"
                checked += 1
        if "build" in service:
            context = REPO / service["build"]["context"]
            assert (context / service["build"]["dockerfile"]).is_file()
            checked += 1
    assert checked >= 6
    dockerfile = (REPO / "Dockerfile").read_text()
    for copied in re.findall(r"^COPY (.+?) \./", dockerfile, re.MULTILINE):
        for path in copied.split():
            assert (REPO / path).exists(), f"the Dockerfile copies {path}, which does not exist"


def test_compose_file_holds_no_secrets():
    text = (REPO / "docker-compose.yml").read_text()
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            if any(word in key for word in ("PASSWORD", "PWD", "SECRET", "TOKEN", "API_KEY")):
                assert str(value).startswith("${"), f"{name}.{key} is set in the file; it belongs in .env"
    assert "change-me" not in text
    example = (REPO / ".env.example").read_text()
    for variable in set(re.findall(r"\$\{([A-Z_]+)", text)):
        assert f"{variable}=" in example, f"{variable} is used by docker-compose.yml but missing from .env.example"


def test_the_image_holds_every_package_the_project_ships():
    """The Dockerfile copies each package pyproject.toml lists (a moved package must not be left out)."""
    import tomllib

    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    dockerfile = (REPO / "Dockerfile").read_text()
    copied = {path for line in re.findall(r"^COPY (.+?) \./", dockerfile, re.MULTILINE) for path in line.split()}
    missing = sorted({package.split(".")[0] for package in packages} - copied)
    assert missing == [], f"the Dockerfile does not copy {missing}"
    compiled = re.search(r"compileall -q (.+?) worker\.py", dockerfile)
    assert compiled and set(compiled.group(1).split()) >= {package for package in packages if package != "scenarios"}
