"""The HTTP API against a real worker and a real ``leadflow api`` process on the dev server.

Every bad request gets a 4xx in the one error shape, with a message naming the problem,
and leaves the ledger and Temporal exactly as they were.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, func, select

from activities.ledger_schema import idempotency_reservations, journey_events, leads
from api.openapi_file import OPENAPI_FILE, render
from runtime.id_key import lead_id_from_reference
from tests.api_stack import INTAKE, READER, REP, start_stack

pytestmark = pytest.mark.devserver


@pytest.fixture(scope="module")
def stack(dev_server, tmp_path_factory):
    running = start_stack(dev_server, tmp_path_factory.mktemp("api"), f"api-{uuid.uuid4().hex[:8]}")
    yield running
    running.stop()


def lead_body(**extra) -> dict:
    body = {"email": f"{uuid.uuid4().hex[:10]}@acme-api.io", "first_name": "Grace", "last_name": "Hopper",
            "phone": "+1 202 555 0143", "title": "VP Sales", "company": "Acme", "company_size": 500, "country": "US",
            "source": "demo_request"}
    body.update(extra)
    return body


def _counts(stack) -> tuple[int, ...]:
    engine = create_engine(stack.ledger_url)
    with engine.connect() as conn:
        counts = tuple(conn.execute(select(func.count()).select_from(table)).scalar() for table in (leads, journey_events, idempotency_reservations))
    engine.dispose()
    return counts


def written(stack) -> tuple[int, ...]:
    """Rows in the ledger (lead projections, journey events, idempotency keys), once journeys settle."""
    import time

    last = _counts(stack)
    for _ in range(50):
        time.sleep(0.2)
        now = _counts(stack)
        if now == last:
            return now
        last = now
    return last


def wait_stage(stack, lead_id: str, stage: str, tries: int = 100) -> dict:
    import time

    with stack.client(READER) as http:
        for _ in range(tries):
            response = http.get(f"/v1/leads/{lead_id}")
            if response.status_code == 200 and response.json()["stage"] == stage:
                return response.json()
            time.sleep(0.1)
    raise AssertionError(f"{lead_id} never reached {stage}: {response.status_code} {response.text}")


def assert_error(response, status: int, *words: str) -> dict:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    error = response.json()["error"]
    assert error["status"] == status and error["code"] and error["message"]
    for word in words:
        assert word.lower() in error["message"].lower() + json.dumps(error["problems"]).lower(), (word, error)
    return error


def test_health_and_the_committed_openapi_document(stack):
    with stack.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").json() == {"status": "ready"}
        served = http.get("/openapi.json").json()
    assert OPENAPI_FILE.read_text() == render(), "api/openapi.json is stale: python -m api.openapi_file"
    assert served == json.loads(OPENAPI_FILE.read_text())


def test_lead_journey_through_the_api(stack):
    body = lead_body()
    with stack.client(INTAKE) as intake, stack.client(REP) as rep, stack.client(READER) as reader:
        created = intake.post("/v1/leads", json=body)
        assert created.status_code == 201, created.text
        lead_id = created.json()["lead_id"]
        assert lead_id == lead_id_from_reference(body["email"]) and created.json()["workflow_id"] == f"lead-{lead_id}"
        local, domain = body["email"].split("@")
        merged = intake.post("/v1/leads", json={"email": f"{local.upper()}+webinar@{domain}", "source": "webinar"})
        assert merged.status_code == 201 and merged.json()["lead_id"] == lead_id

        view = wait_stage(stack, lead_id, "ASSIGNED")
        owner = view["owner_id"]
        assert intake.post(f"/v1/leads/{lead_id}/events", json={"kind": "pricing_page", "at": datetime.now(timezone.utc).isoformat()}).status_code == 202

        before = written(stack)
        wrong_stage = rep.post(f"/v1/leads/{lead_id}/actions", json={"type": "convert", "by": owner})
        assert_error(wrong_stage, 409, "convert")
        no_reason = rep.post(f"/v1/leads/{lead_id}/actions", json={"type": "disqualify", "by": owner})
        assert_error(no_reason, 422, "reason")
        assert written(stack) == before and reader.get(f"/v1/leads/{lead_id}").json()["stage"] == "ASSIGNED"

        accepted = rep.post(f"/v1/leads/{lead_id}/actions", json={"type": "accept", "by": owner})
        assert accepted.status_code == 200 and accepted.json()["stage"] == "ACCEPTED"
        listed = reader.get("/v1/leads", params={"stage": "ACCEPTED", "owner": owner})
        assert listed.status_code == 200
        assert_error(reader.get("/v1/leads", params={"stage": "HALF_DONE"}), 422, "stage")

        replay_body = lead_body()
        first = intake.post("/v1/leads", json=replay_body, headers={"Idempotency-Key": "order-17"})
        again = intake.post("/v1/leads", json=replay_body, headers={"Idempotency-Key": "order-17"})
        assert first.status_code == again.status_code == 201 and first.json() == again.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        before = written(stack)
        other = lead_body()
        conflict = intake.post("/v1/leads", json=other, headers={"Idempotency-Key": "order-17"})
        assert_error(conflict, 409, "Idempotency-Key")
        assert written(stack) == before
        assert_error(reader.get(f"/v1/leads/{lead_id_from_reference(other['email'])}"), 404, "unknown lead")


BAD_REQUESTS = [
    # (description, method, path, token, kwargs, status, words in the message)
    ("malformed JSON", "post", "/v1/leads", INTAKE, {"content": b'{"email": ', "headers": {"Content-Type": "application/json"}}, 400, ["JSON"]),
    ("wrong content type", "post", "/v1/leads", INTAKE, {"content": b"email=a@b.io", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415, ["application/json"]),
    ("binary garbage", "post", "/v1/leads", INTAKE, {"content": bytes(range(256)) * 4, "headers": {"Content-Type": "application/json"}}, 400, ["JSON"]),
    ("missing email", "post", "/v1/leads", INTAKE, {"json": {"first_name": "Ada"}}, 422, ["email"]),
    ("extra field", "post", "/v1/leads", INTAKE, {"json": lead_body(favourite_colour="teal")}, 422, ["favourite_colour"]),
    ("invalid email", "post", "/v1/leads", INTAKE, {"json": lead_body(email="not-an-email")}, 422, ["email"]),
    ("negative company size", "post", "/v1/leads", INTAKE, {"json": lead_body(company_size=-5)}, 422, ["company_size"]),
    ("absurd company size", "post", "/v1/leads", INTAKE, {"json": lead_body(company_size=10**30)}, 422, ["company_size"]),
    ("unknown source", "post", "/v1/leads", INTAKE, {"json": lead_body(source="carrier_pigeon")}, 422, ["source"]),
    ("2 MB field", "post", "/v1/leads", INTAKE, {"json": lead_body(title="x" * 2_000_000)}, 413, ["larger"]),
    ("over-long field", "post", "/v1/leads", INTAKE, {"json": lead_body(title="x" * 5000)}, 422, ["title"]),
    ("negative engagement weight", "post", f"/v1/leads/{lead_id_from_reference('x@y.io')}/events", INTAKE,
     {"json": {"kind": "page_view", "at": "2026-11-24T10:00:00Z", "weight": -1}}, 422, ["weight"]),
    ("naive timestamp", "post", f"/v1/leads/{lead_id_from_reference('x@y.io')}/events", INTAKE,
     {"json": {"kind": "page_view", "at": "2026-11-24T10:00:00"}}, 422, ["at"]),
    ("event for an unknown lead", "post", f"/v1/leads/{lead_id_from_reference('nobody@nowhere.io')}/events", INTAKE,
     {"json": {"kind": "page_view", "at": "2026-11-24T10:00:00Z"}}, 404, ["unknown lead"]),
    ("malformed lead id", "get", "/v1/leads/DROP TABLE", READER, {}, 422, ["lead_id"]),
    ("unknown lead", "get", f"/v1/leads/{lead_id_from_reference('nobody@nowhere.io')}", READER, {}, 404, ["unknown lead"]),
    ("action for an unknown lead", "post", f"/v1/leads/{lead_id_from_reference('nobody@nowhere.io')}/actions", REP,
     {"json": {"type": "accept", "by": "rep-ana"}}, 404, ["unknown lead"]),
    ("unknown action", "post", f"/v1/leads/{lead_id_from_reference('x@y.io')}/actions", REP, {"json": {"type": "teleport", "by": "rep-ana"}}, 422, ["type"]),
    ("missing token", "post", "/v1/leads", None, {"json": lead_body()}, 401, ["bearer"]),
    ("wrong token", "post", "/v1/leads", "not-a-real-token-at-all", {"json": lead_body()}, 401, ["not valid"]),
    ("under-scoped token", "post", "/v1/leads", READER, {"json": lead_body()}, 403, ["intake"]),
    ("read token acting", "post", f"/v1/leads/{lead_id_from_reference('x@y.io')}/actions", READER, {"json": {"type": "accept", "by": "rep-ana"}}, 403, ["rep"]),
    ("bad idempotency key", "post", "/v1/leads", INTAKE, {"json": lead_body(), "headers": {"Idempotency-Key": "k" * 500}}, 422, ["Idempotency-Key"]),
]


@pytest.mark.parametrize("description, method, path, token, kwargs, status, words", BAD_REQUESTS, ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_get_a_clear_4xx_and_change_nothing(stack, description, method, path, token, kwargs, status, words):
    before = written(stack)
    with stack.client(token) as http:
        response = getattr(http, method)(path, **kwargs)
    error = assert_error(response, status, *words)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert written(stack) == before, f"{description}: the ledger changed"
    print(f"injected: {description} -> {status} {error['message'][:80]}")


def test_no_pii_in_worker_or_api_logs(stack):
    body = lead_body()
    with stack.client(INTAKE) as http:
        assert http.post("/v1/leads", json=body).status_code == 201
    wait_stage(stack, lead_id_from_reference(body["email"]), "ASSIGNED")
    logs = stack.log_text()
    assert "routing lead=" in logs  # the worker did log, by lead id
    for value in (body["email"], body["first_name"], body["last_name"], body["phone"]):
        assert value not in logs


def test_a_reps_worklist_lists_their_leads_in_the_cores_order(stack):
    import time

    with stack.client(INTAKE) as intake, stack.client(REP) as rep, stack.client(READER) as reader:
        lead_ids = [intake.post("/v1/leads", json=lead_body()).json()["lead_id"] for _ in range(5)]
        views = [wait_stage(stack, lead_id, "ASSIGNED") for lead_id in lead_ids]
        owner = views[0]["owner_id"]
        mine = {view["lead_id"]: view for view in views if view["owner_id"] == owner}
        accepted = next(iter(mine))
        assert rep.post(f"/v1/leads/{accepted}/actions", json={"type": "accept", "by": owner}).status_code == 200
        expected = {accepted: ("first_attempt", "first_contact")} | {
            lead_id: ("accept", "acceptance") for lead_id in mine if lead_id != accepted}
        for _ in range(100):  # the ledger is written by the journeys' activities
            listed = reader.get(f"/v1/reps/{owner}/worklist")
            assert listed.status_code == 200, listed.text
            entries = {entry["lead_id"]: entry for entry in listed.json()["entries"]}
            if all(entries.get(lead_id, {}).get("task") == task for lead_id, (task, _) in expected.items()):
                break
            time.sleep(0.1)
        body = listed.json()
        assert body["rep_id"] == owner
        for lead_id, (_, clock) in expected.items():
            deadlines = reader.get(f"/v1/leads/{lead_id}").json()["deadlines"]
            assert datetime.fromisoformat(entries[lead_id]["due_at"]) == datetime.fromisoformat(deadlines[clock])
        dues = [datetime.fromisoformat(entry["due_at"]) for entry in body["entries"] if entry["workable"]]
        assert dues == sorted(dues)  # earliest deadline first
        assert not any(key in json.dumps(body) for key in ("Grace", "Hopper", "@acme-api.io"))  # nothing personal
        assert_error(reader.get("/v1/reps/rep-nobody/worklist"), 404, "rep-nobody")
        assert_error(reader.get("/v1/reps/DROP TABLE/worklist"), 422, "rep_id")
