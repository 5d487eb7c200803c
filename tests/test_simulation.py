"""The simulator: validation against queueing theory and Ciw, determinism, scenarios, CLI."""

from __future__ import annotations

import concurrent.futures
import copy
import gc
import json
import multiprocessing
import pickle
import random
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from leadflow.journey import DecisionKind
from leadflow.kpis import FunnelStep
from leadflow.lead import Lead, LeadSource
from runtime.settings import REPO_ROOT, SCENARIOS_DIR, bundled_names
from simulation.capacity import capacity, with_headcount
from simulation.compare import compare
from simulation.erlang import erlang_c, mean_wait, service_level
from simulation.memory import BehaviourStream, DormantJourney, collector_off
from simulation.mmc_reference import ciw_mmc
from simulation.model import JourneyModel
from simulation.runner import replication_seeds, simulate
from simulation.scenario import LoadedScenario, NurturesAtStart, ScenarioError, load_scenario
from simulation.statistics import estimate

MMC = SCENARIOS_DIR / "mmc-erlang.yaml"


def mmc_scenario(servers: int, arrival_rate: float, horizon_days: float, replications: int = 10,
                 warmup_days: float | None = None) -> LoadedScenario:
    """The M/M/c scenario (mean handling one hour) at another load and team size."""
    loaded = load_scenario(MMC, horizon_days=horizon_days, replications=replications, warmup_days=warmup_days)
    population = loaded.scenario.population.model_copy(update={"leads_per_week": arrival_rate * 168})
    scenario = loaded.scenario.model_copy(update={"population": population})
    return loaded.model_copy(update={"scenario": scenario, "policy": with_headcount(loaded.policy, servers)})


# Each load checks five Erlang figures at once, over four loads: twenty 95% intervals would
# miss about one true value by chance. Bonferroni: each interval is widened to the
# 1 - 0.05/20 level, so the whole family holds with 95% confidence.
ERLANG_CHECKS = 20


def family_interval(estimate, replications: int = 10, checks: int = ERLANG_CHECKS) -> tuple[float, float]:
    """The Student-t 95% interval of ``estimate`` widened to the Bonferroni level for ``checks``."""
    scale = scipy_stats.t.ppf(1 - 0.05 / (2 * checks), replications - 1) / scipy_stats.t.ppf(0.975, replications - 1)
    low, high = estimate.ci95
    half = (high - low) / 2 * scale
    return estimate.mean - half, estimate.mean + half


@pytest.mark.parametrize(
    ("servers", "arrival_rate", "horizon_days"),
    [(2, 1.0, 30), (3, 2.1, 20), (5, 4.5, 20), (3, 2.85, 60)],
    ids=["rho=0.5,c=2", "rho=0.7,c=3", "rho=0.9,c=5", "rho=0.95,c=3"],
)
def test_mmc_scenario_reproduces_erlang_c(servers, arrival_rate, horizon_days):
    result, _ = simulate(mmc_scenario(servers, arrival_rate, horizon_days), workers=2)
    # Served first come, first served from the waiting line: the whole distribution of
    # waits matches, not only P(wait) and the mean. P(W <= t) = 1 - C exp(-(c mu - lambda) t).
    # (Levels close to 1, such as 4 h at low load, are left out: most replications see no
    # wait that long, and a t interval over them says nothing.)
    for minutes in (15, 30, 60):
        low, high = family_interval(result.metrics[f"first_contact_within_{minutes}m"])
        expected = service_level(servers, arrival_rate, 1.0, minutes / 60)
        assert low <= expected <= high, (minutes, low, high, expected)
    # A lead meets the 3.6 s SLA exactly when a free rep takes it on arrival.
    met_low, met_high = family_interval(result.metrics["sla_attainment"])
    waited_low, waited_high = 1 - met_high, 1 - met_low
    assert waited_low <= erlang_c(servers, arrival_rate, 1.0) <= waited_high
    low, high = family_interval(result.metrics["ttfc_wall_mean"])
    assert low <= mean_wait(servers, arrival_rate, 1.0) <= high
    utilisation = result.metrics["rep_utilisation"].mean
    assert utilisation == pytest.approx(arrival_rate / servers, abs=0.05)
    # Sharp enough to matter: one rep more would be outside the interval.
    assert not (waited_low <= erlang_c(servers + 1, arrival_rate, 1.0) <= waited_high)


def test_simulator_and_ciw_agree_on_the_same_queue():
    servers, arrival_rate = 3, 2.1
    ours, _ = simulate(mmc_scenario(servers, arrival_rate, horizon_days=12), workers=2)
    theirs = [ciw_mmc(arrival_rate, 1.0, servers, customers=600, seed=seed, warmup=100) for seed in range(10)]
    ciw_wait = estimate([run.mean_wait for run in theirs])
    ciw_waited = estimate([run.waited_fraction for run in theirs])
    our_waited = ours.metrics["sla_attainment"]
    our_waited = our_waited.model_copy(update={"mean": 1 - our_waited.mean, "ci95": (1 - our_waited.ci95[1], 1 - our_waited.ci95[0])})
    assert agree(ours.metrics["ttfc_wall_mean"], ciw_wait)
    assert agree(our_waited, ciw_waited)
    # Both are right, too: each interval holds Erlang C.
    assert ciw_waited.ci95[0] <= erlang_c(servers, arrival_rate, 1.0) <= ciw_waited.ci95[1]


def agree(first, second) -> bool:
    """The 95% interval of the difference of two independent estimates contains zero."""
    half = lambda estimate: (estimate.ci95[1] - estimate.ci95[0]) / 2  # noqa: E731
    return abs(first.mean - second.mean) <= (half(first) ** 2 + half(second) ** 2) ** 0.5


@pytest.fixture(scope="module")
def small_baseline() -> LoadedScenario:
    return load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=14, warmup_days=3, replications=3)


def test_same_seed_gives_identical_results_whatever_the_workers(small_baseline):
    serial, _ = simulate(small_baseline, workers=1)
    parallel, _ = simulate(small_baseline, workers=2)
    assert serial.metrics == parallel.metrics
    assert serial.distributions == parallel.distributions
    assert serial.leads_simulated == parallel.leads_simulated > 0
    other_seed, _ = simulate(small_baseline, seed=small_baseline.scenario.seed + 1, workers=2)
    assert other_seed.metrics != serial.metrics


class _NeedsTheLock:
    """Garbage whose finaliser takes a lock: what a Temporal client, a logger or a web server
    may leave behind in a process with threads."""

    def __init__(self, lock: threading.Lock):
        self.lock, self.cycle = lock, self  # only the garbage collector frees it

    def __del__(self):
        with self.lock:
            pass


def test_worker_processes_do_not_inherit_the_callers_threads_locks(small_baseline):
    """A caller with a thread holding a lock at the moment worker processes start: a forked
    worker inherited the lock held and the garbage its finaliser needed, and hung in the
    collection that starts a replication (seen under a test runner with threads; the same
    holds for ``simulate --from-ledger``, which has the Temporal client's threads)."""
    lock, held, release = threading.Lock(), threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            release.wait()

    gc.disable()  # this process must not collect the garbage while the lock is held
    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    held.wait()
    _NeedsTheLock(lock)
    caller = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    run = caller.submit(simulate, small_baseline, workers=2)
    try:
        result, _ = run.result(timeout=120)
        assert result.leads_simulated > 0
    except concurrent.futures.TimeoutError:
        for child in multiprocessing.active_children():
            child.kill()
        pytest.fail("a worker process hung on a lock the caller's thread held when it started")
    finally:
        release.set()
        thread.join()
        caller.shutdown(wait=False)
        gc.enable()
        gc.collect()


def test_replications_draw_independent_streams():
    seeds = {replication_seeds(7, replication) for replication in range(50)}
    assert len(seeds) == 50
    assert replication_seeds(7, 3) == replication_seeds(7, 3)


def test_comparing_a_scenario_with_itself_shows_no_difference(small_baseline):
    result = compare(small_baseline, small_baseline)
    assert result.differences["sla_attainment"].difference.mean == 0
    assert not any(diff.significant for diff in result.differences.values())


def test_a_faster_hot_sla_is_harder_to_meet_on_the_same_leads():
    # Started empty: what is compared is the SLA on the same new leads (the steady start is
    # tested on its own, tests/test_steady_start.py).
    today, faster = (load_scenario(SCENARIOS_DIR / name, horizon_days=14, warmup_days=3, replications=3,
                                   nurtures_at_start=NurturesAtStart.NONE)
                     for name in ("baseline.yaml", "faster-hot-sla.yaml"))
    result = compare(today, faster, replications=6, workers=2)
    hot = result.differences["sla_attainment_hot"]
    # One metric chosen in advance: its own interval, not Holm's correction over all thirty.
    # Reps now put hot leads first when their clock is tighter, so the drop is smaller than
    # the SLA alone would suggest, but still there.
    assert hot.difference.ci95[1] < 0
    # Common random numbers: both saw exactly the same arrivals.
    assert result.a.metrics["leads"].mean == result.b.metrics["leads"].mean


def test_q4_surge_has_more_leads_and_longer_queues():
    surge = load_scenario(SCENARIOS_DIR / "q4-surge.yaml", horizon_days=28, warmup_days=3, replications=3)
    # the burst moved into this shorter run: week 3 of it, as in the scenario's measured weeks
    population = surge.scenario.population
    burst = [campaign.model_copy(update={"start_day": 14}) for campaign in population.campaigns]
    surge = surge.model_copy(update={"scenario": surge.scenario.model_copy(
        update={"population": population.model_copy(update={"campaigns": burst})})})
    base = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=28, warmup_days=3, replications=3,
                         start=surge.scenario.start)
    assert len(surge.policy.reps) == len(base.policy.reps) - 2
    result = compare(base, surge, replications=6, workers=2)  # enough pairs for Holm over every metric
    assert result.differences["leads"].difference.mean > 0
    assert result.differences["queue_depth_max"].significant and result.differences["queue_depth_max"].difference.mean > 0


def test_synthetic_people_are_named_only_when_traces_are_kept(small_baseline):
    plain = JourneyModel(small_baseline, replication_seeds(1, 0))
    traced = JourneyModel(small_baseline, replication_seeds(1, 0), keep_traces=True)
    first, second = plain.people.person(7, plain.start, 0.0), traced.people.person(7, traced.start, 0.0)
    assert first.lead.first_name is None and first.lead.company is None
    assert second.lead.first_name and second.lead.company and second.lead.email != first.lead.email
    # the same person otherwise: names take no draw of their own
    assert (first.lead.title, first.lead.country, first.intent, first.behaviour_seed) == (
        second.lead.title, second.lead.country, second.intent, second.behaviour_seed)
    assert plain.run().metrics() == traced.run().metrics()


def test_the_journey_runs_through_the_cores_decisions(small_baseline):
    model = JourneyModel(small_baseline, replication_seeds(1, 0), keep_traces=True)
    model.run()
    kinds = {entry.kind for trace in model.traces.values() for entry in trace}
    assert {DecisionKind.CREATED, DecisionKind.MQL, DecisionKind.ASSIGNED, DecisionKind.ATTEMPT,
            DecisionKind.FIRST_CONTACT, DecisionKind.QUALIFIED, DecisionKind.BREACH} <= kinds
    for trace in model.traces.values():
        assert [entry.seq for entry in trace] == list(range(1, len(trace) + 1))
        stages = [entry.stage for entry in trace]
        if "SQL" in stages:  # every SQL went through ACCEPTED/WORKING first
            assert "WORKING" in stages[: stages.index("SQL")]


def test_capacity_finds_the_smallest_team_meeting_the_target():
    loaded = mmc_scenario(servers=3, arrival_rate=2.1, horizon_days=6, replications=4)
    result = capacity(loaded, target=0.6, metric="sla_attainment", smallest=2, largest=8, workers=2)
    assert result.smallest_meeting_target is not None
    by_headcount = {point.headcount: point for point in result.curve}
    chosen = result.smallest_meeting_target
    assert by_headcount[chosen].meets_target
    assert chosen - 1 not in by_headcount or not by_headcount[chosen - 1].meets_target
    # Theory agrees: with c reps, 1 - ErlangC is the share served at once.
    assert 1 - erlang_c(chosen, 2.1, 1.0) >= 0.55


def test_a_bad_scenario_names_the_field(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npolicy: ../nowhere.yaml\npopulation: {leads_per_week: -3}\n")
    with pytest.raises(ScenarioError) as error:
        load_scenario(bad)
    assert "population.leads_per_week" in str(error.value.problems)
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        f"name: x\npolicy: {SCENARIOS_DIR / 'policy.yaml'}\npolicy_changes: {{tiers: {{scorching: {{accept_within_hours: 1}}}}}}\n"
        "population: {leads_per_week: 10}\n"
    )
    with pytest.raises(ScenarioError, match="policy_changes.tiers.scorching"):
        load_scenario(changed)


def test_simulate_command_prints_the_documented_json(tmp_path: Path):
    report = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, "-m", "cli.main", "simulate", str(SCENARIOS_DIR / "baseline.yaml"), "--replications", "2",
         "--seed", "5", "--json", "--html", str(report)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert set(summary) >= {"scenario", "replications", "leads_simulated", "wall_seconds", "metrics"}
    assert summary["replications"] == 2 and summary["scenario"] == "baseline"
    for name in ("sla_attainment", "sla_attainment_hot", "ttfc_p50", "ttfc_p90", "ttfc_p99", "ttfc_wall_p50", "breaches",
                 "escalations", "reassignments", "queue_depth_max", "queue_depth_mean", "rep_utilisation", "mql", "sql",
                 "mql_to_sql", "attempts_per_lead", "recycled"):
        low, high = summary["metrics"][name]["ci95"]
        assert low <= summary["metrics"][name]["mean"] <= high, name
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 2


def test_a_bad_scenario_is_one_line_and_a_non_zero_exit(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\npolicy: policy.yaml\npopulation: {leads_per_week: 0}\nreplications: 1\n")
    run = subprocess.run([sys.executable, "-m", "cli.main", "simulate", str(bad)], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.startswith("error: invalid scenario") and "leads_per_week" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(("args", "code", "says"), [
    (["capacity", "baseline", "--metric", "nosuch", "--target", "3", "-r", "2"], 2, "unknown metric 'nosuch'"),
    (["capacity", "baseline", "--target-sla", "0.8", "--min", "10", "--max", "5", "-r", "2"], 2, "--max 5 is below --min 10"),
    (["simulate", "baseline", "--by", "rep", "-r", "2"], 1, "--by goes with --report"),
])
def test_options_that_cannot_work_are_refused_before_simulating(args: list[str], code: int, says: str, tmp_path: Path):
    run = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=60,
                         env={"COLUMNS": "400", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=REPO_ROOT)
    assert run.returncode == code
    assert says in " ".join(run.stderr.split()) and "Traceback" not in run.stderr
    assert "searching headcount" not in run.stderr + run.stdout and not run.stdout  # nothing was simulated


def test_a_clock_that_never_runs_has_no_attainment_rather_than_zero():
    # The M/M/c scenario makes one attempt that always connects: no follow-up window ever
    # opens, so there is no follow-up attainment to report (not 0%); acceptance windows run.
    loaded = load_scenario(SCENARIOS_DIR / "mmc-erlang.yaml", horizon_days=10, warmup_days=1, replications=2)
    result, _ = simulate(loaded, seed=3)
    assert "sla_attainment_follow_up" not in result.metrics
    assert result.metrics["sla_attainment_acceptance"].mean > 0


def test_overlapping_campaigns_multiply_the_arrival_rate():
    import random
    from datetime import datetime, timezone

    from simulation.population import Arrivals
    from simulation.scenario import Campaign, Population

    flat = Population(
        leads_per_week=168, weekday_profile=[1] * 7, hour_profile=[1] * 24,
        campaigns=[Campaign(start_day=0, days=10, multiplier=2), Campaign(start_day=0, days=10, multiplier=2)],
    )
    arrivals = Arrivals(flat, datetime(2026, 1, 5, tzinfo=timezone.utc), "UTC", random.Random(4))
    count, hours = 0, 0.0
    while True:
        hours = arrivals.next_after(hours)
        if hours >= 240:
            break
        count += 1
    assert count == pytest.approx(4 * 240, rel=0.1)  # 1 an hour, twice doubled


def test_absences_keep_reps_out_of_routing(tmp_path: Path):
    text = (SCENARIOS_DIR / "baseline.yaml").read_text()
    path = tmp_path / "absent.yaml"
    path.write_text(text.replace("policy: policy.yaml", f"policy: {SCENARIOS_DIR / 'policy.yaml'}")
                    + "absences:\n  - {rep: rep-ana, start_day: 0, days: 35}\n")
    loaded = load_scenario(path, horizon_days=10, warmup_days=2)
    ana = next(rep for rep in loaded.policy.reps if rep.id == "rep-ana")
    assert ana.out_of_office and ana.out_of_office[0].start == loaded.scenario.start
    model = JourneyModel(loaded, replication_seeds(1, 0), keep_traces=True)
    model.run()
    # nobody routes a lead to her while she is away (what she owned before stays hers); her
    # absence starts at midnight where she works
    away_from = datetime.combine(ana.out_of_office[0].start, time(0, 0), tzinfo=ana.hours.zone)
    assigned = {entry.owner_id for trace in model.traces.values() for entry in trace
                if entry.kind is DecisionKind.ASSIGNED and entry.at >= away_from}
    assert "rep-ana" not in assigned and len(assigned - {None}) >= 3


def test_disqualify_reasons_must_be_policy_reason_codes(tmp_path: Path):
    path = tmp_path / "reasons.yaml"
    path.write_text(f"extends: {SCENARIOS_DIR / 'baseline.yaml'}\nbehaviour:\n  disqualify_reasons: {{bad_timing: 1}}\n")
    with pytest.raises(ScenarioError, match="'bad_timing' not in the policy's reason codes"):
        load_scenario(path)


def test_reject_reasons_must_be_policy_reject_codes_when_reps_reject(tmp_path: Path):
    # A reason the core refuses would be a reject silently not made: the scenario says so at load.
    path = tmp_path / "rejects.yaml"
    path.write_text(f"extends: {SCENARIOS_DIR / 'baseline.yaml'}\nbehaviour:\n  reject_probability: 0.1\n"
                    "  reject_reasons: {not_icp: 1, ' no_intent': 1}\n")
    with pytest.raises(ScenarioError, match="behaviour.reject_reasons: ' no_intent' not in the policy's reject codes"):
        load_scenario(path)
    never = tmp_path / "never.yaml"  # reps who never reject: their reasons are never used
    never.write_text(f"extends: {SCENARIOS_DIR / 'baseline.yaml'}\nbehaviour:\n  reject_reasons: {{sometime: 1}}\n")
    assert load_scenario(never).scenario.behaviour.reject_probability == 0


def test_a_resting_random_stream_gives_the_numbers_of_one_generator():
    expected = random.Random(42)
    stream = BehaviourStream(42)
    drawn = []
    for round_ in [*range(6), 3, 3, 3, 1, 12, 2, 9, 0, 4]:
        drawn += [stream.random() for _ in range(round_)]
        # The generator goes, leaving the next few numbers; a draw past them rebuilds it
        # and skips ahead. Pickled, only seed and count are kept.
        stream.rest()
        if round_ % 2 == 0:
            stream = pickle.loads(pickle.dumps(stream))
    assert drawn == [expected.random() for _ in range(len(drawn))]
    assert len(pickle.dumps(stream)) < 100  # seed and count, not 2.5 kB of generator state


def test_packing_nurturing_leads_and_resting_streams_change_no_result(monkeypatch):
    """Memory savings only: the same seed gives the same statistics with or without them."""
    loaded = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=60, warmup_days=3, replications=2)
    packed, woken_after_recycling = [], []
    original_pack, original_wake = DormantJourney.pack, DormantJourney.wake

    def counting_pack(self, event=None):
        packed.append(self.journey is not None)
        original_pack(self, event)

    def counting_wake(self, restore):
        journey = original_wake(self, restore)
        woken_after_recycling.append(journey.state.recycles > 0)
        return journey

    monkeypatch.setattr(DormantJourney, "pack", counting_pack)
    monkeypatch.setattr(DormantJourney, "wake", counting_wake)
    with_savings = JourneyModel(loaded, replication_seeds(3, 0))
    with_savings.run()
    assert sum(packed) > 100 and any(woken_after_recycling)  # recycled leads were packed and woken too

    monkeypatch.setattr(DormantJourney, "pack", lambda self, event=None: None)  # every journey stays live
    monkeypatch.setattr(BehaviourStream, "rest", lambda self: None)  # every generator is kept
    without = JourneyModel(loaded, replication_seeds(3, 0))
    without.run()
    assert with_savings.stats == without.stats
    assert with_savings.stats.counts["recycled"] > 0 and with_savings.stats.funnel[FunnelStep.MQL] > 0


def test_a_packed_journey_wakes_equal_to_the_one_put_away(monkeypatch):
    # ``Packer`` pickles records as tuples of values and enum members by name: every part of
    # every journey a replication packs comes back equal, and a lead with fields left at
    # their defaults (as the API takes them) keeps its record of which were set.
    from simulation.memory import Packer
    from simulation.population import Person

    loaded = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=30, warmup_days=2)
    parts_packed = []
    original = Packer.pack

    def keeping(self, parts):
        parts_packed.append(copy.deepcopy(parts))
        return original(self, parts)

    monkeypatch.setattr(Packer, "pack", keeping)
    JourneyModel(loaded, replication_seeds(2, 0)).run()
    assert len(parts_packed) > 100
    monkeypatch.setattr(Packer, "pack", original)
    packer = Packer(dataclasses=(Person,))

    def comparable(parts):  # a behaviour stream is compared by where it stands, not by identity
        person, state, owner_work = parts
        stream = person._behaviour
        return replace(person, _behaviour=None), stream and stream.__getstate__(), state, owner_work

    for parts in parts_packed:
        assert comparable(packer.unpack(packer.pack(parts))) == comparable(parts)
    assert any(parts[0]._behaviour is not None for parts in parts_packed)
    posted = Lead(email="someone@example.com", source=LeadSource.WEBINAR, created_at=datetime(2026, 1, 5, tzinfo=timezone.utc))
    person, state, owner_work = parts_packed[-1]
    woken = packer.unpack(packer.pack((replace(person, lead=posted), state, owner_work)))[0].lead
    assert woken == posted and woken.model_fields_set == posted.model_fields_set


def test_a_replication_turns_the_garbage_collector_off_only_while_it_runs():
    assert gc.isenabled()
    with collector_off():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:  # a caller's own setting comes back
        with collector_off():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("name", bundled_names("scenario"))
@pytest.mark.parametrize("keep_traces", [False, True])
def test_a_replication_makes_no_cyclic_garbage(name: str, keep_traces: bool):
    # What ``collector_off`` rests on: with the collector off while a replication runs,
    # everything it lets go must be freed by reference counting. A cycle left behind
    # (a journey and its timer pointing at each other, say) would pile up for a year.
    loaded = load_scenario(SCENARIOS_DIR / f"{name}.yaml")
    loaded = loaded.model_copy(update={"scenario": loaded.scenario.model_copy(update={"horizon_days": 21, "warmup_days": 7})})
    model = JourneyModel(loaded, replication_seeds(5, 0), keep_traces=keep_traces)
    gc.collect()
    gc.disable()  # so no automatic collection after the run frees the garbage before it is counted
    try:
        model.run()
        left = gc.collect()
    finally:
        gc.enable()
    assert model.leads_simulated > 0
    assert left == 0, f"the replication left {left} objects in garbage cycles: the collector cannot stay off while one runs"


def test_a_synthetic_lead_is_the_lead_model_construct_would_build():
    from simulation.population import synthetic_lead

    fields = {"email": "lead@sim.invalid", "first_name": None, "last_name": None, "company": None, "phone": None,
              "title": "VP Sales", "company_size": 250, "industry": "software", "country": "US",
              "source": LeadSource.WEBINAR, "created_at": datetime(2026, 1, 5, tzinfo=timezone.utc), "custom": {}}
    lead = synthetic_lead(dict(fields))
    assert lead == Lead.model_construct(**fields)
    assert lead.model_dump() == Lead.model_construct(**fields).model_dump()
    assert pickle.loads(pickle.dumps(lead)) == lead
    with pytest.raises(ValueError, match="needs exactly the fields"):
        synthetic_lead({**fields, "nickname": "x"})


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
def test_the_arrival_rate_memo_answers_as_the_profiles_do(zone: str):
    # ``Arrivals.rate`` keeps the local hour it was last asked about; across daylight-saving
    # changes (Lord Howe's is half an hour) it answers as converting every instant would.
    import random

    from simulation.population import Arrivals
    from simulation.scenario import Population

    population = Population(leads_per_week=500, weekday_profile=[1, 2, 3, 4, 5, 0.5, 0.25],
                            hour_profile=[0.1 + hour for hour in range(24)])
    arrivals = Arrivals(population, datetime(2026, 3, 1, tzinfo=timezone.utc), zone, random.Random(1))

    def converted(hours: float) -> float:
        local = (arrivals.start + timedelta(hours=hours)).astimezone(arrivals.zone)
        return arrivals.base_rate * population.weekday_profile[local.weekday()] * population.hour_profile[local.hour]

    rng = random.Random(2)
    for hours in sorted(rng.uniform(0, 24 * 250) for _ in range(3000)) + [rng.uniform(0, 24 * 250) for _ in range(500)]:
        assert arrivals.rate(hours) == converted(hours), hours


def test_compare_on_a_narrow_terminal_keeps_every_metric_name_whole(tmp_path: Path):
    # Several metrics share a long prefix (sla_attainment_...): cut short, their rows look alike.
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"extends: {SCENARIOS_DIR / 'baseline.yaml'}\nname: {name}\nhorizon_days: 21\nwarmup_days: 7\n"
            "nurtures_at_start: none\n")
    run = subprocess.run([sys.executable, "-m", "cli.main", "compare", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"),
                          "-r", "2"], capture_output=True, text=True, timeout=120,
                         env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    names = [line.split("│")[1].strip() for line in run.stdout.splitlines() if line.startswith("│")]
    assert {"sla_attainment_hot", "sla_attainment_acceptance", "first_contact_within_5m"} <= set(names)
    assert not any("…" in name for name in names)
