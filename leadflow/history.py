"""A period's history: the decisions of the journeys active in it, the SLAs they settled and
the leads open at its end, under the policy that was live. The leadflow ledger holds it
(``activities.ledger_history``); a CRM's history is read into the same shape
(``simulation.crm_history``), so the closed-loop report, calibration and backtests read one
thing whatever the source."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from leadflow.journey import DecisionEntry
from leadflow.policy import Policy
from leadflow.report import LoggedDecision, LoggedSettlement, OpenLead, SlaReport, sla_report


@dataclass
class History:
    """Decisions of the journeys active in ``[since, until)``, as the ledger logs them."""

    source: str
    since: datetime
    until: datetime
    policy: Policy
    decisions: list[LoggedDecision]
    settlements: list[LoggedSettlement]
    open_leads: list[OpenLead] = field(default_factory=list)
    has_durations: bool = False  # attempt lengths are known (``minutes`` in attempt details)
    has_people: bool = False  # country, size, title and industry are known (in created details)

    def journeys(self) -> list[list[DecisionEntry]]:
        """Each journey's entries in order."""
        by_journey: dict[str, list[LoggedDecision]] = defaultdict(list)
        for logged in self.decisions:
            by_journey[logged.journey_id].append(logged)
        return [[logged.entry for logged in sorted(journey, key=lambda item: item.entry.seq)]
                for journey in by_journey.values()]

    def report(self) -> SlaReport:
        """The closed-loop report of the period: the actual figures a backtest is held to."""
        return sla_report(self.decisions, self.settlements, self.open_leads, self.policy, self.since, self.until)
