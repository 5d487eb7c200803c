"""Build ``deploy/grafana/dashboards/leadflow.json`` from the panel list below.

    python deploy/grafana/build_dashboard.py          # rewrite the JSON
    python deploy/grafana/build_dashboard.py --check  # exit 1 if the JSON is stale

Panels are written as (title, kind, queries); layout, ids and the datasource are filled
in here so the JSON stays consistent. ``tests/test_deploy.py`` checks that the committed
JSON is what this script builds and that every query names a metric the worker exposes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # also when run from a checkout
from leadflow.journey import Clock  # noqa: E402
from leadflow.kpis import (  # noqa: E402  (every KPI is defined once, in the core)
    TTFC_BUSINESS,
    TTFC_WALL,
    FunnelRatio,
    funnel_ratio_promql,
    sla_attainment_promql,
)

OUT = Path(__file__).resolve().parent / "dashboards" / "leadflow.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
# Each worker reports the same ledger-wide gauge; take one value per series, not the sum.
OPEN = 'max by (stage, team) (leadflow_open_leads{team=~"$team"})'

ROWS: list[tuple[str, list[tuple[str, str, str, list[tuple[str, str]]]]]] = [
    (
        "Funnel and SLAs",
        [
            ("Leads entering each stage", "barchart", "short", [
                ("{{stage}}", 'sum by (stage) (increase(leadflow_stage_entries_total{tier=~"$tier"}[$__range]))'),
            ]),
            ("First-contact SLA attainment by tier", "timeseries", "percentunit", [
                ("{{tier}}", sla_attainment_promql("1h", 'tier=~"$tier"')),
            ]),
            ("Acceptance and follow-up SLA attainment (windows met)", "timeseries", "percentunit", [
                (f"{clock} {{{{tier}}}}", sla_attainment_promql("1h", 'tier=~"$tier"', clock))
                for clock in (Clock.ACCEPTANCE, Clock.FOLLOW_UP)
            ]),
            ("Time to first contact (business time)", "timeseries", "s", [
                (f"p{q}", f"histogram_quantile(0.{q}, sum by (le) (rate({TTFC_BUSINESS.name}_bucket"
                 f'{{tier=~"$tier"}}[$__rate_interval])))')
                for q in ("50", "90", "99")
            ]),
            ("Time to first contact (wall clock)", "timeseries", "s", [
                (f"p{q}", f"histogram_quantile(0.{q}, sum by (le) (rate({TTFC_WALL.name}_bucket"
                 f'{{tier=~"$tier"}}[$__rate_interval])))')
                for q in ("50", "90", "99")
            ]),
            ("SLA breaches by clock", "timeseries", "short", [
                ("{{clock}}", 'sum by (clock) (increase(leadflow_sla_breaches_total{tier=~"$tier"}[1h]))'),
            ]),
            ("Escalations and reassignments", "timeseries", "short", [
                ("level {{level}}", "sum by (level) (increase(leadflow_escalations_total[1h]))"),
                ("reassignments", 'sum(increase(leadflow_reassignments_total{tier=~"$tier"}[1h]))'),
            ]),
            ("Stage conversions", "table", "short", [
                ("{{from_stage}} -> {{to_stage}}",
                 "sum by (from_stage, to_stage) (increase(leadflow_stage_conversions_total[$__range]))"),
            ]),
            ("MQL to SQL", "stat", "percentunit", [
                ("MQL to SQL", funnel_ratio_promql(FunnelRatio.MQL_TO_SQL, "$__range", 'tier=~"$tier"')),
            ]),
            ("Acceptance rate (hand-offs accepted by the rep)", "stat", "percentunit", [
                ("acceptance", funnel_ratio_promql(FunnelRatio.ACCEPTANCE_RATE, "$__range", 'tier=~"$tier"')),
            ]),
            ("Contact attempts per MQL", "stat", "short", [
                ("attempts per MQL", funnel_ratio_promql(FunnelRatio.ATTEMPTS_PER_LEAD, "$__range", 'tier=~"$tier"')),
            ]),
            ("Attempts before disposition (mean per closed journey)", "stat", "short", [
                ("attempts", "sum(increase(leadflow_attempts_per_journey_sum[$__range]))"
                 " / sum(increase(leadflow_attempts_per_journey_count[$__range]))"),
            ]),
        ],
    ),
    (
        "Open leads",
        [
            ("Open leads per team", "timeseries", "short", [("{{team}}", f"sum by (team) ({OPEN})")]),
            ("Open leads by stage", "bargauge", "short", [("{{stage}}", f"sum by (stage) ({OPEN})")]),
            ("Leads waiting in line for a rep", "timeseries", "short", [
                ("waiting", "max(leadflow_waiting_line_leads)"),
            ]),
            ("Longest wait in line", "stat", "s", [("oldest", "max(leadflow_waiting_line_oldest_seconds)")]),
            ("Journeys closed by outcome", "timeseries", "short", [
                ("{{stage}}", "sum by (stage) (increase(leadflow_journeys_closed_total[1h]))"),
            ]),
            ("Policy version in use", "stat", "short", [("{{version}}", "max by (version) (leadflow_policy_info) == 1")]),
        ],
    ),
    (
        "Worker health",
        [
            ("Workers up", "stat", "short", [("up", 'sum(up{job="leadflow-worker"})')]),
            ("Task slots available", "timeseries", "short", [
                ("{{worker_type}}", "sum by (worker_type) (temporal_worker_task_slots_available)"),
            ]),
            ("Task slots used", "timeseries", "short", [
                ("{{worker_type}}", "sum by (worker_type) (temporal_worker_task_slots_used)"),
            ]),
            ("Schedule-to-start latency p95", "timeseries", "s", [
                ("workflow tasks", "histogram_quantile(0.95, sum by (le) "
                 "(rate(temporal_workflow_task_schedule_to_start_latency_seconds_bucket[$__rate_interval])))"),
                ("activities", "histogram_quantile(0.95, sum by (le) "
                 "(rate(temporal_activity_schedule_to_start_latency_seconds_bucket[$__rate_interval])))"),
            ]),
            ("Workflow task failures", "timeseries", "short", [
                ("{{task_queue}}", "sum by (task_queue) (rate(temporal_workflow_task_execution_failed_total[$__rate_interval]))"),
            ]),
            ("Workflow task execution latency p95", "timeseries", "s", [
                ("p95", "histogram_quantile(0.95, sum by (le) "
                 "(rate(temporal_workflow_task_execution_latency_seconds_bucket[$__rate_interval])))"),
            ]),
            ("Sticky cache size", "timeseries", "short", [("cached journeys", "sum(temporal_sticky_cache_size)")]),
        ],
    ),
]


def _variable(name: str, label_query: str) -> dict:
    return {
        "name": name,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": label_query, "refId": f"{name}-values"},
        "definition": label_query,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"},
        "refresh": 2,
    }


def build() -> dict:
    panels: list[dict] = []
    next_id, y = 1, 0
    for row_title, row_panels in ROWS:
        panels.append({"id": next_id, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id, y = next_id + 1, y + 1
        for index, (title, kind, unit, queries) in enumerate(row_panels):
            panels.append({
                "id": next_id,
                "type": kind,
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": y + 8 * (index // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for n, (legend, expr) in enumerate(queries)
                ],
            })
            next_id += 1
        y += 8 * ((len(row_panels) + 1) // 2)
    return {
        "uid": "leadflow",
        "title": "leadflow: lead journeys",
        "description": "Funnel, SLAs, open leads and worker health of leadflow (generated by deploy/grafana/build_dashboard.py).",
        "tags": ["leadflow", "temporal"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": [
            _variable("tier", "label_values(leadflow_stage_entries_total, tier)"),
            _variable("team", "label_values(leadflow_open_leads, team)"),
        ]},
        "panels": panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(0 if OUT.read_text() == render() else 1)
    OUT.write_text(render())
    print(f"wrote {OUT}")
