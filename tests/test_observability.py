"""A real worker process, scraped by a real Prometheus (Debian package), on the dev server.

The worker runs as ``python worker.py`` with its metrics on a loopback port; Prometheus
runs with the repository's own config (targets pointed at loopback) and alert rules. A
few journeys later, a business metric's value is read back through Prometheus' HTTP API,
and every metric family the worker serves must be on the ``leadflow metrics names`` list.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from temporalio.client import WorkflowFailureError

from leadflow.actions import Accept
from leadflow.journey import Stage
from leadflow.kpis import BUSINESS_METRICS
from runtime.settings import REPO_ROOT
from tests.journey_helpers import hot_lead, wait_for
from tests.metrics_scrape import Scrape
from tests.test_deploy import alert_expressions, dashboard_queries, names_used
from tests.test_dev_server import worker_env
from workflows.dev_server import free_port
from workflows.journey_client import act, journey_handle, submit_lead
from workflows.telemetry import metric_names

pytestmark = pytest.mark.devserver


def _wait(check, what: str, timeout: float = 60.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as error:  # not up yet
            last = error
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def _start_prometheus(tmp_path: Path, worker_address: str) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: install Debian's prometheus package (apt-get install prometheus), as .ci/run does"
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(REPO_ROOT / "deploy" / "prometheus" / "alert-rules.yml")]
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [worker_address]}]}
        for job in config["scrape_configs"]
        if job["job_name"] == "leadflow-worker"
    ]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address={address}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"),
    )
    _wait(lambda: urllib.request.urlopen(f"http://{address}/-/ready", timeout=2).status == 200, "Prometheus to be ready")
    return process, address


def _query(prometheus: str, promql: str) -> list[dict]:
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


async def test_prometheus_scrapes_business_and_sdk_metrics_from_a_worker(dev_server, dev_client, tmp_path):
    queue = f"obs-{uuid.uuid4().hex[:8]}"
    worker_address = f"127.0.0.1:{free_port()}"
    env = worker_env(dev_server, queue, tmp_path, LEADFLOW_METRICS_ADDRESS=worker_address, LEADFLOW_METRICS_REFRESH_SECONDS="1")
    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    prometheus, prometheus_address = _start_prometheus(tmp_path, worker_address)
    emails = [f"obs{n}-{queue}@lumbergh-industries.io" for n in range(3)]
    try:
        _wait(lambda: Scrape.of(worker_address).text, "the worker's /metrics")
        print(f"injected: 3 hot leads and one undecodable journey on task queue {queue}")
        lead_ids = []
        for email in emails:
            submitted = await submit_lead(dev_client, hot_lead(email, first_name="Bill", company="Initech"), queue)
            lead_ids.append(submitted.lead_id)
        owners = []
        for lead_id in lead_ids:
            owners.append((await wait_for(dev_client, lead_id, lambda v: v.stage is Stage.ASSIGNED, timeout=30)).owner_id)
        await act(dev_client, lead_ids[0], Accept(by=owners[0]))

        # A journey whose input cannot be decoded fails its workflow task (and is then terminated).
        broken = await dev_client.start_workflow("LeadJourney", "not a journey input", id=f"broken-{queue}", task_queue=queue)
        _wait(lambda: Scrape.of(worker_address).total("temporal_workflow_task_execution_failed_total", task_queue=queue) >= 1,
              "a failed workflow task to be counted")
        await broken.terminate("test finished")
        with pytest.raises(WorkflowFailureError):
            await broken.result()

        # Prometheus has the business metric, with the exact value.
        assigned = f'sum(leadflow_stage_entries_total{{task_queue="{queue}",stage="ASSIGNED"}})'
        result = _wait(lambda: [r for r in _query(prometheus_address, assigned) if float(r["value"][1]) == 3],
                       "Prometheus to report 3 assigned leads")
        print(f"verified through Prometheus: {assigned} = {result[0]['value'][1]}")
        open_accepted = _wait(
            lambda: _query(prometheus_address, 'sum(max by (stage, team) (leadflow_open_leads{stage="ACCEPTED"}))'),
            "the open-leads gauge in Prometheus",
        )
        assert float(open_accepted[0]["value"][1]) >= 1
        up = _query(prometheus_address, 'up{job="leadflow-worker"}')
        assert [float(r["value"][1]) for r in up] == [1.0]

        # Everything the worker serves is on the published list; our business metrics are all there.
        served = Scrape.of(worker_address)
        families = served.families()
        unlisted = sorted(set(families) - set(metric_names()))
        assert unlisted == [], f"the worker serves metrics missing from `leadflow metrics names`: {unlisted}"
        journey_metrics = {"leadflow_stage_entries_total", "leadflow_stage_conversions_total", "leadflow_open_leads",
                           "leadflow_policy_info", "leadflow_waiting_line_leads", "leadflow_waiting_line_oldest_seconds"}
        assert journey_metrics <= set(families)
        assert {spec.name for spec in BUSINESS_METRICS} <= set(metric_names())
        sdk_used = {name for name in names_used(dashboard_queries() + alert_expressions()) if name.startswith("temporal_")}
        sdk_used = {name.removesuffix("_bucket") for name in sdk_used}
        assert sdk_used and sdk_used <= set(families), f"never served: {sorted(sdk_used - set(families))}"
        for family, kind in families.items():
            if family.endswith("_total"):
                assert kind == "counter", family
            if family.endswith("_seconds"):  # a duration: a histogram, or a gauge of one (the longest wait in line)
                assert kind in ("histogram", "gauge"), family
        for email in emails:
            assert email not in served.text and "Initech" not in served.text and "Bill" not in served.text
    finally:
        for lead_id in lead_ids if "lead_ids" in locals() else []:
            try:
                await journey_handle(dev_client, lead_id).terminate("test finished")
            except Exception:
                pass
        prometheus.terminate()
        prometheus.wait(timeout=30)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert f"metrics on http://{worker_address}/metrics" in output
    assert "worker stopped" in output
    for email in emails:
        assert email not in output
    assert "Initech" not in output
