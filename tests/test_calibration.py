"""Calibration (``leadflow calibrate``): parameters recovered from histories drawn from known
parameters, outside histories read as the core's decision log, and bad input refused."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from statistics import NormalDist

import pytest

from activities.contracts import LeadProjection, LedgerBatch
from activities.ledger import Ledger
from activities.ledger_history import ledger_history
from leadflow.journey import Stage
from runtime.settings import DEFAULT_POLICY, REPO_ROOT, SCENARIOS_DIR, load_policy_file
from simulation.backtest import figures
from simulation.calibration import calibrate
from simulation.closed_loop import simulated_report
from simulation.crm_history import HistoryError
from simulation.example_export import _Recorded, write_example_export
from simulation.history_source import load_file_history
from simulation.scenario import load_scenario
from tests.salesforce_truth import ExportTruth, write_export

TRUTH = ExportTruth()


@pytest.fixture(scope="module")
def salesforce_calibration(tmp_path_factory):
    folder = write_export(tmp_path_factory.mktemp("sf"), load_policy_file(DEFAULT_POLICY), TRUTH, seed=1)
    history = load_file_history(str(folder), load_policy_file(DEFAULT_POLICY), None, None, folder / "mapping.yaml")
    return calibrate(history)


def _fitted(calibration, name):
    found = [item for item in calibration.fitted if item.name == name]
    assert found, f"{name} was not fitted; fitted: {[item.name for item in calibration.fitted]}"
    return found[0]


class Recovery:
    """Checks of many recovered parameters at once, against their stated 95% intervals held
    to a family-wise 5% (Bonferroni: each half-width stretched from z = 1.96 to the z of
    0.05 / (2 * checks)), so one test of twenty parameters does not fail one run in three by chance.
    A parameter outside is reported with its stated interval."""

    def __init__(self, calibration, checks: int):
        self.calibration = calibration
        self.stretch = NormalDist().inv_cdf(1 - 0.025 / checks) / NormalDist().inv_cdf(0.975)
        self.checks = checks
        self.done = 0

    def within(self, name: str, truth: float) -> None:
        item = _fitted(self.calibration, name)
        low, high = item.ci95
        wide_low = item.value - (item.value - low) * self.stretch
        wide_high = item.value + (high - item.value) * self.stretch
        self.done += 1
        assert wide_low <= truth <= wide_high, (
            f"{name}: truth {truth} outside {item.value:.4g} (95%: {low:.4g} .. {high:.4g}; family-wise "
            f"{wide_low:.4g} .. {wide_high:.4g}), n={item.n}")


def test_every_parameter_is_recovered_from_a_salesforce_export(salesforce_calibration):
    """An export drawn independently of the simulator: each value within its stated 95% interval."""
    fitted = salesforce_calibration
    check = Recovery(fitted, checks=37)
    check.within("population.leads_per_week", TRUTH.leads_per_week)
    mean_weekday = sum(TRUTH.weekday_profile) / 7
    for weekday, weight in enumerate(TRUTH.weekday_profile):
        check.within(f"population.weekday_profile[{weekday}]", weight / mean_weekday)
    campaign = next(item for item in fitted.fitted if item.name.startswith("population.campaigns."))
    assert campaign.name == f"population.campaigns.burst-{TRUTH.start + timedelta(days=TRUTH.burst_day)}.multiplier"
    assert campaign.extra["days"] == TRUTH.burst_days
    check.within(campaign.name, TRUTH.burst_multiplier)
    sources = {"Web": "organic", "Webinar": "webinar", "Advertisement": "paid_search", "Trade Show": "trade_show",
               "Phone Inquiry": "contact_request"}
    for name, share in TRUTH.sources.items():
        check.within(f"population.source_mix.{sources[name]}", share)
    for country, share in TRUTH.countries.items():
        check.within(f"population.countries.{country}", share)
    for title, share in TRUTH.titles.items():
        check.within(f"population.titles.{title}", share)
    for team, (mean, _) in TRUTH.reaction_minutes.items():
        check.within(f"behaviour.teams.{team}.reaction_minutes", mean)
        assert _fitted(fitted, f"behaviour.teams.{team}.reaction_minutes").goodness_of_fit["p_value"] > 0.01
    for team, (mean, _) in TRUTH.attempt_minutes.items():
        check.within(f"behaviour.teams.{team}.attempt_minutes", mean)
    check.within("behaviour.contact_rate [0, 1) h after MQL", TRUTH.contact_probability)
    for tier, rate in TRUTH.qualify.items():
        check.within(f"behaviour.qualify_rates.{tier}.*", rate)
    for tier in TRUTH.qualify:
        check.within(f"behaviour.convert_rates.{tier}.*", TRUTH.convert)
    check.within("behaviour.reject_probability", TRUTH.reject_probability)
    for reason, share in TRUTH.loss_reasons.items():
        check.within(f"behaviour.disqualify_reasons.{reason}", share)
    check.within("behaviour.decide_within_hours", TRUTH.decide_hours)
    check.within("behaviour.close_within_days", TRUTH.close_days)
    assert fitted.warnings == [] and check.done == check.checks


def test_every_fitted_value_says_how_it_was_estimated_and_from_how_much(salesforce_calibration):
    checked = 0
    for item in salesforce_calibration.fitted:
        shown = item.as_json()
        assert shown["n"] >= 0 and shown["method"]
        if shown["ci95"] is not None:
            low, high = item.ci95
            assert low - 1e-9 <= item.value <= high + 1e-9, (item.name, item.value, item.ci95)
            checked += 1
    assert checked > 50


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """Four weeks of the example team after its warm-up, exported as Salesforce would have it."""
    loaded = load_scenario(SCENARIOS_DIR / "example-history.yaml", horizon_days=84)
    folder = tmp_path_factory.mktemp("example")
    since, until = write_example_export(loaded, folder)
    return loaded, folder, since, until


def test_an_export_reads_back_the_closed_loop_report_of_the_journeys_that_made_it(example):
    loaded, folder, since, until = example
    history = load_file_history(str(folder), loaded.policy, since.date(), until.date(), folder / "mapping.yaml")
    tiers = [tier.name for tier in loaded.policy.tiers]
    actual, simulated = figures(history.report(), tiers), figures(simulated_report(loaded, loaded.scenario.seed), tiers)
    assert actual.keys() == simulated.keys()
    for metric, (value, count) in simulated.items():
        assert actual[metric][1] == count, metric
        if value is None:
            assert actual[metric][0] is None, metric
        else:  # the export keeps times to the second
            assert actual[metric][0] == pytest.approx(value, abs=1e-3), metric


@pytest.fixture(scope="module")
def example_journeys(example):
    """The example team's journeys, simulated once for both ledgers."""
    loaded = example[0]
    model = _Recorded(loaded, loaded.scenario.seed)
    model.run()
    return model


def test_parameters_are_recovered_from_a_ledger_of_simulated_journeys(example, example_journeys, ledger_url):
    """The example team's journeys written to a real ledger (SQLite and PostgreSQL) as the
    workers write them, then calibrated from the ledger."""
    loaded, _, since, until = example
    model = example_journeys
    ledger = Ledger(ledger_url)
    ledger.create_schema()
    try:
        ledger.register_policy(loaded.policy)
        for lead_id, entries in (model.traces or {}).items():
            last = entries[-1]
            ledger.apply(LedgerBatch(
                journey_id=lead_id, lead_id=lead_id, workflow_id=f"lead-{lead_id}", policy_version=loaded.policy.version,
                entries=entries, at=last.at, projection=LeadProjection(
                    lead_id=lead_id, journey_id=lead_id, workflow_id=f"lead-{lead_id}", stage=last.stage,
                    policy_version=loaded.policy.version, seq=last.seq, updated_at=last.at,
                    outcome="done" if last.stage in (Stage.CONVERTED, Stage.DISQUALIFIED) else None)))
        history = ledger_history(ledger_url, since.date(), until.date(), load_policy_file(DEFAULT_POLICY))
    finally:
        ledger.dispose()
    assert history.policy.version == loaded.policy.version and history.policy == loaded.policy  # the one live then
    fitted = calibrate(history)
    check = Recovery(fitted, checks=15)
    behaviour = loaded.scenario.behaviour
    check.within("population.leads_per_week", loaded.scenario.population.leads_per_week)
    for source, share in loaded.scenario.population.source_mix.items():
        check.within(f"population.source_mix.{source}", share)
    for team, team_behaviour in behaviour.teams.items():
        check.within(f"behaviour.teams.{team}.reaction_minutes", team_behaviour.reaction_minutes.mean)
        check.within(f"behaviour.teams.{team}.attempt_minutes", team_behaviour.attempt_minutes.mean)
    check.within("behaviour.teams.na-sales.reaction_minutes", behaviour.reaction_minutes.mean)
    check.within("behaviour.contact_rate [0, 1) h after MQL", behaviour.contact_probability)
    for tier, rates in behaviour.qualify_rates.items():
        check.within(f"behaviour.qualify_rates.{tier}.*", rates["*"])
    check.within("behaviour.reject_probability", behaviour.reject_probability)
    check.within("behaviour.decide_within_hours", behaviour.decide_within_hours.mean)
    assert check.done == check.checks
    assert any("countries" in warning and "personal data" in warning for warning in fitted.warnings)


EVENTS = """lead_id,at,kind,rep_id,outcome,duration_minutes,reason,tier,source,country,company_size,title,industry
A1,2026-03-03T14:00:00Z,created,,,,,,demo_request,US,500,VP Sales,software
A1,2026-03-03T14:00:00Z,mql,,,,,hot,,,,,
A1,2026-03-03T14:01:00Z,assigned,rep-ana,,,,,,,,,
A1,2026-03-03T14:20:00Z,attempt,rep-ana,no_answer,3.5,,,,,,,
A2,2026-03-03T15:00:00Z,created,,,,,,webinar,GB,50,Analyst,retail
A2,2026-03-03T15:00:00Z,mql,,,,,hot,,,,,
A2,2026-03-03T15:00:00Z,assigned,rep-elif,,,,,,,,,
A2,2026-03-04T15:00:00Z,attempt,rep-elif,connected,12,,,,,,,
A2,2026-03-04T16:00:00Z,disqualified,rep-elif,,,no_budget,,,,,,
"""


def test_a_generic_events_csv_is_judged_by_the_cores_first_contact_rule(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    history = load_file_history(str(path), load_policy_file(DEFAULT_POLICY), date(2026, 3, 2), date(2026, 3, 9))
    report = history.report()
    hot = report.sla["first_contact"]["hot"]
    assert (hot.met, hot.missed) == (1, 1)  # A1 called in 20 minutes; A2 a day later (hot: 1 business hour)
    assert report.funnel["total"].mql == 2 and report.losses["disqualified"]["webinar"]["no_budget"] == 1
    assert report.ttfc_hours.n == 2


@pytest.mark.parametrize("content, words", [
    ("lead_id,at\nA1,2026-03-03T14:00:00Z\n", ["missing column", "kind"]),
    ("lead_id,at,kind\nA1,2026-03-03T14:00:00Z,teleported\n", ["line 2", "teleported", "created"]),
    ("lead_id,at,kind\nA1,yesterday,created\n", ["line 2", "yesterday", "ISO 8601"]),
    ("lead_id,at,kind\nA1,2026-03-03T14:00:00,created\n", ["line 2", "UTC offset"]),
    ("lead_id,at,kind,duration_minutes\nA1,2026-03-03T14:00:00Z,attempt,-3\n", ["line 2", "duration_minutes"]),
    ("lead_id,at,kind,tier\nA1,2026-03-03T14:00:00Z,mql,platinum\n", ["A1", "platinum", "hot"]),
])
def test_a_bad_events_csv_is_one_clear_line(tmp_path, content, words):
    path = tmp_path / "events.csv"
    path.write_text(content)
    with pytest.raises(HistoryError) as raised:
        load_file_history(str(path), load_policy_file(DEFAULT_POLICY), None, None)
    message = str(raised.value)
    assert "\n" not in message
    for word in words:
        assert word.lower() in message.lower(), (word, message)


def _leadflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**__import__("os").environ, "PYTHONPATH": str(REPO_ROOT)})


def test_calibrate_writes_a_scenario_that_simulates_and_prints_every_value_as_json(example, tmp_path):
    _, folder, since, until = example
    out = tmp_path / "calibrated.yaml"
    done = _leadflow("calibrate", "--from", str(folder), "--mapping", str(folder / "mapping.yaml"), "--policy",
                     str(folder / "policy.yaml"), "--since", str(since.date()), "--until", str(until.date()),
                     "--out", str(out), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["scenario"] == str(out) and printed["leads"] > 0
    names = {item["name"] for item in printed["fitted"]}
    assert {"population.leads_per_week", "behaviour.reaction_minutes", "behaviour.engagement_per_week"} <= names
    assert all("n" in item and "ci95" in item and "method" in item for item in printed["fitted"])
    calibrated = load_scenario(out)  # a valid scenario, on the policy that was live
    assert calibrated.policy.routing.default_capacity == 60
    assert calibrated.scenario.start + timedelta(days=calibrated.scenario.warmup_days) == since.date()


def test_thin_data_is_a_warning_and_the_default_not_a_guess(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS)
    done = _leadflow("calibrate", "--from", str(path), "--out", str(tmp_path / "thin.yaml"), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    warnings = " ".join(printed["warnings"])
    for parameter in ("leads_per_week", "reaction_minutes", "engagement_per_week", "contact_probability"):
        assert parameter in warnings
    assert "default" in warnings
    scenario = (tmp_path / "thin.yaml").read_text()
    assert "reaction_minutes" not in scenario  # not fitted: the scenario keeps the documented default


def test_bad_calibrate_input_is_one_line_and_a_non_zero_exit(tmp_path):
    for args, words in (
        (["--from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.yaml")], ["not found", "Salesforce"]),
        (["--from", str(tmp_path), "--out", str(tmp_path / "x.yaml")], ["Lead.csv"]),
        (["--from", "ledger", "--since", "2026-13-01", "--out", str(tmp_path / "x.yaml")], ["--since", "YYYY-MM-DD"]),
    ):
        done = _leadflow("calibrate", *args, cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        for word in words:
            assert word.lower() in done.stderr.lower(), (word, done.stderr)


def test_backtest_prints_each_actual_beside_the_simulations_prediction_interval(example, tmp_path):
    """The example team's own scenario backtested against its export: the model is right by
    construction, so every actual lies inside; the JSON carries what the table shows."""
    loaded, folder, since, until = example
    done = _leadflow("backtest", str(SCENARIOS_DIR / "example-history.yaml"), "--against", str(folder), "--mapping",
                     str(folder / "mapping.yaml"), "--since", str(since.date()), "--until", str(until.date()),
                     "--replications", "6", "--workers", "2", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    rows = {row["metric"]: row for row in printed["rows"]}
    assert {"sla_attainment_hot", "ttfc_p50_business_hours", "ttfc_p90_business_hours", "mql", "sql",
            "mql_to_sql"} <= rows.keys()
    assert printed["since"].startswith(str(since.date())) and printed["replications"] == 6
    assert "prediction interval" in printed["interval_method"]
    assert printed["inside"] == printed["compared"] >= 6
    shown = _leadflow("backtest", str(SCENARIOS_DIR / "example-history.yaml"), "--against", str(folder), "--mapping",
                      str(folder / "mapping.yaml"), "--since", str(since.date()), "--until", str(until.date()),
                      "--replications", "2", cwd=tmp_path)
    assert "actual figures inside the simulation's 95% prediction interval" in shown.stdout
    assert "ttfc_p90 " in shown.stdout and "sla_attainment_hot" in shown.stdout
