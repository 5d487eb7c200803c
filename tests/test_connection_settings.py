"""Workers and the CLI connect with Temporal's standard client environment configuration."""

from __future__ import annotations

import pytest

from runtime.settings import Settings
from workflows.journey_client import connect_config

TEMPORAL_VARIABLES = (
    "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE", "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in TEMPORAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no user config file


def test_defaults_to_a_local_server():
    assert connect_config(Settings.from_env()) == {"target_host": "localhost:7233", "namespace": "default"}


def test_temporal_cloud_with_an_api_key(monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "leads.a1b2c.tmprl.cloud:7233")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "leads.a1b2c")
    monkeypatch.setenv("TEMPORAL_API_KEY", "key-123")
    config = connect_config(Settings.from_env())
    assert config["target_host"] == "leads.a1b2c.tmprl.cloud:7233"
    assert config["namespace"] == "leads.a1b2c"
    assert config["api_key"] == "key-123"
    assert config["tls"]  # an API key implies TLS


def test_mutual_tls_from_certificate_files(monkeypatch, tmp_path):
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_bytes(b"CERT")
    key.write_bytes(b"KEY")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", str(cert))
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_KEY_PATH", str(key))
    tls = connect_config(Settings.from_env())["tls"]
    assert (tls.client_cert, tls.client_private_key) == (b"CERT", b"KEY")


def test_profile_from_the_config_file(monkeypatch, tmp_path):
    config_file = tmp_path / "temporal.toml"
    config_file.write_text('[profile.prod]\naddress = "prod.example:7233"\nnamespace = "leads-prod"\n')
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(config_file))
    monkeypatch.setenv("TEMPORAL_PROFILE", "prod")
    config = connect_config(Settings.from_env())
    assert (config["target_host"], config["namespace"]) == ("prod.example:7233", "leads-prod")
