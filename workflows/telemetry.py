"""The worker's ``/metrics`` endpoint: the Temporal SDK runtime's Prometheus exporter.

One endpoint serves both the SDK's own metrics and the business metrics of
``workflows.journey_metrics`` (which go through the same runtime's meter). The exporter
follows Prometheus conventions: counters end in ``_total``, durations are in seconds and
carry the unit suffix, so standard Temporal dashboards and PromQL work unchanged.
"""

from __future__ import annotations

import logging

from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from leadflow.kpis import BUSINESS_METRICS, Kind

# What the SDK exposes with the configuration below. Most were read off a worker that ran
# journeys, local and normal activities, a failing workflow task and client calls; the
# rest (failures, cancellations, continue-as-new, empty polls) appear once such an event
# happens, under the names sdk-core gives them. ``tests/test_observability.py`` checks
# that every family a real worker serves is listed, and that every SDK metric the
# dashboard and the alerts use was really served.
SDK_METRICS = (
    "temporal_activity_execution_failed_total",
    "temporal_activity_execution_latency_seconds",
    "temporal_activity_poll_no_task_total",
    "temporal_activity_schedule_to_start_latency_seconds",
    "temporal_activity_task_received_total",
    "temporal_activity_succeed_endtoend_latency_seconds",
    "temporal_local_activity_execution_failed_total",
    "temporal_local_activity_execution_latency_seconds",
    "temporal_local_activity_succeed_endtoend_latency_seconds",
    "temporal_local_activity_total_total",  # sic: the SDK names the counter "local_activity_total"
    "temporal_long_request_failure_total",
    "temporal_long_request_latency_seconds",
    "temporal_long_request_total",
    "temporal_num_pollers",
    "temporal_request_failure_total",
    "temporal_request_latency_seconds",
    "temporal_request_total",
    "temporal_sticky_cache_hit_total",
    "temporal_sticky_cache_miss_total",
    "temporal_sticky_cache_size",
    "temporal_sticky_cache_total_forced_eviction_total",
    "temporal_worker_start_total",
    "temporal_worker_task_slots_available",
    "temporal_worker_task_slots_used",
    "temporal_workflow_completed_total",
    "temporal_workflow_endtoend_latency_seconds",
    "temporal_workflow_failed_total",
    "temporal_workflow_task_execution_failed_total",
    "temporal_workflow_task_execution_latency_seconds",
    "temporal_workflow_task_queue_poll_empty_total",
    "temporal_workflow_task_queue_poll_succeed_total",
    "temporal_workflow_task_replay_latency_seconds",
    "temporal_workflow_task_schedule_to_start_latency_seconds",
    "temporal_workflow_continue_as_new_total",
)


CORE_LOGGER = logging.getLogger("temporalio.core")


def core_logging() -> LoggingConfig:
    """The SDK core's own logs, forwarded to Python logging (stderr or a log file).

    Left to itself the core writes them to stdout, which breaks ``--json`` output.
    """
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=LogForwardingConfig(logger=CORE_LOGGER)
    )


def use_logging_runtime() -> None:
    """Make the default SDK runtime (every client and worker without its own) forward its logs."""
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=core_logging())), error_if_already_set=False)


def prometheus_runtime(bind_address: str) -> Runtime:
    """An SDK runtime whose Prometheus exporter serves ``/metrics`` on ``bind_address``."""
    buckets = {spec.name: list(spec.buckets) for spec in BUSINESS_METRICS if spec.kind is Kind.HISTOGRAM}
    config = PrometheusConfig(
        bind_address=bind_address,
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides=buckets,
    )
    return Runtime(telemetry=TelemetryConfig(metrics=config, logging=core_logging()))


def metric_names() -> list[str]:
    """Every metric family the worker exposes: the SDK's and the business ones."""
    return sorted({*SDK_METRICS, *(spec.name for spec in BUSINESS_METRICS)})
