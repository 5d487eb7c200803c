"""The leadflow worker: runs lead journeys and their activities on a task queue.

    python worker.py            # or: leadflow worker

Connects with Temporal's standard environment configuration (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE), loads the policy
from LEADFLOW_POLICY, opens the ledger at LEADFLOW_DATABASE_URL (SQLite in
LEADFLOW_DATA_DIR by default), serves Prometheus metrics on LEADFLOW_METRICS_ADDRESS
(default 0.0.0.0:9464) and shuts down gracefully on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig, WorkflowRunner

from activities.journey_activities import JourneyActivities
from activities.ledger import Ledger
from activities.notifications import Notifier
from activities.open_leads_gauge import OpenLeadsGauge
from activities.policy_store import PolicyStore
from leadflow.policy import Policy
from runtime.id_key import IdKeyError, require_id_key
from runtime.settings import Settings, current_settings, load_policy_file
from workflows.core_health import EXIT_RESTART, CoreBroken, CoreStateBroken
from workflows.journey_client import JourneyError, OperatorApiUnavailable, check_search_attributes, connect
from workflows.lead_journey import LeadJourneyWorkflow
from workflows.sandbox import workflow_runner
from workflows.telemetry import CORE_LOGGER, prometheus_runtime, use_logging_runtime

log = logging.getLogger("leadflow.worker")

_GRACE = timedelta(seconds=10)


@dataclass
class WorkerParts:
    worker: Worker
    ledger: Ledger
    policies: PolicyStore


def build_worker(
    client: Client,
    settings: Settings,
    *,
    policy: Policy | None = None,
    ledger: Ledger | None = None,
    executor: ThreadPoolExecutor | None = None,
    max_cached_workflows: int | None = None,
    workflow_class: type = LeadJourneyWorkflow,
    runner: WorkflowRunner | None = None,
) -> WorkerParts:
    """A worker for lead journeys, with its ledger and policy store (not yet running).

    ``workflow_class`` and ``runner`` exist for tests that run a changed copy of the journey.
    """
    ledger = ledger or Ledger(settings.ledger_url)
    ledger.create_schema()
    policies = PolicyStore(policy or load_policy_file(settings.policy_path), ledger)
    activities = JourneyActivities(ledger, policies, Notifier(settings.notify_webhook_url))
    worker = Worker(
        client,
        deployment_config=deployment_config(settings),
        task_queue=settings.task_queue,
        workflows=[workflow_class],
        activities=activities.all,
        activity_executor=executor or ThreadPoolExecutor(max_workers=16, thread_name_prefix="leadflow-activity"),
        workflow_runner=runner or workflow_runner(),
        max_cached_workflows=settings.max_cached_workflows if max_cached_workflows is None else max_cached_workflows,
        graceful_shutdown_timeout=_GRACE,
    )
    return WorkerParts(worker=worker, ledger=ledger, policies=policies)


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker Deployment Versioning from LEADFLOW_DEPLOYMENT_NAME / LEADFLOW_BUILD_ID, if set.

    Journeys default to auto-upgrade: they move to the current version at their next task,
    which is safe because every change is replay-tested and patched. ``pinned`` keeps each
    journey on the version it started with, so old workers must run until their journeys end.
    """
    if not settings.deployment_name:
        return None
    behavior = VersioningBehavior.PINNED if settings.versioning_behavior == "pinned" else VersioningBehavior.AUTO_UPGRADE
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=settings.deployment_name, build_id=settings.build_id or ""),
        use_worker_versioning=True,
        default_versioning_behavior=behavior,
    )


@asynccontextmanager
async def running_worker(client: Client, settings: Settings, **kwargs: object) -> AsyncIterator[WorkerParts]:
    """Run a worker for the duration of a ``with`` block."""
    parts = build_worker(client, settings, **kwargs)  # type: ignore[arg-type]
    async with parts.worker:
        yield parts
    parts.ledger.dispose()


async def _require_search_attributes(client: Client) -> None:
    """Refuse to start on a namespace without the journeys' search attributes; warn if it will not say."""
    try:
        await check_search_attributes(client)
    except OperatorApiUnavailable as error:
        log.warning("search attributes not checked: %s", error)
    except JourneyError as error:
        raise SystemExit(f"error: {error}") from None


async def serve(settings: Settings | None = None, *, target_host: str | None = None) -> None:
    """Run a worker until SIGTERM or SIGINT, then drain and stop.

    ``target_host``: the Temporal frontend, instead of the one in Temporal's environment
    configuration (``leadflow dev`` passes its own server's).
    """
    settings = settings or current_settings()
    try:
        require_id_key(settings)  # the worker derives no ids, but in production it refuses to run beside an API without one
    except IdKeyError as error:
        raise SystemExit(f"error: {error}") from None
    address = settings.metrics_address
    try:
        runtime = prometheus_runtime(address)
    except Exception as error:
        raise SystemExit(f"cannot serve metrics on {address} (LEADFLOW_METRICS_ADDRESS): {error}") from None
    client = await connect(settings, runtime=runtime, **({"target_host": target_host} if target_host else {}))
    await _require_search_attributes(client)
    parts = build_worker(client, settings)
    gauges = asyncio.create_task(OpenLeadsGauge(runtime.metric_meter, parts.ledger, parts.policies).run(settings.metrics_refresh_seconds))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "worker started: task queue %s, namespace %s, policy %s, ledger %s, metrics on http://%s/metrics, %s",
        settings.task_queue,
        client.namespace,
        parts.policies.current.version,
        parts.ledger.dialect,
        address,
        f"deployment {settings.deployment_name} build {settings.build_id} ({settings.versioning_behavior})"
        if settings.deployment_name
        else "unversioned",
    )
    core = CoreBroken(loop)
    CORE_LOGGER.addHandler(core)
    try:
        run = asyncio.create_task(parts.worker.run())
        await asyncio.wait([run, asyncio.create_task(stop.wait()), asyncio.create_task(core.broken.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        CORE_LOGGER.removeHandler(core)  # one worker's watch: a process that serves again starts a new one
    if core.message is not None:
        # The core holds a run it will not finish, and may not let shutdown finish either.
        try:
            await asyncio.wait_for(parts.worker.shutdown(), timeout=_GRACE.total_seconds() * 2)
        except TimeoutError:
            pass
        raise CoreStateBroken(core.message)
    if not run.done():
        log.info("shutting down: finishing tasks in flight")
        await parts.worker.shutdown()
    await run
    gauges.cancel()
    parts.ledger.dispose()
    log.info("worker stopped")


async def serve_process(settings: Settings | None = None) -> None:
    """``serve`` as a process of its own: if the SDK core breaks, exit ``EXIT_RESTART`` at once
    for the supervisor to start a fresh worker (``workflows.core_health``)."""
    try:
        await serve(settings)
    except CoreStateBroken as broken:
        log.error("the SDK core reported its workflow state broken (%s): exiting %d for a restart", broken, EXIT_RESTART)
        logging.shutdown()
        os._exit(EXIT_RESTART)  # not a normal exit: the core's threads may hold the interpreter open


def main() -> None:
    from runtime.clean_exit import run_then_exit

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    use_logging_runtime()
    run_then_exit(lambda: asyncio.run(serve_process()))


if __name__ == "__main__":
    main()
