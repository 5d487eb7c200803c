"""Faults: nothing is lost and nothing happens twice when workers die, the server restarts,
activities fail or the ledger goes away; routing stays fair across workers.

Loopback only, bounded in count and time. Each test prints what it injected and what it
verified; a failure names the lead.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import time as clock_time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from activities.ledger import Ledger
from activities.notifications import Notifier
from leadflow.actions import Accept, AttemptOutcome, Convert, LogAttempt, Qualify
from leadflow.journey import Clock, Stage
from runtime.settings import DEFAULT_POLICY, REPO_ROOT, Settings, load_policy_file
from tests.journey_helpers import hot_lead, next_local, skip_to
from tests.test_ledger import POSTGRES_URL
from worker import running_worker
from workflows.dev_server import DevServer, free_port
from workflows.journey_client import ActionRejected, JourneyError, act, connect, journey_handle, show, submit_lead

pytestmark = pytest.mark.faults
MANAGER = "mgr-na"


def policy_file(tmp_path: Path, **routing) -> Path:
    body = yaml.safe_load(DEFAULT_POLICY.read_text())
    body["routing"].update(routing)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def worker_process(server_address: str, queue: str, policy: Path, ledger_url: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "TEMPORAL_ADDRESS": server_address, "TEMPORAL_NAMESPACE": "default", "LEADFLOW_TASK_QUEUE": queue,
           "LEADFLOW_POLICY": str(policy), "LEADFLOW_DATABASE_URL": ledger_url,
           "LEADFLOW_METRICS_ADDRESS": f"127.0.0.1:{free_port()}"}
    return subprocess.Popen([sys.executable, "worker.py"], cwd=REPO_ROOT, env=env, stdout=open(log, "a"), stderr=subprocess.STDOUT)


RETRYABLE = (JourneyError, WorkflowUpdateRPCTimeoutOrCancelledError, RPCError)


async def accepted(client, lead_id: str, tries: int = 600) -> None:
    """Accept as the manager once the lead is assigned (retrying while routing or the server is away)."""
    for _ in range(tries):
        try:
            stage = (await show(client, lead_id)).stage
            if stage not in (Stage.NEW, Stage.NURTURING, Stage.MQL, Stage.ASSIGNED):
                return  # accepted already
            if stage is Stage.ASSIGNED:
                await act(client, lead_id, Accept(by=MANAGER))
                return
        except RETRYABLE:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"lead {lead_id} was never assigned")


async def convert(client, lead_id: str) -> None:
    """Drive an assigned lead to a conversion, as its manager."""
    await accepted(client, lead_id)
    for action in (LogAttempt(by=MANAGER, outcome=AttemptOutcome.CONNECTED), Qualify(by=MANAGER, budget=True),
                   Convert(by=MANAGER)):
        retried = False
        for _ in range(300):
            try:
                await act(client, lead_id, action)
                break
            except ActionRejected as error:
                if retried:  # the earlier try went through; its answer was lost with the connection
                    break
                raise AssertionError(f"lead {lead_id}: {error}") from None
            except RETRYABLE:  # the worker or the server is away: try again
                retried = True
                await asyncio.sleep(0.2)
    outcome = await journey_handle(client, lead_id).result()
    assert outcome.outcome == "converted", f"lead {lead_id} ended {outcome.outcome}"


def check_ledger(ledger: Ledger, lead_ids: list[str]) -> None:
    """Every lead: one assignment per step, events numbered 1..n with no gap or repeat, converted."""
    for lead_id in lead_ids:
        events = ledger.events(lead_id)
        kinds = [event["kind"] for event in events]
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1)), f"lead {lead_id}: seq {kinds}"
        assert kinds == ["created", "mql", "assigned", "accepted", "attempt", "first_contact", "qualified", "converted"], \
            f"lead {lead_id}: {kinds}"
        steps = Counter(row["step"] for row in ledger.assignments_of(lead_id))
        assert steps and all(count == 1 for count in steps.values()), f"lead {lead_id}: assignments {steps}"


async def test_sigkilled_worker_mid_flight_loses_and_duplicates_nothing(dev_server, dev_client, tmp_path):
    queue, count = f"kill-{uuid.uuid4().hex[:8]}", 220
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    policy = policy_file(tmp_path, default_capacity=200)
    log = tmp_path / "worker.log"
    first = worker_process(dev_server.address, queue, policy, ledger_url, log)
    ledger = Ledger(ledger_url)
    ledger.create_schema()
    leads = [hot_lead(f"kill{n}-{queue}@corp.io") for n in range(count)]
    gate = asyncio.Semaphore(32)

    async def submit(lead) -> str:
        async with gate:
            return (await submit_lead(dev_client, lead, queue, visibility=False)).lead_id

    lead_ids = await asyncio.gather(*(submit(lead) for lead in leads))
    while sum(1 for lead_id in lead_ids[:40] if ledger.assignments_of(lead_id)) < 10:
        await asyncio.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    routed = sum(1 for lead_id in lead_ids if ledger.assignments_of(lead_id))
    print(f"injected: SIGKILL of the worker with {count} journeys open, {count - routed} of them not yet routed")
    assert routed < count, "every journey was routed before the kill: nothing was in flight"

    second = worker_process(dev_server.address, queue, policy, ledger_url, log)
    try:
        gate = asyncio.Semaphore(48)

        async def finish(lead_id: str) -> None:
            async with gate:
                await convert(dev_client, lead_id)

        await asyncio.wait_for(asyncio.gather(*(finish(lead_id) for lead_id in lead_ids)), timeout=200)
    finally:
        second.terminate()
        second.wait(timeout=30)
    check_ledger(ledger, lead_ids)
    ledger.dispose()
    print(f"verified: {count} journeys converted after a new worker took over; one assignment per step, no event lost or repeated")


async def test_dev_server_restart_mid_flight(tmp_path):
    queue, count = "restart", 40
    server = DevServer(tmp_path / "temporal", port=free_port(), ui_port=None, log_path=tmp_path / "temporal.log")
    server.start()
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    worker = worker_process(server.address, queue, DEFAULT_POLICY, ledger_url, tmp_path / "worker.log")
    try:
        client = await connect(Settings(), target_host=server.address)
        lead_ids = [(await submit_lead(client, hot_lead(f"restart{n}@corp.io"), queue, visibility=False)).lead_id
                    for n in range(count)]
        for lead_id in lead_ids[: count // 2]:
            await accepted(client, lead_id)
        server.stop()
        print(f"injected: Temporal dev server stopped with {count} journeys open ({count // 2} accepted), restarted 2 s later")
        await asyncio.sleep(2)
        server.start()
        await asyncio.wait_for(asyncio.gather(*(convert(client, lead_id) for lead_id in lead_ids)), timeout=200)
        ledger = Ledger(ledger_url)
        check_ledger(ledger, lead_ids)
        ledger.dispose()
        print(f"verified: all {count} journeys resumed from the server's file database and converted")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.stop()


class FlakyLedger(Ledger):
    """Fails half the ledger writes while ``failing`` is set, before or after committing them."""

    def __init__(self, url: str):
        super().__init__(url)
        self.failing = threading.Event()
        self.failures = 0
        self.rng = random.Random(7)

    def apply(self, batch, policy=None):
        if self.failing.is_set() and self.rng.random() < 0.5:
            self.failures += 1
            if self.rng.random() < 0.5:
                raise ConnectionError("injected: ledger unavailable")
            super().apply(batch, policy)
            raise ConnectionError("injected: connection lost after commit")
        return super().apply(batch, policy)


class FlakyNotifier(Notifier):
    def __init__(self):
        super().__init__(None)
        self.failing = threading.Event()
        self.delivered: Counter = Counter()
        self.failures = 0
        self.rng = random.Random(11)

    def send(self, notification) -> None:
        if self.failing.is_set() and self.rng.random() < 0.5:
            self.failures += 1
            raise ConnectionError("injected: webhook unavailable")
        self.delivered[notification.key] += 1


async def test_transient_activity_failures_retry_without_side_effects_twice(time_env, task_queue, sqlite_url, policy, monkeypatch):
    client = time_env.client
    await skip_to(time_env, next_local(await time_env.get_current_time(), 1, clock_time(10, 0)))
    ledger, notifier = FlakyLedger(sqlite_url), FlakyNotifier()
    monkeypatch.setattr("worker.Notifier", lambda _url: notifier)
    ledger.failing.set()
    notifier.failing.set()
    async with running_worker(client, Settings(task_queue=task_queue, database_url=sqlite_url), policy=policy, ledger=ledger):
        lead_ids = [(await submit_lead(client, hot_lead(f"flaky{n}@corp.io"), task_queue, visibility=False)).lead_id
                    for n in range(12)]
        views = []
        for lead_id in lead_ids:
            for _ in range(300):
                view = await show(client, lead_id)
                if view.stage is Stage.ASSIGNED and len(ledger.events(lead_id)) >= 3:
                    break
                await asyncio.sleep(0.1)
            views.append(view)
        ledger.failing.clear()
        notifier.failing.clear()
        print(f"injected: {ledger.failures} ledger write failures (half after commit), {notifier.failures} webhook failures")
        assert ledger.failures and notifier.failures
        for lead_id in lead_ids:
            await convert(client, lead_id)
        for lead_id, view in zip(lead_ids, views):
            mql = next(entry for entry in view.log if entry.kind == "mql")
            assert view.deadlines[Clock.ACCEPTANCE] - mql.at == timedelta(minutes=30), f"lead {lead_id}: SLA clock moved"
            assert view.deadlines[Clock.FIRST_CONTACT] - mql.at == timedelta(hours=1), f"lead {lead_id}: SLA clock moved"
        check_ledger(ledger, lead_ids)
        for _ in range(100):  # background notification retries settle
            if len(notifier.delivered) >= len(lead_ids):
                break
            await asyncio.sleep(0.1)
    assert notifier.delivered and all(times == 1 for times in notifier.delivered.values()), notifier.delivered
    print(f"verified: 12 journeys converted, each ledger event and each of {len(notifier.delivered)} notifications exactly once, SLA due times unchanged")


class Outage:
    """A TCP proxy to PostgreSQL that can refuse and cut connections for a while."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.port = target, free_port()
        self.up = threading.Event()
        self.up.set()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self.up.clear()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def restore(self) -> None:
        self.up.set()


async def test_ledger_database_unreachable_for_30_seconds(dev_client, demo_policy, tmp_path):
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        create_engine(POSTGRES_URL).connect().close()
    except Exception as error:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    schema = f"outage_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    outage = Outage((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(host="127.0.0.1", port=outage.port).render_as_string(hide_password=False)
    ledger = Ledger(f"{proxied}?options=-csearch_path%3D{schema}")
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    policy = load_policy_file(DEFAULT_POLICY)
    try:
        async with running_worker(dev_client, Settings(task_queue=queue), policy=policy, ledger=ledger):
            lead_ids = [(await submit_lead(dev_client, hot_lead(f"outage{n}-{queue}@corp.io"), queue, visibility=False)).lead_id
                        for n in range(10)]
            for lead_id in lead_ids[:5]:
                await accepted(dev_client, lead_id)
            outage.cut()
            print("injected: ledger database unreachable for 30 s (connections cut, new ones refused)")
            more = [(await submit_lead(dev_client, hot_lead(f"outage-late{n}-{queue}@corp.io"), queue, visibility=False)).lead_id
                    for n in range(5)]
            await asyncio.sleep(30)
            assert not any(ledger_has(ledger, lead_id) for lead_id in more), "the ledger was reachable during the outage"
            outage.restore()
            await asyncio.wait_for(asyncio.gather(*(convert(dev_client, lead_id) for lead_id in lead_ids + more)), timeout=180)
            check_ledger(ledger, lead_ids + more)
        print(f"verified: {len(lead_ids + more)} journeys waited out the outage and converted, ledger complete")
    finally:
        outage.restore()
        ledger.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def ledger_has(ledger: Ledger, lead_id: str) -> bool:
    try:
        return bool(ledger.events(lead_id))
    except Exception:
        return False


async def test_two_workers_keep_round_robin_fair_and_caps_held(dev_server, dev_client, tmp_path):
    queue = f"pair-{uuid.uuid4().hex[:8]}"
    policy_path = policy_file(tmp_path, default_capacity=3, prefer_on_shift=False)
    policy = load_policy_file(policy_path)
    sqlite_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    settings = Settings(task_queue=queue, database_url=sqlite_url)
    na_reps = [rep.id for rep in policy.reps if not rep.territories or "NA" in rep.territories]
    other_client = await connect(Settings(), target_host=dev_server.address)  # one worker per client connection
    ledgers = [CountingLedger(sqlite_url), CountingLedger(sqlite_url)]
    async with running_worker(dev_client, settings, policy=policy, ledger=ledgers[0]) as one, \
            running_worker(other_client, settings, policy=policy, ledger=ledgers[1]):
        first = [(await submit_lead(dev_client, hot_lead(f"pair{n}-{queue}@corp.io"), queue, visibility=False)).lead_id
                 for n in range(13)]
        await asyncio.gather(*(wait_assigned(one.ledger, lead_id) for lead_id in first))
        counts = Counter(row["rep_id"] for lead_id in first for row in one.ledger.assignments_of(lead_id))
        print(f"injected: 13 leads through two workers on one task queue; assignments {dict(counts)}")
        assert set(counts) == set(na_reps) and max(counts.values()) - min(counts.values()) <= 1, counts
        assert all(ledger.routed for ledger in ledgers), f"one worker did all the routing: {[l.routed for l in ledgers]}"
        more = [(await submit_lead(dev_client, hot_lead(f"pair-more{n}-{queue}@corp.io"), queue, visibility=False)).lead_id
                for n in range(5)]
        await asyncio.sleep(3)
        open_by_rep = one.ledger.open_leads_by_rep()
        assert all(open_by_rep.get(rep, 0) <= 3 for rep in na_reps), open_by_rep
        assert sum(open_by_rep.values()) == 3 * len(na_reps)
        waiting = [lead_id for lead_id in more if not one.ledger.assignments_of(lead_id)]
        assert len(waiting) == 13 + 5 - 3 * len(na_reps), waiting
        for lead_id in first + more:
            await journey_handle(dev_client, lead_id).terminate("test finished")
    print(f"verified: routing split {[l.routed for l in ledgers]} between the workers, counts within one of each other, "
          f"no rep above its cap of 3 ({open_by_rep}), {len(waiting)} leads waiting")


class CountingLedger(Ledger):
    """Counts the routing decisions made through this worker's ledger."""

    routed = 0

    def assign(self, request, policy):
        self.routed += 1
        return super().assign(request, policy)


async def wait_assigned(ledger: Ledger, lead_id: str) -> None:
    for _ in range(200):
        if ledger.assignments_of(lead_id):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"lead {lead_id} was never assigned")


def test_outage_proxy_refuses_while_cut():
    server = socket.create_server(("127.0.0.1", 0))
    outage = Outage(server.getsockname()[:2])
    outage.cut()
    probe = socket.create_connection(("127.0.0.1", outage.port))
    probe.settimeout(2)
    assert probe.recv(1) == b""  # closed at once
    outage.restore()
    server.close()
