"""A scripted population: given arrivals, engagement and rep actions at given instants.

No randomness and no behaviour models: the journeys run on the core's ``decide`` and
``choose_rep`` with deadlines on the simulated clock, and everything people do comes from
the script. Used to check that the simulator and the Temporal shell make the very same
decisions (the parity test), and to replay a known day under another policy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from leadflow.actions import InvalidAction, RepAction
from leadflow.journey import DecisionEntry, EngagementReceived, JourneyState, LeadSubmitted, RepActed
from leadflow.lead import EngagementEvent, Lead
from leadflow.policy import Policy
from simulation.model import LeadJourney, SimShell
from simulation.population import Person


class ScriptedModel(SimShell):
    def __init__(self, policy: Policy, start: datetime):
        super().__init__(policy, start, keep_traces=True)
        self.journeys: dict[str, LeadJourney] = {}
        self.refused: list[tuple[str, datetime, str]] = []

    def submit(self, key: str, lead: Lead, at: datetime) -> None:
        def arrive() -> None:
            if key not in self.journeys:
                person = Person(index=len(self.journeys), lead=lead, intent=0.0, arrived_hours=self.env.now,
                                engagement_seed=0, behaviour_seed=0)
                self.journeys[key] = LeadJourney(self, person)
            self.journeys[key].feed(LeadSubmitted(lead=lead))

        self.at(at, arrive)

    def engage(self, key: str, event: EngagementEvent, at: datetime) -> None:
        self.at(at, lambda: self.journeys[key].feed(EngagementReceived(event=event)))

    def act(self, key: str, at: datetime, action: Callable[[JourneyState], RepAction]) -> None:
        """At ``at``, the action ``action(state)`` (it can pick the current owner from the state)."""

        def perform() -> None:
            journey = self.journeys[key]
            try:
                journey.feed(RepActed(action=action(journey.state)))
            except InvalidAction as problem:
                self.refused.append((key, self.now_dt(), str(problem)))

        self.at(at, perform)

    def run_until(self, until: datetime) -> dict[str, list[DecisionEntry]]:
        """Run the script to ``until``; each lead's decision trace, by script key."""
        self.env.run(until=max(self.hours(until), self.env.now))
        traces = self.traces or {}
        return {key: traces.get(journey.state.lead_id, []) for key, journey in self.journeys.items()}

    def state(self, key: str) -> JourneyState:
        return self.journeys[key].state
