"""``leadflow setup`` on a Temporal server that has never heard of our search attributes.

The dev server here is started as it ships (no ``--search-attribute``), like a self-hosted
cluster or a fresh namespace; each test works on a namespace of its own.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.service import RPCError, RPCStatusCode

from runtime.settings import REPO_ROOT, Settings
from tests.test_dev_server import _run_cli, unique, worker_env
from workflows import search_attributes as sa
from workflows.dev_server import DevServer, free_port
from workflows.journey_client import OperatorApiUnavailable, connect, register_search_attributes

pytestmark = pytest.mark.devserver

LEAD = {"email": "ada@corp.io", "title": "VP Sales", "company_size": 500, "industry": "software",
        "country": "US", "source": "demo_request"}
NAMESPACES = ("before-setup", "worker-before-setup", "setup", "wrong-type", "cloud")


class PlainDevServer(DevServer):
    """``temporal server start-dev`` without our search attributes, with a few extra namespaces."""

    def command(self) -> list[str]:
        args = super().command()
        while "--search-attribute" in args:
            at = args.index("--search-attribute")
            del args[at : at + 2]
        return args + [flag for namespace in NAMESPACES for flag in ("--namespace", namespace)]


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("temporal-plain")
    server = PlainDevServer(folder, port=free_port(), ui_port=None, log_path=folder / "temporal.log")
    server.start()
    yield server
    server.stop()


def env_for(server, namespace: str, tmp_path) -> dict[str, str]:
    # A real key, so the worker's only stderr line is the one under test (no development-key warning).
    return worker_env(server, unique("setup"), tmp_path, TEMPORAL_NAMESPACE=namespace, LEADFLOW_ID_KEY="k" * 32)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command that failed cleanly."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_cli_without_search_attributes_says_run_setup(plain_server, tmp_path):
    env = env_for(plain_server, "before-setup", tmp_path)
    submitted = _run_cli("lead", "submit", "-", env=env, stdin=json.dumps(LEAD))
    assert one_line(submitted) == (
        "error: namespace 'before-setup' has no search attribute LeadStage: run `leadflow setup` (once per namespace)"
    )
    listed = _run_cli("leads", "list", "--stage", "mql", env=env)
    assert "run `leadflow setup`" in one_line(listed)


def test_worker_without_search_attributes_refuses_in_one_line(plain_server, tmp_path):
    worker = subprocess.run(
        [sys.executable, "worker.py"], cwd=REPO_ROOT, env=env_for(plain_server, "worker-before-setup", tmp_path),
        capture_output=True, text=True, timeout=60,
    )
    assert one_line(worker) == (
        "error: namespace 'worker-before-setup' has no search attributes LeadStage, LeadTier, OwnerId, SlaDueAt: "
        "run `leadflow setup` (once per namespace)"
    )
    assert worker.stdout == ""


def test_setup_is_idempotent_and_then_leads_run(plain_server, tmp_path):
    env = env_for(plain_server, "setup", tmp_path)
    first = _run_cli("setup", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "namespace 'setup': added LeadStage (Keyword), LeadTier (Keyword), OwnerId (Keyword), SlaDueAt (Datetime)"
    ]
    again = _run_cli("setup", env=env)
    assert again.returncode == 0, again.stderr
    assert "added" not in again.stdout and "already registered LeadStage (Keyword)" in again.stdout

    as_json = subprocess.run(
        f"{sys.executable} -m cli.main setup --json | {sys.executable} -m json.tool",
        shell=True, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"namespace": "setup", "added": [], "existing": list(sa.TYPES)}

    worker = subprocess.Popen(
        [sys.executable, "worker.py"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        submitted = _run_cli("lead", "submit", "-", "--json", env=env, stdin=json.dumps(LEAD))
        assert submitted.returncode == 0, submitted.stderr
        lead_id = json.loads(submitted.stdout)["lead_id"]
        for _ in range(60):
            shown = _run_cli("lead", "show", lead_id, "--json", env=env)
            if shown.returncode == 0 and json.loads(shown.stdout)["stage"] == "ASSIGNED":
                break
        else:
            raise AssertionError(f"the lead was never assigned: {shown.stdout} {shown.stderr}")
        listed = _run_cli("leads", "list", "--query", f"WorkflowId = 'lead-{lead_id}'", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "search attributes not checked" not in output


async def test_setup_refuses_an_attribute_of_another_type(plain_server, tmp_path):
    client = await connect(Settings(), target_host=plain_server.address, namespace="wrong-type")
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace="wrong-type", search_attributes={"LeadStage": IndexedValueType.INDEXED_VALUE_TYPE_TEXT},
    ))
    refused = _run_cli("setup", env=env_for(plain_server, "wrong-type", tmp_path))
    assert one_line(refused) == (
        "error: namespace 'wrong-type' has search attributes of the wrong type (LeadStage is Text, not Keyword): "
        "remove them (`temporal operator search-attribute remove -n wrong-type --name LeadStage`) or use another namespace"
    )


@pytest.mark.parametrize("status", [RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED], ids=lambda s: s.name)
async def test_without_the_operator_api_setup_points_to_cloud_and_the_worker_only_warns(
    plain_server, status, monkeypatch, caplog
):
    """Temporal Cloud's refusal, which no local server gives, stands in for the real answer of the operator calls."""
    from worker import _require_search_attributes

    client = await connect(Settings(), target_host=plain_server.address, namespace="cloud")

    async def refused(*_args, **_kwargs):
        raise RPCError("Request unauthorized.", status, b"")

    monkeypatch.setattr(client.operator_service, "add_search_attributes", refused)
    with pytest.raises(OperatorApiUnavailable, match=f"does not let this client add search attributes \\({status.name}"):
        await register_search_attributes(client)  # listing works, adding is refused

    monkeypatch.setattr(client.operator_service, "list_search_attributes", refused)
    with pytest.raises(OperatorApiUnavailable) as error:
        await register_search_attributes(client)
    message = str(error.value)
    assert "\n" not in message and f"list search attributes ({status.name}, as on Temporal Cloud)" in message
    assert message.endswith(
        "add them in the Cloud UI or with `tcld namespace search-attributes add -n cloud "
        "--sa LeadStage=Keyword --sa LeadTier=Keyword --sa OwnerId=Keyword --sa SlaDueAt=Datetime`"
    )

    with caplog.at_level(logging.WARNING, logger="leadflow.worker"):
        await _require_search_attributes(client)  # no SystemExit: the worker starts
    assert [record.getMessage() for record in caplog.records] == [f"search attributes not checked: {message}"]
