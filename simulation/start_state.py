"""Start a simulation from today: the ledger's open journeys, where they are now (read by
``activities.ledger_history.open_journeys``; the CLI hands them over).

``simulate --from-ledger`` reads every open journey the ledger keeps (stage, owner,
deadlines, attempts, engagement; no personal data) and starts the simulation at that
instant with them in place: reps hold their current leads (routing loads), leads waiting
in line keep their places, nurtures keep their scores, and every deadline runs on. So a
"next four weeks" forecast starts where the team is, with no warm-up and no warm-up bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadflow.journey import JourneyState


@dataclass(frozen=True)
class StartState:
    """Open journeys at ``as_of``, to start a simulation from."""

    as_of: datetime
    journeys: tuple[JourneyState, ...]
    source: str = "leadflow ledger"
