"""No valid request can jam a journey, and nothing that goes wrong leaks personal data.

Two valid submissions of one person, custom fields ``a0..a49`` then ``b0..b49`` (PII in the
field names and values), through a real ``leadflow api`` and a real worker on the dev
server, with payload encryption on. Under the default policy (``keep_latest``) the journey
merges them and keeps answering GETs and actions and processing events; under ``refuse``
the API answers 422 and nothing reaches the journey. Afterwards no worker or API log line
and no byte of raw history (read without the codec) holds the personal data, and the
journey's history has no failed workflow task.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import yaml
from temporalio.client import Client

from api.intake import held_custom_fields
from leadflow.lead import CustomFieldsOverflow
from runtime.settings import DEFAULT_POLICY, read_yaml_file
from tests.api_stack import INTAKE, READER, REP, start_stack

CODEC_KEYS = "jam:" + base64.b64encode(bytes(range(32))).decode()
RUN = uuid.uuid4().hex[:8]
EMAIL = f"jane.doe.{RUN}@private.example"
PHONE = "+1 202 555 0199"
FIRST, LAST = "Janelle", f"Privatova{RUN}"
SECRETS = [EMAIL, f"jane.doe.{RUN}", PHONE, "202 555 0199", LAST]


def custom(prefix: str, count: int = 50) -> dict[str, str]:
    return {f"{prefix}{i} {EMAIL}": f"{PHONE} / {FIRST} {LAST} #{i}" for i in range(count)}


def person(email: str, fields: dict[str, str]) -> dict:
    return {"email": email, "first_name": FIRST, "last_name": LAST, "phone": PHONE, "title": "VP Sales",
            "company_size": 500, "country": "US", "source": "demo_request", "custom": fields}


@pytest.fixture(scope="module")
def stacks(dev_server, tmp_path_factory):
    """A keep_latest (default policy) stack and a refuse stack, started side by side."""
    folder = tmp_path_factory.mktemp("jam")
    refusing = read_yaml_file(DEFAULT_POLICY)
    refusing["intake"] = {"custom_fields_overflow": CustomFieldsOverflow.REFUSE.value}
    (folder / "refuse").mkdir()
    (folder / "refuse" / "policy.yaml").write_text(yaml.safe_dump(refusing))
    (folder / "latest").mkdir()
    env = {"LEADFLOW_CODEC_KEYS": CODEC_KEYS}
    with ThreadPoolExecutor(2) as pool:
        latest = pool.submit(start_stack, dev_server, folder / "latest", f"jam-latest-{RUN}", env)
        refuse = pool.submit(start_stack, dev_server, folder / "refuse", f"jam-refuse-{RUN}",
                             {**env, "LEADFLOW_POLICY": str(folder / "refuse" / "policy.yaml")})
        running = {"latest": latest.result(), "refuse": refuse.result()}
    yield running
    for stack in running.values():
        stack.stop()


def wait_view(http, lead_id: str, done, what: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/v1/leads/{lead_id}")
        assert response.status_code == 200, response.text  # a jammed journey answers 500
        if done(response.json()):
            return response.json()
        assert time.monotonic() < deadline, f"{what} never happened: {response.text}"
        time.sleep(0.1)


def merges(view: dict) -> list[dict]:
    return [entry["detail"] for entry in view["log"] if entry["kind"] == "merged"]


async def codec_client(dev_server, monkeypatch) -> Client:
    from workflows.journey_client import connect

    monkeypatch.setenv("LEADFLOW_CODEC_KEYS", CODEC_KEYS)
    return await connect(target_host=dev_server.address)


async def raw_histories(dev_server, workflow_id: str) -> list[dict]:
    """Every run's history as anyone with server access sees it: no codec."""
    plain = await Client.connect(dev_server.address)
    runs = [execution.run_id async for execution in plain.list_workflows(f"WorkflowId = '{workflow_id}'")]
    return [json.loads((await plain.get_workflow_handle(workflow_id, run_id=run).fetch_history()).to_json()) for run in runs]


def failures(node) -> list[dict]:
    """Every failure object anywhere in a history (task failures, update outcomes, causes)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("failure", "cause") and isinstance(value, dict):
                found.append(value)
            found.extend(failures(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(failures(item))
    return found


def assert_no_secrets(text: str, where: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"{where} holds {leaked}"


def test_failures_reach_temporal_encrypted_when_the_codec_is_on(monkeypatch):
    """Message and stack trace of a failure travel in its encoded attributes, through the codec."""
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    from runtime.codec import ENCODING
    from runtime.converter import journey_data_converter

    monkeypatch.setenv("LEADFLOW_CODEC_KEYS", CODEC_KEYS)
    converter = journey_data_converter()
    try:
        raise ApplicationError(f"not applied: {EMAIL}", type="DataError")
    except ApplicationError as error:
        failure = Failure()
        asyncio.run(converter.encode_failure(error, failure))
    assert failure.message == "Encoded failure" and failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    assert_no_secrets(failure.SerializeToString().decode("latin-1"), "the encoded failure")
    decoded = asyncio.run(converter.decode_failure(failure))
    assert decoded.message == f"not applied: {EMAIL}" and "test_jam.py" in decoded.failure.stack_trace


@pytest.mark.devserver
async def test_a_pair_over_the_cap_merges_and_the_journey_keeps_working(stacks, dev_server, monkeypatch):
    stack = stacks["latest"]
    with stack.client(INTAKE) as intake, stack.client(REP) as rep, stack.client(READER) as reader:
        first = intake.post("/v1/leads", json=person(EMAIL, custom("a")))
        second = intake.post("/v1/leads", json=person(EMAIL.upper(), custom("b")))
        assert first.status_code == second.status_code == 201, second.text
        lead_id = first.json()["lead_id"]
        assert second.json()["lead_id"] == lead_id

        view = wait_view(reader, lead_id, lambda v: v["submissions"] == 2 and v["stage"] == "ASSIGNED", "the merge")
        assert merges(view)[-1]["custom_fields_dropped"] == 50

        scored = intake.post(f"/v1/leads/{lead_id}/events", json={"kind": "pricing_page", "at": datetime.now(timezone.utc).isoformat()})
        assert scored.status_code == 202
        wait_view(reader, lead_id, lambda v: v["score"] >= view["score"] + 9, "the later event")
        accepted = rep.post(f"/v1/leads/{lead_id}/actions", json={"type": "accept", "by": view["owner_id"]})
        assert accepted.status_code == 200 and accepted.json()["stage"] == "ACCEPTED", accepted.text
        third = intake.post("/v1/leads", json=person(EMAIL, custom("c", 10)))
        assert third.status_code == 201
        view = wait_view(reader, lead_id, lambda v: v["submissions"] == 3, "the third submission")
        assert merges(view)[-1]["custom_fields_dropped"] == 10 and view["stage"] == "ACCEPTED"

    client = await codec_client(dev_server, monkeypatch)
    held = await held_custom_fields(client, lead_id, CustomFieldsOverflow.KEEP_LATEST)
    assert list(held) == list(custom("b"))[10:] + list(custom("c", 10))  # keep_latest: the oldest go first
    await check_nothing_leaked(stack, dev_server, first.json()["workflow_id"], second.text + third.text)


@pytest.mark.devserver
async def test_under_refuse_the_api_answers_422_and_nothing_reaches_the_journey(stacks, dev_server, monkeypatch):
    stack = stacks["refuse"]
    email = f"refused.{EMAIL}"
    with stack.client(INTAKE) as intake, stack.client(REP) as rep, stack.client(READER) as reader:
        created = intake.post("/v1/leads", json=person(email, custom("a")))
        assert created.status_code == 201, created.text
        lead_id, workflow_id = created.json()["lead_id"], created.json()["workflow_id"]
        view = wait_view(reader, lead_id, lambda v: v["stage"] == "ASSIGNED", "the assignment")

        refused = intake.post("/v1/leads", json=person(email, custom("b")))
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "custom_fields_overflow" and "holds 50 custom fields" in error["message"]
        assert error["problems"] == [{"at": "body.custom", "message": "at most 50 custom fields per lead"}]
        signals = sum(1 for history in await raw_histories(dev_server, workflow_id) for event in history["events"]
                      if event.get("workflowExecutionSignaledEventAttributes", {}).get("signalName") == "submit")
        assert signals == 1  # the refused submission was never signalled

        updated = intake.post("/v1/leads", json=person(email, {key: "updated" for key in custom("a")}))
        assert updated.status_code == 201, updated.text  # the same 50 fields again: no overflow
        view = wait_view(reader, lead_id, lambda v: v["submissions"] == 2, "the second submission")
        assert "custom_fields_dropped" not in merges(view)[-1]
        accepted = rep.post(f"/v1/leads/{lead_id}/actions", json={"type": "accept", "by": view["owner_id"]})
        assert accepted.status_code == 200, accepted.text

    client = await codec_client(dev_server, monkeypatch)
    held = await held_custom_fields(client, lead_id)
    assert held == {key: "updated" for key in custom("a")}
    await check_nothing_leaked(stack, dev_server, workflow_id, refused.text)


async def check_nothing_leaked(stack, dev_server, workflow_id: str, responses: str) -> None:
    histories = await raw_histories(dev_server, workflow_id)
    await asyncio.sleep(0.5)  # let the processes flush their logs
    assert_no_secrets(stack.log_text(), "the worker and API logs")
    assert_no_secrets(json.dumps(histories), "the raw history")
    assert_no_secrets(responses, "the API's answers")
    kinds = [event["eventType"] for history in histories for event in history["events"]]
    assert "EVENT_TYPE_WORKFLOW_TASK_FAILED" not in kinds, "a workflow task failed"
    for failure in failures(histories):
        assert failure.get("message") == "Encoded failure", f"a failure in clear: {failure}"
