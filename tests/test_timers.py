"""The simulator's timers (``simulation.timers``): the far ones held back by day, fired as
SimPy would have fired them, and the cancelled ones never queued."""

from __future__ import annotations

import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.settings import SCENARIOS_DIR
from simulation.model import JourneyModel
from simulation.runner import replication_seeds
from simulation.scenario import load_scenario
from simulation.timers import Timers

# Delays on a coarse grid (and a few odd ones), so that many timers fall due at the same
# instant, some set straight into SimPy's queue and some held back.
delays = st.one_of(st.integers(0, 20).map(lambda quarter_days: quarter_days * 6.0),
                   st.floats(0, 130, allow_nan=False, allow_infinity=False))
plans = st.lists(st.tuples(st.integers(0, 12).map(lambda hours: hours * 7.0), delays), min_size=1, max_size=40)


class _Timer:
    def __init__(self) -> None:
        self.cut = False


def _fired(plan: list[tuple[float, float]], held_back: bool, cut: frozenset[int] = frozenset()) -> list[tuple[float, int]]:
    """(instant, timer) in the order the timers fired: each timer set ``delay`` hours after
    ``set_at``; with ``held_back``, through ``Timers``, else straight into SimPy's queue."""
    env = simpy.Environment()
    timers = Timers(env)
    fired: list[tuple[float, int]] = []
    owners: dict[int, _Timer] = {}

    def set_timer(number: int, delay: float) -> None:
        def fire(_event: object) -> None:
            fired.append((env.now, number))
        if held_back:
            owners[number] = _Timer()
            timers.after(delay, fire, owners[number])
        else:
            env.timeout(delay).callbacks.append(fire)

    for number, (set_at, delay) in enumerate(plan):
        env.timeout(set_at).callbacks.append(lambda _event, number=number, delay=delay: set_timer(number, delay))
    env.timeout(84.0).callbacks.append(lambda _event: [setattr(owners[n], "cut", True) for n in cut if n in owners])
    env.run(until=400)
    return fired


@settings(max_examples=150, deadline=None)
@given(plan=plans)
def test_timers_held_back_fire_at_the_same_instants_in_the_same_order(plan):
    assert _fired(plan, held_back=True) == _fired(plan, held_back=False)


@settings(max_examples=50, deadline=None)
@given(plan=plans, data=st.data())
def test_a_timer_cut_while_held_back_never_fires(plan, data):
    cut = frozenset(data.draw(st.sets(st.integers(0, len(plan) - 1))))
    fired = _fired(plan, held_back=True, cut=cut)
    everything = _fired(plan, held_back=False)
    # Cut at hour 84: a cut timer still fires if SimPy already had it by then (a day ahead).
    held_at_cut = {number for number, (set_at, delay) in enumerate(plan)
                   if set_at <= 84 and (set_at + delay) // 24 > 84 // 24 + 1}
    assert fired == [(at, number) for at, number in everything if number not in cut & held_at_cut]


def test_far_timers_stay_out_of_simpys_queue_and_change_no_result(monkeypatch):
    loaded = load_scenario(SCENARIOS_DIR / "baseline.yaml", horizon_days=45, warmup_days=3)
    held_back = JourneyModel(loaded, replication_seeds(5, 0))
    held_back.run()
    assert len(held_back.timers) > 100  # deadlines and closes weeks away wait outside SimPy's queue

    def straight_into_simpy(self, env):
        original_init(self, env)
        self._moved_through = 10**9

    original_init = Timers.__init__
    monkeypatch.setattr(Timers, "__init__", straight_into_simpy)
    every_timer_queued = JourneyModel(loaded, replication_seeds(5, 0))
    every_timer_queued.run()
    assert len(every_timer_queued.timers) == 0
    assert held_back.stats == every_timer_queued.stats
    assert held_back.decisions == every_timer_queued.decisions
    assert len(held_back.env._queue) < len(every_timer_queued.env._queue)
