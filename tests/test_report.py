"""The closed-loop SLA report, on a ledger that real journeys wrote (``leadflow demo`` on the dev
server): every figure is checked against a count made here, independently, from the ledger's
tables; then an empty period, a period with one lead, bad input, the API route, and a
10,000-journey ledger against the clock."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from activities.ledger import Ledger
from activities.ledger_schema import journey_events, sla_settlements
from activities.report_source import ledger_report
from leadflow.journey import DecisionKind, Stage
from leadflow.report import Dimension, quantile, report_period
from runtime.settings import DEMO_POLICY, REPO_ROOT, load_policy_file

DEMO_LEADS = 12


def _leadflow(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def readme_example() -> list[list[str]]:
    """The commands of the README's report example, as argument lists (without ``leadflow``)."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- report example: tests/test_report.py runs these commands -->", 1)[1]
    block = block.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.strip().splitlines()]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """A ledger written by real journeys: the README's ``leadflow demo --data-dir`` on its own dev server."""
    folder = tmp_path_factory.mktemp("demo")
    demo_command, _ = readme_example()
    assert demo_command == ["leadflow", "demo", "--data-dir", "demo-data"]
    demo = _leadflow("demo", "--leads", str(DEMO_LEADS), "--json", "--verbose", "--data-dir", str(folder))
    assert demo.returncode == 0, demo.stderr[-2000:]
    return folder, demo


@pytest.fixture(scope="module")
def demo_ledger(demo_run) -> Path:
    return demo_run[0]


def test_leadflow_demo_drives_every_lead_to_an_outcome(demo_run):
    from cli.demo import synthetic_leads

    _, demo = demo_run
    # No PII in what the worker logged: not one email, name or phone of the people it submitted.
    assert "routing lead=" in demo.stderr
    for person in synthetic_leads(DEMO_LEADS, 7):
        for value in (person.lead.email, person.lead.first_name, person.lead.last_name, person.lead.phone):
            assert value and value not in demo.stderr + demo.stdout, "PII in the demo's output or logs"
    summary = json.loads(demo.stdout)
    assert summary["leads"] == DEMO_LEADS
    assert sum(summary["outcomes"].values()) == DEMO_LEADS and "unfinished" not in summary["outcomes"]
    # The scripted slow and absent reps make SLAs breach, escalate and reassign for real.
    assert summary["escalations"] >= 1 and summary["reassignments"] >= 1
    assert summary["sla_by_tier"]["hot"]["met"] >= 1


def test_the_readme_report_example_runs(demo_ledger, tmp_path):
    _, report_command = readme_example()
    assert report_command[:2] == ["LEADFLOW_DATA_DIR=demo-data", "leadflow"]
    args = [arg.replace("report.html", str(tmp_path / "report.html")) for arg in report_command[2:]]
    result = _leadflow(*args, env={"LEADFLOW_DATA_DIR": str(demo_ledger)})
    assert result.returncode == 0, result.stderr
    assert f"total           │    {DEMO_LEADS} │" in result.stdout and (tmp_path / "report.html").is_file()


def _rows(folder: Path) -> tuple[list, list]:
    ledger = Ledger(f"sqlite:///{folder / 'ledger.db'}")
    with ledger.engine.connect() as conn:
        events = list(conn.execute(select(journey_events)).mappings())
        settled = list(conn.execute(select(sla_settlements)).mappings())
    ledger.dispose()
    return events, settled


pytestmark = pytest.mark.devserver


def test_the_report_of_a_demo_ledger_matches_counts_made_from_its_tables(demo_ledger, tmp_path):
    today = datetime.now(timezone.utc).date().isoformat()
    env = {"LEADFLOW_DATA_DIR": str(demo_ledger)}
    result = _leadflow("report", "--since", today, "--until", today, "--json", "--html", str(tmp_path / "report.html"),
                       env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    events, settled = _rows(demo_ledger)
    kinds = Counter(row["kind"] for row in events)

    total = report["funnel"]["total"]
    assert total["leads"] == kinds["created"] == DEMO_LEADS
    assert total["mql"] == kinds["mql"]
    # Per MQL episode: converted and SQL episodes, counted here from the decisions.
    assert total["sql"] == kinds["qualified"] and total["converted"] == kinds["converted"]
    assert sum(source["mql"] for source in report["funnel"]["by_source"].values()) == total["mql"]
    assert report["policy_version"] == load_policy_file(DEMO_POLICY).version  # the demo rolled its policy out

    # SLA attainment per clock and tier: the settlements the workers recorded.
    for clock, tiers in report["sla"].items():
        for tier, figures in tiers.items():
            mine = Counter(row["outcome"] for row in settled if row["clock"] == clock and row["tier"] == tier)
            assert (figures["met"], figures["missed"]) == (mine["met"], mine["missed"]), (clock, tier)
            assert figures["attainment"] == pytest.approx(mine["met"] / (mine["met"] + mine["missed"]))
    first_contacts = [row for row in events if row["kind"] == "first_contact"]
    met_here = sum(bool(row["detail"]["met"]) for row in first_contacts)
    assert sum(tier["met"] for tier in report["sla"]["first_contact"].values()) == met_here
    # Time to first contact: the same samples, the same estimator.
    hours = [row["detail"]["business_seconds"] / 3600 for row in first_contacts]
    assert report["ttfc_hours"]["n"] == len(hours) > 0
    assert report["ttfc_hours"]["p50"] == pytest.approx(quantile(hours, 0.5))
    assert report["ttfc_hours"]["p90"] == pytest.approx(quantile(hours, 0.9))
    # Losses: disqualify reasons by source.
    disqualified = Counter(row["detail"]["reason"] for row in events if row["kind"] == "disqualified")
    reported = Counter()
    for reasons in report["losses"]["disqualified"].values():
        reported.update(reasons)
    assert reported == disqualified
    escalations = sum(team["escalations"] for team in report["escalations"]["by_team"].values())
    assert escalations == kinds["escalated"] >= 1
    assert sum(team["reassignments"] for team in report["escalations"]["by_team"].values()) == kinds["reassigned"]
    week = next(iter(report["commitments"]["mql_per_week"].values()))
    assert week["committed"] == round(40 * week["days"] / 7) and week["delivered"] == kinds["mql"]

    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") >= 3  # funnel by source, weekly attainment, delay split (text is drawn as paths)
    for heading in ("Funnel", "Sales: first-contact SLA by week", "Where the time to first contact goes",
                    "Marketing: MQLs delivered against the commitment", "Why leads were lost"):
        assert f"<h2>{heading}</h2>" in page
    assert f"{today} to {today}" in page


def test_an_empty_period_and_bad_input(demo_ledger):
    env = {"LEADFLOW_DATA_DIR": str(demo_ledger)}
    empty = _leadflow("report", "--since", "2020-01-01", "--until", "2020-01-31", "--json", env=env)
    assert empty.returncode == 0, empty.stderr
    report = json.loads(empty.stdout)
    assert report["funnel"]["total"]["leads"] == 0 and report["ttfc_hours"]["n"] == 0
    assert all(not tiers for tiers in report["sla"].values())
    for args, message in ((("--since", "yesterday"), "--since 'yesterday' is not a date: give YYYY-MM-DD"),
                          (("--since", "2026-12-05", "--until", "2026-12-01"), "is after until")):
        bad = _leadflow("report", *args, env=env)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_a_period_with_one_lead(ledger_url):
    """A hand-made ledger row set of one lead (the fold itself, without a server), on SQLite and PostgreSQL."""
    policy = load_policy_file(DEMO_POLICY)
    ledger = Ledger(ledger_url)
    ledger.create_schema()
    at = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    rows = [
        (1, DecisionKind.CREATED, {"source": "webinar", "fit": 40.0, "territory": "NA", "segment": "smb", "policy_version": "demo-1"}),
        (2, DecisionKind.MQL, {"reason": "engaged", "fit": 40.0, "engagement": 30.0}),
        (3, DecisionKind.ASSIGNED, {"step": 1, "team": "na-sales", "on_shift": True, "reassigned": False}),
        (4, DecisionKind.ACCEPTED, {"by": "rep-ana"}),
        (5, DecisionKind.ATTEMPT, {"by": "rep-ana", "outcome": "connected", "attempt": 1}),
        (6, DecisionKind.FIRST_CONTACT, {"wall_seconds": 1800.0, "business_seconds": 1800.0, "met": True}),
    ]
    with ledger.transaction() as conn:
        conn.execute(journey_events.insert(), [
            {"event_key": f"j:{seq}", "journey_id": "j", "lead_id": "L1", "workflow_id": "lead-L1", "seq": seq,
             "kind": str(kind), "stage": str(Stage.ASSIGNED), "owner_id": "rep-ana" if seq >= 3 else None, "tier": "hot",
             "at": at + timedelta(minutes=10 * seq if seq >= 3 else 0), "detail": detail, "policy_version": "demo-1"}
            for seq, kind, detail in rows])
        conn.execute(sla_settlements.insert(), [{"journey_id": "j", "seq": 6, "clock": "first_contact", "lead_id": "L1",
                                                 "tier": "hot", "outcome": "met", "at": at + timedelta(minutes=60)}])
    start, end = report_period(date(2026, 12, 1), date(2026, 12, 1), date(2026, 12, 5))
    report = ledger_report(ledger, policy, start, end, Dimension.TEAM)
    ledger.dispose()
    total = report.funnel["total"]
    assert (total.leads, total.mql, total.accepted, total.sql) == (1, 1, 1, 0)
    assert report.funnel["by_team"]["na-sales"].mql == 1
    assert report.sla["first_contact"]["hot"].attainment == 1.0
    assert report.ttfc_hours.n == 1 and report.ttfc_hours.p50 == pytest.approx(0.5)
    # Systems delay: MQL at 10:00, assigned 10:30 (business time: the demo calendar never closes).
    assert report.ttfc_hours.systems.p50 == pytest.approx(0.5) and report.ttfc_hours.human.p50 == pytest.approx(0.0)


def test_ten_thousand_journeys_report_on_sqlite(tmp_path):
    """The report over 10,000 journeys is right, and the time it took is printed (``-s``): a
    figure for the README, not an assertion, since a busy machine is not a slow report."""
    policy = load_policy_file(DEMO_POLICY)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.create_schema()
    start = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)
    events, settled = [], []
    sources = ("webinar", "paid_search", "organic", "demo_request")
    for n in range(10_000):
        at = start + timedelta(minutes=4 * n)
        journey = f"j{n}"
        script = [(DecisionKind.CREATED, {"source": sources[n % 4], "fit": 40.0, "territory": "NA", "segment": "smb",
                                          "policy_version": "demo-1"}),
                  (DecisionKind.MQL, {"reason": "engaged"}),
                  (DecisionKind.ASSIGNED, {"step": 1, "team": "na-sales", "on_shift": True, "reassigned": False}),
                  (DecisionKind.ATTEMPT, {"by": "rep-ana", "outcome": "no_answer", "attempt": 1}),
                  (DecisionKind.FIRST_CONTACT, {"wall_seconds": 600.0 + n, "business_seconds": 600.0 + n, "met": n % 3 > 0}),
                  (DecisionKind.DISQUALIFIED, {"by": "rep-ana", "reason": "no_budget"})]
        for seq, (kind, detail) in enumerate(script, start=1):
            events.append({"event_key": f"{journey}:{seq}", "journey_id": journey, "lead_id": f"L{n}", "workflow_id": f"lead-L{n}",
                           "seq": seq, "kind": str(kind), "stage": "WORKING", "owner_id": "rep-ana" if seq >= 3 else None,
                           "tier": "hot", "at": at + timedelta(seconds=seq), "detail": detail, "policy_version": "demo-1"})
        settled.append({"journey_id": journey, "seq": 5, "clock": "first_contact", "lead_id": f"L{n}", "tier": "hot",
                        "outcome": "met" if n % 3 else "missed", "at": at + timedelta(seconds=5)})
    with ledger.transaction() as conn:
        conn.execute(journey_events.insert(), events)
        conn.execute(sla_settlements.insert(), settled)
    began = time.perf_counter()
    report = ledger_report(ledger, policy, start, start + timedelta(days=30), Dimension.WEEK)
    seconds = time.perf_counter() - began
    ledger.dispose()
    print(f"report over 10,000 journeys (60,000 decisions) on SQLite: {seconds:.2f} s")
    assert report.funnel["total"].leads == 10_000 and report.funnel["total"].mql == 10_000
    assert report.sla["first_contact"]["hot"].missed == 3_334
    assert report.attempts.dispositioned == 10_000 and report.attempts.below_minimum == 10_000


def test_the_api_serves_the_same_report(demo_ledger):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.auth import Tokens
    from runtime.settings import Settings

    settings = Settings(data_dir=demo_ledger, policy_path=DEMO_POLICY)
    token = "r" * 24
    app = create_app(settings, client=object(), tokens=Tokens.parse(f"{token}:read", "test"))
    today = datetime.now(timezone.utc).date().isoformat()
    with TestClient(app) as http:
        answer = http.get("/v1/reports/sla", params={"since": today, "until": today, "by": "tier"},
                          headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["funnel"]["total"]["leads"] == DEMO_LEADS and "by_tier" in body["funnel"]
        bad = http.get("/v1/reports/sla", params={"since": "2026-12-05", "until": "2026-12-01"},
                       headers={"Authorization": f"Bearer {token}"})
        assert bad.status_code == 422 and "is after until" in bad.text
        for params in ({"until": "9999-12-31"}, {"since": "1900-01-01"}, {"until": "2026-02-30"}):
            out_of_range = http.get("/v1/reports/sla", params=params, headers={"Authorization": f"Bearer {token}"})
            assert out_of_range.status_code == 422, (params, out_of_range.text)
        refused = http.get("/v1/reports/sla")
        assert refused.status_code == 401
    cli = _leadflow("report", "--since", today, "--until", today, "--by", "tier", "--json",
                    env={"LEADFLOW_DATA_DIR": str(demo_ledger)})
    assert json.loads(cli.stdout)["funnel"] == body["funnel"]


def test_rejections_and_the_acceptance_rate_marketing_committed_to(ledger_url):
    """Two MQLs: sales accepts one and rejects the other back to marketing (SQLite and PostgreSQL)."""
    policy = load_policy_file(DEMO_POLICY)
    ledger = Ledger(ledger_url)
    ledger.create_schema()
    at = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    created = {"source": "webinar", "fit": 40.0, "territory": "NA", "segment": "smb", "policy_version": "demo-1"}
    scripts = {
        "L1": [(DecisionKind.CREATED, created), (DecisionKind.MQL, {}), (DecisionKind.ASSIGNED, {"step": 1}),
               (DecisionKind.ACCEPTED, {"by": "rep-ana"})],
        "L2": [(DecisionKind.CREATED, created), (DecisionKind.MQL, {}), (DecisionKind.ASSIGNED, {"step": 1}),
               (DecisionKind.REJECTED, {"by": "rep-ana", "reason": "not_icp"})],
    }
    with ledger.transaction() as conn:
        conn.execute(journey_events.insert(), [
            {"event_key": f"{lead}:{seq}", "journey_id": f"j-{lead}", "lead_id": lead, "workflow_id": f"lead-{lead}",
             "seq": seq, "kind": str(kind), "stage": "ASSIGNED", "owner_id": "rep-ana" if seq >= 3 else None, "tier": "hot",
             "at": at + timedelta(minutes=seq), "detail": detail, "policy_version": "demo-1"}
            for lead, script in scripts.items() for seq, (kind, detail) in enumerate(script, start=1)])
    start, end = report_period(date(2026, 12, 1), date(2026, 12, 1), date(2026, 12, 5))
    report = ledger_report(ledger, policy, start, end)
    ledger.dispose()
    assert report.rejections == {"not_icp": 1}
    assert (report.commitments.acceptance_rate.met, report.commitments.acceptance_rate.missed) == (1, 1)
    assert report.commitments.acceptance_rate.attainment == 0.5 and report.commitments.min_acceptance_rate == 0.8
    assert report.funnel["total"].accepted == 1


def test_a_simulation_prints_the_same_report_shape():
    """``leadflow simulate … --report --json``: the ledger report's shape, from one replication."""
    from leadflow.report import SlaReport

    simulated = _leadflow("simulate", "baseline", "--report", "--json", "--by", "week", timeout=120)
    assert simulated.returncode == 0, simulated.stderr
    report = SlaReport.model_validate_json(simulated.stdout)
    assert set(json.loads(simulated.stdout)) == set(SlaReport.model_fields)
    assert report.by is Dimension.WEEK and "by_week" in report.funnel and "by_source" in report.funnel
    total = report.funnel["total"]
    assert total.leads > 300 and 0 < total.sql <= total.accepted <= total.mql
    hot = report.sla["first_contact"]["hot"]
    assert hot.met + hot.missed > 100 and 0 < hot.attainment < 1
    assert report.ttfc_hours.n > 100 and report.ttfc_hours.p50 < report.ttfc_hours.p90
    assert all(week.committed == 50 for week in report.commitments.mql_per_week.values())


def test_escalations_go_to_the_rep_who_held_the_lead(policy):
    """A hot lead nobody touches: breached, reassigned twice, then queued. Each rep had it in turn."""
    from leadflow.report import LoggedDecision, sla_report
    from simulation.scripted import ScriptedModel
    from tests.journey_helpers import hot_lead

    start = datetime(2026, 11, 17, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 in New York
    model = ScriptedModel(policy, start)
    model.submit("ignored", hot_lead("ignored@report.io"), start)
    traces = model.run_until(start + timedelta(days=2))
    entries = traces["ignored"]
    owners = [entry.owner_id for entry in entries if entry.kind is DecisionKind.ASSIGNED]
    assert len(owners) == 3 and len(set(owners)) == 3
    report = sla_report([LoggedDecision("L", "j", entry) for entry in entries], [], [], policy,
                        start - timedelta(days=1), start + timedelta(days=3))
    by_rep = report.escalations["by_rep"]
    assert sum(item.escalations for item in by_rep.values()) == sum(e.kind is DecisionKind.ESCALATED for e in entries)
    assert [by_rep[owner].reassignments for owner in owners] == [1, 1, 0]
    assert len({by_rep[owner].escalations for owner in owners}) == 1  # the same script for each: the same count
    assert set(by_rep) == set(owners)


def test_weeks_the_period_cuts_are_held_to_a_pro_rata_commitment(policy):
    from leadflow.report import sla_report

    since, until = report_period(date(2026, 11, 8), date(2026, 12, 5), date(2026, 12, 5))
    weeks = sla_report([], [], [], policy, since, until).commitments.mql_per_week
    assert (weeks["2026-W45"].days, weeks["2026-W45"].committed) == (1, round(50 / 7))
    assert (weeks["2026-W46"].days, weeks["2026-W46"].committed) == (7, 50)
    assert weeks["2026-W49"].days == 6


def test_a_report_period_out_of_range_is_a_clear_error():
    from leadflow.report import PeriodError

    for since, until, problem in ((None, date(9999, 12, 31), "past the last day"),
                                  (date(1900, 1, 1), date(2026, 1, 1), "more than 10 years")):
        with pytest.raises(PeriodError, match=problem):
            report_period(since, until, date(2026, 12, 5))
