"""The API probed from outside as a hostile or unlucky client would: racing requests,
absurd event times and weights, retried events, Temporal killed or frozen, idle and slow
connections. A real worker and a real ``leadflow api`` process each time.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.client import HTTPConnection

import httpx
import pytest

from api.connections import BODY_SECONDS, HEADER_SECONDS
from runtime.id_key import lead_id_from_reference
from tests.api_stack import EVERYTHING, INTAKE, READER, start_stack
from tests.test_api import assert_error, lead_body, wait_stage
from workflows.dev_server import DevServer, free_port

pytestmark = pytest.mark.devserver

UI_ORIGIN = "http://localhost:8233"


@pytest.fixture(scope="module")
def stack(dev_server, tmp_path_factory):
    running = start_stack(dev_server, tmp_path_factory.mktemp("api-races"), f"races-{uuid.uuid4().hex[:8]}",
                          {"LEADFLOW_CODEC_CORS_ORIGINS": UI_ORIGIN})
    yield running
    running.stop()


def fire(stack, token: str, requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    """Send every request at once (one connection each) and return the responses in order."""

    async def all_at_once() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                     limits=httpx.Limits(max_connections=len(requests))) as http:
            return await asyncio.gather(*(http.request(method, path, **kwargs) for method, path, kwargs in requests))

    return asyncio.run(all_at_once())


def now_iso(offset: timedelta = timedelta()) -> str:
    return (datetime.now(timezone.utc) + offset).isoformat()


# -- 1. idempotency is atomic -------------------------------------------------------------

def test_concurrent_posts_with_one_key_and_one_body_have_one_effect(stack):
    body, key = lead_body(), f"order-{uuid.uuid4().hex[:8]}"
    responses = fire(stack, INTAKE, [("POST", "/v1/leads", {"json": body, "headers": {"Idempotency-Key": key}})] * 20)
    assert [response.status_code for response in responses] == [201] * 20, [r.text for r in responses]
    assert len({response.text for response in responses}) == 1
    assert sum(response.headers.get("Idempotent-Replayed") != "true" for response in responses) == 1
    view = wait_stage(stack, lead_id_from_reference(body["email"]), "ASSIGNED")
    assert view["submissions"] == 1  # one signal reached the journey, not twenty merges


def test_concurrent_posts_with_one_key_and_different_bodies_create_one_lead(stack):
    key = f"order-{uuid.uuid4().hex[:8]}"
    bodies = [lead_body() for _ in range(20)]
    responses = fire(stack, INTAKE, [("POST", "/v1/leads", {"json": body, "headers": {"Idempotency-Key": key}}) for body in bodies])
    created = [body for body, response in zip(bodies, responses) if response.status_code == 201]
    assert len(created) == 1, [response.status_code for response in responses]
    for response in responses:
        if response.status_code != 201:
            assert_error(response, 409, "Idempotency-Key")
    with stack.client(READER) as reader:
        found = [body for body in bodies if reader.get(f"/v1/leads/{lead_id_from_reference(body['email'])}").status_code != 404]
    assert found == created
    with stack.client(INTAKE) as intake:  # the winner's own retry gets its answer, not a 409
        retry = intake.post("/v1/leads", json=created[0], headers={"Idempotency-Key": key})
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"


def test_idempotency_keys_are_scoped_to_the_client_token(stack):
    key, first, second = "shared-key-1", lead_body(), lead_body()
    with stack.client(INTAKE) as one, stack.client(EVERYTHING) as other:
        assert one.post("/v1/leads", json=first, headers={"Idempotency-Key": key}).status_code == 201
        answer = other.post("/v1/leads", json=second, headers={"Idempotency-Key": key})
    assert answer.status_code == 201 and "Idempotent-Replayed" not in answer.headers
    assert answer.json()["lead_id"] == lead_id_from_reference(second["email"])


# -- 2 and 3. event times, weights and retries ----------------------------------------------

def test_event_times_are_bounded_and_numbers_finite(stack):
    body = lead_body(source="organic")
    with stack.client(INTAKE) as intake, stack.client(READER) as reader:
        lead_id = intake.post("/v1/leads", json=body).json()["lead_id"]
        wait_stage(stack, lead_id, "NURTURING")
        events = f"/v1/leads/{lead_id}/events"
        assert_error(intake.post(events, json={"kind": "page_view", "at": "9999-12-31T23:59:59Z"}), 422, "future")
        assert_error(intake.post(events, json={"kind": "page_view", "at": now_iso(timedelta(hours=1))}), 422, "future")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the ledger learns the lead's creation once its journey writes
            answer = intake.post(events, json={"kind": "page_view", "at": "2020-01-01T00:00:00Z"})
            if answer.status_code == 422:
                break
            time.sleep(0.2)
        assert_error(answer, 422, "before the lead existed")
        assert_error(intake.post(events, json={"kind": "demo_request", "at": now_iso(), "weight": 999}), 422, "max_event_weight")
        assert intake.post(events, json={"kind": "page_view", "at": now_iso(timedelta(seconds=30))}).status_code == 202
        for raw in (b'NaN', b'Infinity', b'-Infinity'):
            content = b'{"email": "%s", "custom": {"score": %s}}' % (lead_body()["email"].encode(), raw)
            response = intake.post("/v1/leads", content=content, headers={"Content-Type": "application/json"})
            assert_error(response, 422, "finite")
        # A demo request now still counts: nothing moved the decay reference out of reach.
        before = reader.get(f"/v1/leads/{lead_id}").json()["score"]
        assert intake.post(events, json={"kind": "demo_request", "at": now_iso()}).status_code == 202
        view = wait_stage(stack, lead_id, "ASSIGNED")
        assert view["score"] > before + 40


def test_a_retried_event_with_an_event_id_counts_once(stack):
    body = lead_body(source="organic", company_size=3, title="Intern")
    with stack.client(INTAKE) as intake, stack.client(READER) as reader:
        lead_id = intake.post("/v1/leads", json=body).json()["lead_id"]
        wait_stage(stack, lead_id, "NURTURING")
        before = reader.get(f"/v1/leads/{lead_id}").json()["score"]
        event = {"kind": "page_view", "at": now_iso(), "weight": 7.5, "event_id": "evt-42"}
        responses = fire(stack, INTAKE, [("POST", f"/v1/leads/{lead_id}/events", {"json": event})] * 5)
        assert [response.status_code for response in responses] == [202] * 5
        assert intake.post(f"/v1/leads/{lead_id}/events", json={**event, "event_id": "evt-43"}).status_code == 202
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            score = reader.get(f"/v1/leads/{lead_id}").json()["score"]
            if score >= before + 15 - 0.1:
                break
            time.sleep(0.2)
        time.sleep(1)
        score = reader.get(f"/v1/leads/{lead_id}").json()["score"]
    assert score == pytest.approx(before + 15, abs=0.1)  # evt-42 once, evt-43 once


# -- 5. status codes, connections, CORS ----------------------------------------------------

def test_a_read_right_after_creation_is_never_a_500(stack):
    with stack.client(INTAKE) as intake, stack.client(READER) as reader:
        for _ in range(10):
            lead_id = intake.post("/v1/leads", json=lead_body()).json()["lead_id"]
            response = reader.get(f"/v1/leads/{lead_id}")
            assert response.status_code in (200, 409), response.text
            if response.status_code == 409:
                assert response.headers["Retry-After"] and response.json()["error"]["code"] == "journey_not_ready"


def test_head_healthz_and_cors_only_on_the_codec_routes(stack):
    with stack.client() as http:
        head = http.head("/healthz")
        assert head.status_code == 200 and head.content == b""
        preflight = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization,content-type"}
        codec = http.options("/codec/decode", headers=preflight)
        assert codec.status_code == 200 and codec.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
        leads = http.options("/v1/leads", headers=preflight)
        assert "Access-Control-Allow-Origin" not in leads.headers
        simple = http.get("/healthz", headers={"Origin": UI_ORIGIN})
        assert "Access-Control-Allow-Origin" not in simple.headers


def _closed_after(stack, send: list[bytes], pause: float) -> tuple[float, bytes]:
    """Open a connection, send ``send`` one piece every ``pause`` seconds (then nothing), and
    return how long the server kept it open and what it answered."""
    host, port = stack.url.removeprefix("http://").split(":")
    started = time.monotonic()
    answer = b""
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        for piece in send:
            try:
                sock.sendall(piece)
            except OSError:
                break
            if select.select([sock], [], [], pause)[0]:  # the server answered or closed: stop sending
                break
        sock.settimeout(60)
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError:
            pass
    return time.monotonic() - started, answer


def test_idle_slow_header_and_slow_body_connections_time_out(stack):
    trickled_headers = [bytes([byte]) for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200]
    # The body trickles in a byte a second: each byte is in time, the whole body is not.
    stalled_body = [b"POST /v1/leads HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Authorization: Bearer " + INTAKE.encode() + b"\r\nContent-Length: 100\r\n\r\n"] + [b" "] * 30
    with ThreadPoolExecutor(3) as pool:
        idle = pool.submit(_closed_after, stack, [], 0)
        slow_headers = pool.submit(_closed_after, stack, trickled_headers, 0.5)
        slow_body = pool.submit(_closed_after, stack, stalled_body, 1.0)
        (idle_s, _), (slow_headers_s, _), (slow_body_s, body_answer) = idle.result(), slow_headers.result(), slow_body.result()
    assert idle_s < HEADER_SECONDS + 3, idle_s
    assert slow_headers_s < HEADER_SECONDS + 3, slow_headers_s
    assert slow_body_s < BODY_SECONDS + 3 and body_answer.startswith(b"HTTP/1.1 408"), (slow_body_s, body_answer[:200])


# -- 4. Temporal down -----------------------------------------------------------------------

def _timed(connection: HTTPConnection, method: str, path: str, body: bytes | None = None,
           token: str = EVERYTHING) -> tuple[float, int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.monotonic()
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return time.monotonic() - started, response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_temporal_down_or_frozen_is_a_fast_503_on_a_kept_connection(tmp_path):
    folder = tmp_path / "temporal"
    port = free_port()
    server = DevServer(folder, port=port, ui_port=None, log_path=tmp_path / "temporal.log").start()
    stack = start_stack(server, tmp_path, f"down-{uuid.uuid4().hex[:8]}")
    try:
        with stack.client(EVERYTHING) as http:
            alive = lead_body()
            assert http.post("/v1/leads", json=alive).status_code == 201
            alive_id = lead_id_from_reference(alive["email"])
            wait_stage(stack, alive_id, "ASSIGNED")
        host, api_port = stack.url.removeprefix("http://").split(":")
        kept = HTTPConnection(host, int(api_port), timeout=30)  # every answer on it must leave it open
        event = b'{"kind": "page_view", "at": "%s"}' % now_iso().encode()
        lost = [lead_body() for _ in range(2)]
        routes = [("GET", f"/v1/leads/{alive_id}", None), ("GET", "/v1/leads?stage=ASSIGNED", None),
                  ("POST", f"/v1/leads/{alive_id}/events", event),
                  ("POST", f"/v1/leads/{alive_id}/actions", b'{"type": "accept", "by": "rep-ana"}'),
                  *[("POST", "/v1/leads", f'{{"email": "{body["email"]}"}}'.encode()) for body in lost]]
        for phase in ("killed", "frozen"):
            if phase == "killed":
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()
            else:
                os.killpg(server.process.pid, signal.SIGSTOP)
            with ThreadPoolExecutor(len(routes) + 1) as pool:
                each = [pool.submit(_timed, HTTPConnection(host, int(api_port), timeout=30), *route) for route in routes]
                on_kept = pool.submit(lambda: [_timed(kept, *route) for route in (routes[0], routes[2], ("GET", "/readyz", None))])
                answers = [future.result() for future in each] + on_kept.result()
            for (method, path, _), (seconds, status, headers, answer) in zip(routes + [routes[0], routes[2], ("GET", "/readyz", None)], answers):
                assert status == 503, (phase, method, path, status, answer)
                assert seconds <= 5, (phase, method, path, seconds)
                if path != "/readyz":
                    assert headers.get("retry-after"), (phase, path, headers)
            if phase == "killed":  # back on the same port and data, then frozen
                server = DevServer(folder, port=port, ui_port=None, log_path=tmp_path / "temporal.log").start()
        os.killpg(server.process.pid, signal.SIGCONT)
        # A lead answered 503 while Temporal was killed never reached it; a retry creates it once.
        with stack.client(EVERYTHING) as http:
            for body in lost:
                lead_id = lead_id_from_reference(body["email"])
                deadline = time.monotonic() + 30
                while (answer := http.post("/v1/leads", json={"email": body["email"]})).status_code == 503 \
                        and time.monotonic() < deadline:
                    time.sleep(0.5)
                assert answer.status_code == 201, answer.text
                assert wait_stage(stack, lead_id, "NURTURING")["submissions"] in (1, 2)
        log = stack.log_text()
        assert "Traceback" not in log
        assert log.count("503, Temporal did not answer") + log.count("Temporal answered") >= 2 * (len(routes) + 2)
    finally:
        try:
            os.killpg(server.process.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stack.stop()
        server.stop()


def test_a_retried_rep_action_with_an_idempotency_key_applies_once(stack):
    from tests.api_stack import REP

    with stack.client(INTAKE) as intake, stack.client(REP) as rep:
        lead_id = intake.post("/v1/leads", json=lead_body()).json()["lead_id"]
        owner = wait_stage(stack, lead_id, "ASSIGNED")["owner_id"]
        assert rep.post(f"/v1/leads/{lead_id}/actions", json={"type": "accept", "by": owner}).status_code == 200
        attempt = {"type": "attempt", "by": owner, "outcome": "no_answer"}
        headers = {"Idempotency-Key": "call-1"}
        first = rep.post(f"/v1/leads/{lead_id}/actions", json=attempt, headers=headers)
        again = rep.post(f"/v1/leads/{lead_id}/actions", json=attempt, headers=headers)
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert first.json()["attempts"] == again.json()["attempts"] == 1
        other = rep.post(f"/v1/leads/{lead_id}/actions", json=attempt, headers={"Idempotency-Key": "call-2"})
        assert other.status_code == 200 and other.json()["attempts"] == 2
