"""Start a simulation from today: the ledger's open journeys, where they are now.

``simulate --from-ledger`` reads every open journey the ledger keeps (stage, owner,
deadlines, attempts, engagement; no personal data) and starts the simulation at that
instant with them in place: reps hold their current leads (routing loads), leads waiting
in line keep their places, nurtures keep their scores, and every deadline runs on. So a
"next four weeks" forecast starts where the team is, with no warm-up and no warm-up bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from activities.ledger import Ledger
from leadflow.journey import JourneyState


@dataclass(frozen=True)
class StartState:
    """Open journeys at ``as_of``, to start a simulation from."""

    as_of: datetime
    journeys: tuple[JourneyState, ...]
    source: str = "leadflow ledger"


class StartStateError(ValueError):
    pass


def from_ledger(url: str, as_of: datetime) -> StartState:
    """The ledger's open journeys, as of ``as_of`` (their last recorded state)."""
    ledger = Ledger(url)
    try:
        try:
            journeys = tuple(state for state in ledger.open_journeys() if not state.finished)
        except Exception as error:  # any driver error: say which ledger and why, in one line
            raise StartStateError(f"cannot read open journeys from the ledger at {ledger.url.split('@')[-1]}: "
                                  f"{type(error).__name__}; check LEADFLOW_DATABASE_URL (and run `leadflow worker` "
                                  "once on an old ledger to add the journey_state column)") from None
    finally:
        ledger.dispose()
    return StartState(as_of=as_of, journeys=journeys)
