"""The closed-loop SLA report of a simulated period, in the shape ``leadflow report`` gives the
ledger's (``leadflow.report``), so a forecast and last quarter's actuals read side by side."""

from __future__ import annotations

from datetime import timedelta

from leadflow.kpis import SlaSettled
from leadflow.report import Dimension, LoggedDecision, LoggedSettlement, SlaReport, sla_report
from simulation.model import JourneyModel, LeadJourney
from simulation.runner import replication_seeds
from simulation.scenario import LoadedScenario


class _Recorded(JourneyModel):
    """A replication that keeps every decision and every SLA settlement, as the ledger would."""

    def __init__(self, loaded: LoadedScenario, seeds: tuple[int, int, int]):
        super().__init__(loaded, seeds, keep_traces=True)
        self.settlements: list[LoggedSettlement] = []

    def sla_settled(self, journey: LeadJourney, settled: SlaSettled) -> None:
        super().sla_settled(journey, settled)
        self.settlements.append(LoggedSettlement(lead_id=journey.state.lead_id, at=self.now_dt(), clock=settled.clock,
                                                 tier=settled.tier, outcome=settled.outcome))


def simulated_report(loaded: LoadedScenario, seed: int, replication: int = 0,
                     by: Dimension = Dimension.SOURCE) -> SlaReport:
    """The report of one replication's measured period (after the warm-up, to the horizon).

    Leads open at the horizon are not listed as past due: ``open_now`` is a live figure.
    """
    model = _Recorded(loaded, replication_seeds(seed, replication))
    model.run()
    decisions = [LoggedDecision(lead_id=lead_id, journey_id=lead_id, entry=entry)
                 for lead_id, entries in (model.traces or {}).items() for entry in entries]
    since = model.start + timedelta(hours=model.warmup)
    until = model.start + timedelta(hours=model.horizon)
    return sla_report(decisions, model.settlements, [], loaded.policy, since, until, by, until)
