"""``leadflow bench live``: how many full journeys one machine drives, against its ceiling.

Starts the embedded stack (the dev server on a SQLite file with WAL) and a worker process,
drives N happy-path journeys with scripted reps (submit, accept, connected attempt,
qualify, convert), then drives N ceiling workflows of the same shape (``bench.ceiling``)
on their own worker process. Prints JSON.
"""

from __future__ import annotations

import asyncio
import compileall
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench.billable_actions import QueryCounter, count_actions
from bench.ceiling import CEILING_TASK_QUEUE, CeilingWorkflow, Shape
from leadflow.actions import Accept, AttemptOutcome, Convert, LogAttempt, Qualify
from leadflow.lead import Lead
from runtime.id_key import lead_id_of
from runtime.settings import DEFAULT_POLICY, REPO_ROOT, Settings, load_policy_file
from workflows import search_attributes as sa
from workflows.dev_server import DevServer, free_port
from workflows.journey_client import (
    ACTION_ANSWER_WAIT,
    ActionRejected,
    JourneyError,
    act,
    connect,
    journey_handle,
    submit_lead,
    wait_for_answer,
)

CONCURRENCY = 64


@dataclass
class Process:
    """A worker process and what it used."""

    popen: subprocess.Popen
    latencies: list[float] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.popen.pid)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_by_process(worker: Process, ceiling_worker: Process, server: DevServer) -> dict[str, float]:
    assert server.process is not None, "the dev server is running"
    return {"worker": worker.cpu_seconds(), "ceiling_worker": ceiling_worker.cpu_seconds(),
            "server": _cpu_seconds(server.process.pid), "driver": time.process_time()}


def _cpu_used(before: dict[str, float], after: dict[str, float], runs: int) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / runs * 1000, 1) for name in before}


def _start(command: list[str], env: dict[str, str], log: Path) -> Process:
    return Process(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT))


async def _gather_bounded(count: int, one: Callable[[int], Awaitable[None]], on_done: Callable[[], None]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def run(index: int) -> None:
        async with gate:
            await one(index)
            on_done()

    await asyncio.gather(*(run(index) for index in range(count)))


@dataclass
class Driver:
    """The scripted reps, and how often the stack made them try again."""

    client: Client
    manager: str
    visibility: bool = True
    latencies: list[float] = field(default_factory=list)
    retries: int = 0

    async def act(self, lead_id: str, action, *, until_assigned: bool = False) -> None:
        for _ in range(600):
            started = time.perf_counter()
            try:
                await act(self.client, lead_id, action)
                self.latencies.append(time.perf_counter() - started)
                return
            except ActionRejected:
                if not until_assigned:
                    raise
            except JourneyError:
                # The server refused for now (e.g. a workflow task being retried on an overloaded
                # machine): the journey carries on once it is retried, so the rep tries again.
                self.retries += 1
            await asyncio.sleep(0.1)
        raise RuntimeError(f"lead {lead_id}: {action.type} never went through")

    async def journey(self, run_id: str, index: int) -> None:
        lead = Lead(email=f"bench{index}.{run_id}@bench.example.com", title="VP Sales", company_size=500,
                    industry="software", country="US", source="demo_request")
        submitted = await submit_lead(self.client, lead, "leadflow-bench", visibility=self.visibility)
        await asyncio.sleep(0.25)  # the rep's reaction time; routing is done by then, mostly
        await self.act(submitted.lead_id, Accept(by=self.manager), until_assigned=True)
        for action in (LogAttempt(by=self.manager, outcome=AttemptOutcome.CONNECTED), Qualify(by=self.manager, budget=True),
                       Convert(by=self.manager)):
            await self.act(submitted.lead_id, action)
        await journey_handle(self.client, submitted.lead_id).result()


async def _ceiling(client: Client, run_id: str, index: int, shape: Shape, latencies: list[float]) -> None:
    # Started as submit_lead starts a journey: with its stage indexed when visibility is on.
    indexed = TypedSearchAttributes([SearchAttributePair(sa.LEAD_STAGE, "NEW")]) if shape.upserts else None
    handle = await client.start_workflow(CeilingWorkflow.run, shape, id=f"ceiling-{run_id}-{index}",
                                         task_queue=CEILING_TASK_QUEUE, start_signal="submit", start_signal_args=["lead"],
                                         search_attributes=indexed)
    for step in range(shape.actions):
        started = time.perf_counter()
        await handle.signal(CeilingWorkflow.act, step)
        answered, _ = await wait_for_answer(handle, str(step), wait=ACTION_ANSWER_WAIT, memo_key="answers")
        if not answered:
            raise RuntimeError(f"ceiling run {index}: action {step} got no answer in time")
        await handle.query(CeilingWorkflow.answer, step)  # as ``act`` reads the lead after its answer
        latencies.append(time.perf_counter() - started)
    await handle.result()


REP_ACTION_SIGNALS = {"rep_action", "act"}  # the journey's and the ceiling's
PATCH_VERSION_ATTRIBUTE = "TemporalChangeVersion"  # what ``workflow.patched`` upserts beside its marker


def _shape_of(history) -> Shape:
    kinds = [event.event_type for event in history.events]
    markers = [event.marker_recorded_event_attributes.marker_name for event in history.events
               if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    upserts = [set(event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
               for event in history.events if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    return Shape(
        local_activities=markers.count("core_local_activity"),
        activities=kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        timers=kinds.count(EventType.EVENT_TYPE_TIMER_STARTED),
        actions=sum(1 for event in history.events if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
                    and event.workflow_execution_signaled_event_attributes.signal_name in REP_ACTION_SIGNALS),
        upserts=sum(1 for fields in upserts if fields != {PATCH_VERSION_ATTRIBUTE}),
        memo_upserts=kinds.count(EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED),
        patches=markers.count("core_patch"),
    )


def _workflow_tasks(history) -> int:
    return sum(event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for event in history.events)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def bench_live(
    leads: int, progress: Callable[[str, int], Callable[[], None]] | None = None, *, visibility: bool = True
) -> dict[str, object]:
    """Drive ``leads`` journeys and as many ceiling workflows; return the figures.

    With ``visibility`` (the default, as users run) journeys index their search attributes
    and the ceiling does the same upserts.
    """
    policy = load_policy_file(DEFAULT_POLICY)
    manager = sorted(policy.managers)[0]
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-") as folder:
        data = Path(folder)
        server = DevServer(data, port=free_port(), ui_port=None, log_path=data / "temporal.log")
        server.start()
        env = {**os.environ, "TEMPORAL_ADDRESS": server.address, "TEMPORAL_NAMESPACE": "default",
               "LEADFLOW_TASK_QUEUE": "leadflow-bench", "LEADFLOW_POLICY": str(DEFAULT_POLICY),
               "LEADFLOW_DATA_DIR": str(data), "LEADFLOW_METRICS_ADDRESS": f"127.0.0.1:{free_port()}"}
        # As the Dockerfile does: ship bytecode, or the sandbox compiles the journey module per journey.
        compileall.compile_dir(REPO_ROOT / "workflows", quiet=1)
        worker = _start([sys.executable, "worker.py"], env, data / "worker.log")
        ceiling_worker = _start([sys.executable, "-m", "bench.ceiling"], env, data / "ceiling.log")
        try:
            queries = QueryCounter()  # billable, never in a history: the reps' checks and answers
            client = await connect(Settings(), target_host=server.address, interceptors=[queries])
            await Driver(client, manager, visibility).journey(run_id, -1)  # warm-up: worker started, policy loaded
            cpu_at_start = _cpu_by_process(worker, ceiling_worker, server)
            driver = Driver(client, manager, visibility)
            latencies = driver.latencies
            rss_samples: list[float] = []
            advance = progress("journeys", leads) if progress else (lambda: None)
            done = 0

            def finished_one() -> None:
                nonlocal done
                done += 1
                advance()
                if done % max(1, leads // 10) == 0:  # the worker's memory at every tenth of the run
                    rss_samples.append(worker.rss_mb())

            started = time.perf_counter()
            await _gather_bounded(leads, lambda i: driver.journey(run_id, i), finished_one)
            journey_seconds = time.perf_counter() - started
            cpu_after_journeys = _cpu_by_process(worker, ceiling_worker, server)
            worker_cpu = cpu_after_journeys["worker"] - cpu_at_start["worker"]

            sample = [journey_handle(client, lead_id_of(Lead(email=f"bench{i}.{run_id}@bench.example.com")))
                      for i in range(min(leads, 20))]
            histories = [await handle.fetch_history() for handle in sample]
            counts = [count_actions(history, queries=queries.by_workflow[handle.id])
                      for handle, history in zip(sample, histories)]
            shape = _shape_of(histories[0])

            await _ceiling(client, run_id, -1, shape, [])  # warm-up
            cpu_before_ceiling = _cpu_by_process(worker, ceiling_worker, server)
            ceiling_latencies: list[float] = []
            started = time.perf_counter()
            await _gather_bounded(leads, lambda i: _ceiling(client, run_id, i, shape, ceiling_latencies),
                                  progress("ceiling", leads) if progress else (lambda: None))
            ceiling_seconds = time.perf_counter() - started
            cpu_after_ceiling = _cpu_by_process(worker, ceiling_worker, server)
            ceiling_history = await client.get_workflow_handle(f"ceiling-{run_id}-0").fetch_history()
            worker_log = (data / "worker.log").read_text(errors="replace").splitlines()
            errors = [line for line in worker_log if " ERROR " in line]
            task_failures = [line for line in worker_log if "Failing workflow task" in line]
            leads_per_s, ceiling_per_s = leads / journey_seconds, leads / ceiling_seconds
            return {
                "leads": leads,
                "visibility": visibility,
                "leads_per_s": round(leads_per_s, 2),
                "ceiling_per_s": round(ceiling_per_s, 2),
                "ratio_to_ceiling": round(leads_per_s / ceiling_per_s, 3),
                "action_latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
                "action_latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
                "ceiling_action_latency_p50_ms": round(statistics.median(ceiling_latencies) * 1000, 1),
                "worker_cpu_seconds_per_lead": round(worker_cpu / leads, 4),
                "cpu_ms_per_journey": _cpu_used(cpu_at_start, cpu_after_journeys, leads),
                "cpu_ms_per_ceiling_run": _cpu_used(cpu_before_ceiling, cpu_after_ceiling, leads),
                "worker_peak_rss_mb": worker.peak_rss_mb(),
                "worker_rss_mb_by_tenth": rss_samples,
                "history_events_per_lead": round(statistics.mean(c.history_events for c in counts), 1),
                "billable_actions_per_lead": round(statistics.mean(c.total for c in counts), 1),
                "queries_per_lead": round(statistics.mean(c.queries for c in counts), 1),
                "workflow_tasks_per_lead": round(statistics.mean(_workflow_tasks(h) for h in histories), 1),
                "ceiling_history_events_per_run": len(ceiling_history.events),
                "ceiling_workflow_tasks_per_run": _workflow_tasks(ceiling_history),
                "shape": shape.model_dump(),
                "ceiling_shape": _shape_of(ceiling_history).model_dump(),  # what the server recorded
                "worker_error_log_lines": len(errors),
                "workflow_task_failures": len(task_failures),
                "driver_retries": driver.retries,
                "concurrency": CONCURRENCY,
                "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                "python": platform.python_version(),
                "date": date.today().isoformat(),
            }
        except BaseException:
            kept = Path(tempfile.gettempdir()) / f"leadflow-bench-{run_id}-worker.log"
            kept.write_text((data / "worker.log").read_text(errors="replace"))
            print(f"bench failed; the worker's log is kept at {kept}", file=sys.stderr)
            raise
        finally:
            worker.stop()
            ceiling_worker.stop()
            server.stop()
