"""Business metrics from workflow code: exact counts although every task replays, bounded labels, no PII.

The worker runs with its workflow cache disabled, so every workflow task replays the whole
history before it goes on; a metric that counted again on replay would be off by a
multiple. Expected counts come from each journey's own decision log in the ledger.
"""

from __future__ import annotations

from datetime import time, timedelta

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from leadflow.actions import Accept, AttemptOutcome, Convert, Disqualify, LogAttempt, Qualify
from leadflow.journey import Stage
from leadflow.kpis import BUSINESS_METRICS, Kind, allowed_label_values
from leadflow.lead import Lead
from runtime.converter import journey_data_converter
from tests.journey_helpers import next_local, skip_to, wait_for, warm_up_until_reassigned
from tests.metrics_scrape import Scrape
from tests.test_journey_workflow import journey_worker, settings_for, submit_lead
from workflows import dev_server
from workflows.journey_client import act, journey_handle
from workflows.telemetry import prometheus_runtime

TUESDAY = 1
SDK_LABELS = {"service_name", "namespace", "task_queue", "workflow_type"}
# Distinctive personal data: none of it may appear anywhere in the scrape.
PERSON = dict(first_name="Zebedee", last_name="Quortlebaum", company="Xylophonics Ltd", phone="+1 555 0199 321",
              title="VP Sales", company_size=500, industry="software", country="US")


@pytest.fixture(scope="module")
def metrics_address() -> str:
    return f"127.0.0.1:{dev_server.free_port()}"


@pytest_asyncio.fixture
async def metered_env(metrics_address):
    runtime = prometheus_runtime(metrics_address)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(dev_server.test_server_path()), data_converter=journey_data_converter(), runtime=runtime
    )
    yield env
    await env.shutdown()


async def test_journey_metrics_count_once_when_every_task_replays(metered_env, metrics_address, task_queue, sqlite_url, policy):
    env, client = metered_env, metered_env.client
    await skip_to(env, next_local(await env.get_current_time(), TUESDAY, time(9, 30)))
    async with journey_worker(client, settings_for(task_queue, sqlite_url), policy=policy, max_cached_workflows=0) as parts:
        # 1. A hot hand-raiser, contacted inside the SLA and converted.
        hot = await submit_lead(client, Lead(email="zebedee@xylophonics.io", source="demo_request", **PERSON), task_queue,
                                visibility=False)
        view = await wait_for(client, hot.lead_id, lambda v: v.stage is Stage.ASSIGNED)
        owner = view.owner_id
        await env.sleep(timedelta(minutes=20))
        await act(client, hot.lead_id, Accept(by=owner))
        await act(client, hot.lead_id, LogAttempt(by=owner, outcome=AttemptOutcome.CONNECTED))
        await act(client, hot.lead_id, Qualify(by=owner, budget=True, authority=True, need="forecasting"))
        await act(client, hot.lead_id, Convert(by=owner))
        assert (await journey_handle(client, hot.lead_id).result()).outcome == "converted"

        # 2. A warm lead nobody accepts: breach, escalation, reassignment; then disqualified.
        warm = await submit_lead(client, Lead(email="quortlebaum@xylophonics.io", source="ebook", **PERSON), task_queue,
                                 visibility=False)
        await wait_for(client, warm.lead_id, lambda v: v.stage is Stage.NURTURING)
        view = await warm_up_until_reassigned(env, client, warm.lead_id)
        await act(client, warm.lead_id, Accept(by=view.owner_id))
        await act(client, warm.lead_id, Disqualify(by=view.owner_id, reason="no_budget"))
        assert (await journey_handle(client, warm.lead_id).result()).stage is Stage.DISQUALIFIED

        events = parts.ledger.events(hot.lead_id) + parts.ledger.events(warm.lead_id)

    scrape = Scrape.of(metrics_address)
    mine = {"task_queue": task_queue}

    def logged(kind: str, **detail: object) -> int:
        return sum(1 for e in events if e["kind"] == kind and all(e["detail"].get(k) == v for k, v in detail.items()))

    # Every count equals what the two decision logs say happened, once.
    assert scrape.total("leadflow_sla_breaches_total", **mine) == logged("breach") == 2
    assert scrape.total("leadflow_sla_breaches_total", clock="acceptance", tier="warm", **mine) == 2
    assert scrape.total("leadflow_escalations_total", level="1", **mine) == logged("escalated", level=1) == 1
    assert scrape.total("leadflow_escalations_total", level="2", **mine) == logged("escalated", level=2) == 1
    assert scrape.total("leadflow_reassignments_total", **mine) == logged("reassigned") == 1
    assert scrape.total("leadflow_first_contacts_total", tier="hot", within_sla="true", **mine) == 1
    # The SLA as leadflow.kpis settles it: the hot lead met; the warm one was disqualified
    # before its first-contact due time, so it never came due.
    assert scrape.total("leadflow_sla_settled_total", clock="first_contact", tier="hot", outcome="met", **mine) == 1
    assert scrape.total("leadflow_sla_settled_total", clock="first_contact", **mine) == 1
    entries: dict[str, float] = {}
    for labels, value in scrape.samples("leadflow_stage_entries_total", **mine):
        entries[labels["stage"]] = entries.get(labels["stage"], 0) + value
    # hot: NURTURING MQL (one decision: a hand-raiser) ASSIGNED ACCEPTED WORKING SQL CONVERTED;
    # warm: NURTURING MQL ASSIGNED, back to MQL and ASSIGNED on reassignment, ACCEPTED DISQUALIFIED.
    assert entries == {"NURTURING": 2, "MQL": 3, "ASSIGNED": 3, "ACCEPTED": 2, "WORKING": 1, "SQL": 1,
                       "CONVERTED": 1, "DISQUALIFIED": 1}
    assert scrape.total("leadflow_stage_entries_total", stage="CONVERTED", tier="hot", source="demo_request", **mine) == 1
    assert scrape.total("leadflow_stage_conversions_total", from_stage="SQL", to_stage="CONVERTED", **mine) == 1
    assert scrape.total("leadflow_journeys_closed_total", **mine) == 2
    assert scrape.total("leadflow_journeys_closed_total", stage="DISQUALIFIED", **mine) == 1
    ttfc = scrape.samples("leadflow_time_to_first_contact_business_seconds_count", tier="hot", **mine)
    assert sum(value for _, value in ttfc) == 1
    # 20 minutes of business time, in the (900, 1800] bucket.
    assert scrape.total("leadflow_time_to_first_contact_business_seconds_bucket", le="900", tier="hot", **mine) == 0
    assert scrape.total("leadflow_time_to_first_contact_business_seconds_bucket", le="1800", tier="hot", **mine) == 1
    assert scrape.total("leadflow_attempts_per_journey_sum", **mine) == logged("attempt") == 1
    assert scrape.total("leadflow_attempts_per_journey_count", **mine) == 2

    # Labels: only the declared ones (plus the SDK's own), with values from enums and the policy.
    allowed = allowed_label_values(policy)
    declared = {spec.name: set(spec.labels) for spec in BUSINESS_METRICS}
    seen = scrape.label_sets("leadflow_")
    assert seen
    for name, labels in seen:
        family = next(spec_name for spec_name in declared if name.startswith(spec_name.removesuffix("_total")))
        for key, value in labels.items():
            if key in SDK_LABELS or key == "le":
                continue
            assert key in declared[family], f"{name} has an undeclared label {key}"
            assert value in allowed[key], f"{name}{{{key}={value!r}}} is not from an enum or the policy"
    # The phone is looked for whole (as written, or as its digits): a fragment as short as
    # "0199" also turns up inside sample values such as a latency of 0.001999792 seconds.
    for field in ("zebedee", "quortlebaum", "xylophonics", "555 0199 321", "5550199321", "Zebedee", "Quortlebaum",
                  "Xylophonics"):
        assert field not in scrape.text


def test_every_business_histogram_has_buckets_and_every_label_a_bounded_set(policy):
    allowed = allowed_label_values(policy)
    for spec in BUSINESS_METRICS:
        assert spec.name.startswith("leadflow_")
        assert (spec.kind is Kind.HISTOGRAM) == bool(spec.buckets)
        assert (spec.kind is Kind.COUNTER) == spec.name.endswith("_total")
        for label in spec.labels:
            assert allowed[label], f"{spec.name}: label {label} has no bounded value set"
