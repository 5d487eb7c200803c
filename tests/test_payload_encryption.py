"""PII encrypted inside Temporal histories (AES-GCM codec), readable only through the codec endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import uuid

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from runtime.codec import CodecKeyError, EncryptionCodec, new_key, parse_keys
from runtime.settings import REPO_ROOT
from tests.api_stack import CODEC, INTAKE, READER, start_stack

OLD_KEY, NEW_KEY = new_key(), new_key()
UI_ORIGIN = "http://localhost:8233"


def test_codec_round_trip_rotation_and_refusals():
    old = EncryptionCodec(parse_keys(f"k1:{OLD_KEY}", "test"))
    rotated = EncryptionCodec(parse_keys(f"k2:{NEW_KEY},k1:{OLD_KEY}", "test"))
    payload = Payload(metadata={"encoding": b"json/plain"}, data=b'{"email": "ada@example.com"}')
    sealed = old.encrypt(payload)
    assert b"ada@example.com" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert rotated.decrypt(sealed) == payload  # old data still opens after rotation
    assert rotated.encrypt(payload).metadata["encryption-key-id"] == b"k2"  # new data uses the new key
    with pytest.raises(CodecKeyError, match="k2"):
        old.decrypt(rotated.encrypt(payload))
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(Exception):
        old.decrypt(tampered)
    assert old.decrypt(payload) == payload  # unencrypted payloads (from before) pass through
    for text, problem in (("nokey", "without an id"), ("k:!!!", "base64"), (f"k:{base64.b64encode(b'short').decode()}", "bytes"),
                          (f"k:{OLD_KEY},k:{NEW_KEY}", "unique")):
        with pytest.raises(CodecKeyError, match=problem):
            parse_keys(text, "test")


@pytest.fixture(scope="module")
def encrypted_stack(dev_server, tmp_path_factory):
    extra = {"LEADFLOW_CODEC_KEYS": f"k2:{NEW_KEY},k1:{OLD_KEY}", "LEADFLOW_CODEC_CORS_ORIGINS": UI_ORIGIN}
    running = start_stack(dev_server, tmp_path_factory.mktemp("encrypted"), f"enc-{uuid.uuid4().hex[:8]}", extra)
    yield running
    running.stop()


@pytest.mark.devserver
def test_histories_hold_no_readable_pii_and_the_codec_endpoint_decrypts(dev_server, encrypted_stack):
    email = f"{uuid.uuid4().hex[:8]}@secret-corp.io"
    body = {"email": email, "first_name": "Radia", "last_name": "Perlman", "phone": "+1 415 555 0100",
            "title": "VP Sales", "company_size": 500, "country": "US", "source": "demo_request"}
    with encrypted_stack.client(INTAKE) as http:
        created = http.post("/v1/leads", json=body)
    assert created.status_code == 201, created.text
    workflow_id = created.json()["workflow_id"]
    with encrypted_stack.client(READER) as http:  # the API (and the worker) read through the codec
        for _ in range(100):
            view = http.get(f"/v1/leads/{workflow_id}")
            if view.status_code == 200 and view.json()["stage"] == "ASSIGNED":
                break
            time.sleep(0.1)
    assert view.json()["stage"] == "ASSIGNED", view.text

    async def raw_history() -> dict:
        plain = await Client.connect(dev_server.address)  # no codec: what anyone with server access sees
        history = await plain.get_workflow_handle(workflow_id).fetch_history()
        return json.loads(history.to_json())

    raw = asyncio.run(raw_history())
    text = json.dumps(raw)
    for secret in (email, "Radia", "Perlman", "555 0100"):
        assert secret not in text and base64.b64encode(secret.encode()).decode() not in text
    started = raw["events"][0]["workflowExecutionStartedEventAttributes"]
    signal = next(e for e in raw["events"] if "workflowExecutionSignaledEventAttributes" in e)
    payload = signal["workflowExecutionSignaledEventAttributes"]["input"]["payloads"][0]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    assert base64.b64decode(payload["metadata"]["encryption-key-id"]) == b"k2"
    assert started["input"]["payloads"][0]["metadata"]["encoding"] == payload["metadata"]["encoding"]

    # The Web UI's codec endpoint: decrypts for a codec token, from the allowed origin only.
    with encrypted_stack.client(CODEC) as http:
        decoded = http.post("/codec/decode", json={"payloads": [payload]}, headers={"Origin": UI_ORIGIN, "X-Namespace": "default"})
        assert decoded.status_code == 200, decoded.text
        assert decoded.headers["access-control-allow-origin"] == UI_ORIGIN
        plain = base64.b64decode(decoded.json()["payloads"][0]["data"]).decode()
        assert email in plain and "Radia" in plain
        preflight = http.options("/codec/decode", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert preflight.headers.get("access-control-allow-origin") != "https://evil.example"
        encoded = http.post("/codec/encode", json=decoded.json())
        assert encoded.status_code == 200 and email not in encoded.text
    with encrypted_stack.client(READER) as http:
        assert http.post("/codec/decode", json={"payloads": [payload]}).status_code == 403
    with encrypted_stack.client() as http:
        assert http.post("/codec/decode", json={"payloads": [payload]}).status_code == 401

    # The replayer reads encrypted histories with the same keys.
    env = {**encrypted_stack.env}
    replayed = subprocess.run([sys.executable, "-m", "cli.main", "replay", "--workflow-id", workflow_id], env=env,
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert replayed.returncode == 0 and "1 ok" in replayed.stdout, replayed.stdout + replayed.stderr
    without_keys = {key: value for key, value in env.items() if key != "LEADFLOW_CODEC_KEYS"}
    refused = subprocess.run([sys.executable, "-m", "cli.main", "replay", "--workflow-id", workflow_id],
                             env=without_keys, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    for secret in (email, "Radia", "Perlman"):
        assert secret not in encrypted_stack.log_text()
