"""``leadflow bench live --json`` prints every figure the performance section needs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runtime.settings import REPO_ROOT

pytestmark = pytest.mark.devserver

FIELDS = {"leads_per_s", "ceiling_per_s", "ratio_to_ceiling", "action_latency_p50_ms", "action_latency_p99_ms",
          "worker_cpu_seconds_per_lead", "worker_peak_rss_mb", "worker_rss_mb_by_tenth", "history_events_per_lead",
          "billable_actions_per_lead", "worker_error_log_lines", "cpu_ms_per_journey", "cpu_ms_per_ceiling_run"}


def test_bench_live_prints_its_figures():
    done = subprocess.run([sys.executable, "-m", "cli.main", "bench", "live", "--leads", "10", "--json"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert FIELDS <= figures.keys()
    assert figures["leads"] == 10 and figures["leads_per_s"] > 0 and figures["ceiling_per_s"] > 0
    assert figures["ratio_to_ceiling"] == pytest.approx(figures["leads_per_s"] / figures["ceiling_per_s"], rel=0.01)
    # A happy-path journey: 4 rep actions as signals; the policy load, routing, ledger writes and
    # the notification are activities (none local: their results must replay in the same task).
    assert figures["shape"]["actions"] == 4 and figures["shape"]["local_activities"] == 0
    assert figures["shape"]["activities"] >= 4 + 3 and figures["shape"]["patches"] == 4
    # The ceiling's history holds what the journey's does: timers started in one task and
    # cancelled in a later one reach the server (within one task they would not).
    assert figures["ceiling_shape"] == figures["shape"]
    # By default journeys index their search attributes, as users run them, and so does the ceiling.
    assert figures["visibility"] is True and figures["shape"]["upserts"] >= 4
    assert 30 <= figures["history_events_per_lead"] <= 100 and figures["billable_actions_per_lead"] >= 10
    assert len(figures["worker_rss_mb_by_tenth"]) == 10 and figures["worker_error_log_lines"] == 0
    assert 0 < figures["action_latency_p50_ms"] <= figures["action_latency_p99_ms"]
