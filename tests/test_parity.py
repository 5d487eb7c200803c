"""Parity: the simulator and the Temporal shell make the same decisions for the same script.

A scripted population (fixed arrivals, engagement and rep actions; some reps never act, so
SLAs breach, escalate, reassign and end in a team queue) runs through the real workflow on
the time-skipping server, and through the simulator's scripted shell fed the same inputs at
the instants Temporal processed them. Every decision that follows from the rules
(assignments, deadlines, breaches, escalations, reassignments, recycling) must come out the
same: kind, stage, owner, tier, details and timestamps. Timestamps may differ by the test
server's few milliseconds of timer latency, nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from leadflow.actions import Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify, RepAction
from leadflow.journey import Stage
from leadflow.lead import EngagementEvent, EngagementKind, Lead
from runtime.settings import Settings
from simulation.scripted import ScriptedModel
from tests.journey_helpers import hot_lead, next_local, skip_to, wait_for, warm_lead
from worker import running_worker
from workflows import journey_client
from workflows.journey_client import act, engage, show

TUESDAY = 1
TIMER_LATENCY = timedelta(seconds=2)


@dataclass
class Step:
    minutes: float
    key: str
    kind: str  # submit | engage | act
    lead: Lead | None = None
    weight: float = 0.0
    action: str = ""
    outcome: AttemptOutcome | None = None
    reason: str | None = None
    by: str | None = None  # None: whoever owns the lead at the time


def script() -> list[Step]:
    day = 24 * 60
    steps = [
        # Ana's lead: a hot hand-raiser worked at once and converted.
        Step(0, "fast", "submit", lead=hot_lead("parity.fast@corp.io")),
        Step(10, "fast", "act", action="accept"),
        Step(20, "fast", "act", action="attempt", outcome=AttemptOutcome.CONNECTED),
        Step(40, "fast", "act", action="qualify"),
        Step(180, "fast", "act", action="convert"),
        # Nobody accepts: two acceptance breaches, reassignment, then six unanswered calls.
        Step(5, "slow", "submit", lead=hot_lead("parity.slow@corp.io", country="CA")),
        Step(100, "slow", "act", action="accept"),
        *[Step(110 + 5 * n, "slow", "act", action="attempt", outcome=AttemptOutcome.NO_ANSWER) for n in range(6)],
        # A warm nurture that engages, then is ignored for days until the team queue; a
        # teammate claims it and disqualifies it.
        Step(20, "warm", "submit", lead=warm_lead("parity.warm@corp.io")),
        Step(60, "warm", "engage", weight=40),
        Step(3 * day + 60, "warm", "act", action="accept", by="rep-dev"),
        Step(3 * day + 75, "warm", "act", action="attempt", outcome=AttemptOutcome.CONNECTED),
        Step(3 * day + 90, "warm", "act", action="disqualify", reason="no_budget"),
        # A lead from a country no territory covers.
        Step(30, "far", "submit", lead=hot_lead("parity.far@corp.io", country="BR")),
    ]
    return sorted(steps, key=lambda step: step.minutes)


def moment_of(start: datetime, index: int, step: Step) -> datetime:
    """When a step is due. Each lands on its own second past the minute: deadlines keep the
    second of the event they count from, so no action falls on the very instant of a
    deadline, which Temporal and the simulator could then take in either order."""
    return start + timedelta(minutes=step.minutes, seconds=1 + 2 * index)


def action_for(step: Step, owner: str | None) -> RepAction:
    by = step.by or owner
    return {
        "accept": lambda: Accept(by=by),
        "attempt": lambda: LogAttempt(by=by, outcome=step.outcome),
        "qualify": lambda: Qualify(by=by, budget=True, need="parity"),
        "convert": lambda: Convert(by=by),
        "disqualify": lambda: Disqualify(by=by, reason=step.reason),
    }[step.action]()


async def run_on_temporal(env, policy, task_queue, sqlite_url, start: datetime, end: datetime):
    """Drive the script through real journeys; return the instant each step took effect, and the views."""
    client = env.client
    lead_ids: dict[str, str] = {}
    instants: list[datetime] = []
    async with running_worker(client, Settings(task_queue=task_queue, database_url=sqlite_url), policy=policy):
        for index, step in enumerate(script()):
            moment = moment_of(start, index, step)
            if moment > await env.get_current_time():
                await skip_to(env, moment)
            if step.kind == "submit":
                submitted = await journey_client.submit_lead(client, step.lead, task_queue, visibility=False)
                lead_ids[step.key] = submitted.lead_id
                view = await wait_for(client, submitted.lead_id, lambda v: v.submissions >= 1)
                instants.append(view.log[0].at)
                continue
            before = (await show(client, lead_ids[step.key])).log[-1].seq
            if step.kind == "engage":
                event = EngagementEvent(kind=EngagementKind.PRICING_PAGE, at=moment, weight=step.weight)
                await engage(client, lead_ids[step.key], event)
                view = await wait_for(client, lead_ids[step.key], lambda v: v.log[-1].seq > before)
            else:
                owner = (await show(client, lead_ids[step.key])).owner_id
                view = await act(client, lead_ids[step.key], action_for(step, owner))
            instants.append(next(entry.at for entry in view.log if entry.seq > before))
        for hour in range(1, 5 * 24):  # in steps: one long skip can outlast the RPC deadline
            if start + timedelta(hours=hour) > await env.get_current_time():
                await skip_to(env, start + timedelta(hours=hour))
        await skip_to(env, end)
        views = {key: await show(client, lead_id) for key, lead_id in lead_ids.items()}
        for lead_id in lead_ids.values():
            handle = journey_client.journey_handle(client, lead_id)
            if (await handle.describe()).status.name == "RUNNING":
                await handle.terminate("parity test finished")
    return instants, views


def run_on_simulator(policy, start: datetime, end: datetime, instants: list[datetime]):
    model = ScriptedModel(policy, start)
    for index, (step, instant) in enumerate(zip(script(), instants)):
        if step.kind == "submit":
            model.submit(step.key, step.lead, instant)
        elif step.kind == "engage":
            event = EngagementEvent(kind=EngagementKind.PRICING_PAGE, at=moment_of(start, index, step), weight=step.weight)
            model.engage(step.key, event, instant)
        else:
            model.act(step.key, instant, lambda state, step=step: action_for(step, state.owner_id))
    traces = model.run_until(end)
    return traces, {key: model.state(key) for key in traces}, model.refused


async def test_simulator_and_temporal_make_the_same_decisions(time_env, task_queue, sqlite_url, policy):
    start = next_local(await time_env.get_current_time(), TUESDAY, time(9, 0))
    end = start + timedelta(days=5)
    instants, views = await run_on_temporal(time_env, policy, task_queue, sqlite_url, start, end)
    traces, states, refused = run_on_simulator(policy, start, end, instants)
    assert refused == []

    for key, view in views.items():
        live = view.log
        simulated = traces[key]
        assert [(e.seq, e.kind, e.stage, e.owner_id, e.tier) for e in simulated] == [
            (e.seq, e.kind, e.stage, e.owner_id, e.tier) for e in live
        ], key
        for ours, theirs in zip(simulated, live):
            assert abs(ours.at - theirs.at) <= TIMER_LATENCY, (key, ours, theirs)
            assert _comparable(ours.detail) == _comparable(theirs.detail), (key, ours.kind)
        state = states[key]
        assert (state.stage, state.owner_id, state.breaches, state.reassignments, state.escalation_level) == (
            view.stage, view.owner_id, view.breaches, view.reassignments, view.escalation_level
        ), key
        assert state.deadlines.keys() == view.deadlines.keys(), key
        for clock, due in state.deadlines.items():
            assert abs(due - view.deadlines[clock]) <= TIMER_LATENCY, (key, clock)

    # The script exercises what it claims to: the rules did the interesting work.
    kinds = {key: [str(entry.kind) for entry in view.log] for key, view in views.items()}
    assert views["fast"].stage is Stage.CONVERTED
    assert "reassigned" in kinds["slow"] and "recycled" in kinds["slow"]
    assert kinds["warm"].count("reassigned") == 2 and "escalated" in kinds["warm"] and views["warm"].stage is Stage.DISQUALIFIED


def _comparable(detail: dict) -> dict:
    """Details with durations rounded to the second (they carry the timer latency too)."""
    return {key: round(value) if key.endswith("seconds") and isinstance(value, float) else value for key, value in detail.items()}
