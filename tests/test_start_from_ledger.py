"""``leadflow simulate --from-ledger``: a forecast that starts from the ledger's open journeys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from activities.contracts import LeadProjection, LedgerBatch
from activities.ledger import Ledger
from runtime.settings import REPO_ROOT
from tests.test_decide import T0, assigned_hot


def _leadflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **env})


def test_simulate_from_the_ledger_starts_with_its_open_journeys(tmp_path, policy):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    ledger.create_schema()
    try:
        for number in range(5):
            journey = assigned_hot(policy, "rep-ana")
            state = journey.state
            state.lead_id, state.journey_id = f"L{number}", f"j{number}"
            last = state.log[-1]
            ledger.apply(LedgerBatch(
                journey_id=state.journey_id, lead_id=state.lead_id, workflow_id=f"lead-{state.lead_id}",
                policy_version=policy.version, entries=list(state.log), at=last.at,
                projection=LeadProjection(lead_id=state.lead_id, journey_id=state.journey_id,
                                          workflow_id=f"lead-{state.lead_id}", stage=state.stage, owner_id=state.owner_id,
                                          policy_version=policy.version, seq=state.seq, updated_at=last.at,
                                          journey_state=state.without_personal_data())))
    finally:
        ledger.dispose()
    env = {"LEADFLOW_DATABASE_URL": url}
    as_of = (T0 + timedelta(minutes=5)).isoformat()
    done = _leadflow("simulate", "baseline", "--from-ledger", "--as-of", as_of, "--replications", "2", "--json", env=env)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["start"] == {"from_ledger": True, "open_journeys": 5, "as_of": as_of, "warmup_days": 0}
    shown = _leadflow("simulate", "baseline", "--from-ledger", "--as-of", as_of, "--replications", "2", env=env)
    assert "started from 5 open journeys in the ledger" in shown.stdout
    plain = _leadflow("simulate", "baseline", "--replications", "2", env=env)
    assert "warm-up cut: the first 56 of 84 days" in plain.stdout and "nurture pool a steady inflow leaves" in plain.stdout


def test_from_ledger_bad_input_is_one_line(tmp_path):
    env = {"LEADFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}"}
    for args, words in ((["--as-of", "2026-12-07T09:00:00Z"], ["--as-of", "--from-ledger"]),
                        (["--from-ledger", "--as-of", "tomorrow"], ["--as-of", "ISO 8601"]),
                        (["--from-ledger", "--as-of", "2026-12-07T09:00:00"], ["UTC offset"])):
        done = _leadflow("simulate", "baseline", "--replications", "2", *args, env=env)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        for word in words:
            assert word.lower() in done.stderr.lower(), (word, done.stderr)
