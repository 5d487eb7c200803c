"""Changed copies of the journey workflow, for replay tests and the patching worked example.

The change: "debounce intake", i.e. wait one second before the journey handles anything,
so a burst of form posts for one person lands before routing. It adds a timer at the start
of every journey, so histories recorded without it no longer match.

The lifecycle of shipping it safely (README, "Changing workflow code safely"):

1. ``PatchedDebounce``: new code behind ``workflow.patched``; runs recorded before the
   patch take the old path on replay, new runs take the new one.
2. ``DeprecatedDebounce``: once no journey started before step 1 is open, the old path goes
   and ``workflow.deprecate_patch`` stays, so runs from step 1 still replay.
3. ``DebounceOnly``: once no journey started before step 2 is open, the patch call goes too.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from workflows.journey_io import JourneyInput, JourneyOutcome
from workflows.lead_journey import LeadJourneyWorkflow

PATCH = "debounce-intake"
DEBOUNCE = timedelta(seconds=1)


@workflow.defn(name="LeadJourney")
class NaiveDebounce(LeadJourneyWorkflow):
    """The change made carelessly: breaks every history recorded before it."""

    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyOutcome:
        await workflow.sleep(DEBOUNCE)
        return await super().run(input)


@workflow.defn(name="LeadJourney")
class PatchedDebounce(LeadJourneyWorkflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyOutcome:
        if workflow.patched(PATCH):
            await workflow.sleep(DEBOUNCE)
        return await super().run(input)


@workflow.defn(name="LeadJourney")
class DeprecatedDebounce(LeadJourneyWorkflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyOutcome:
        workflow.deprecate_patch(PATCH)
        await workflow.sleep(DEBOUNCE)
        return await super().run(input)


@workflow.defn(name="LeadJourney")
class DebounceOnly(LeadJourneyWorkflow):
    @workflow.run
    async def run(self, input: JourneyInput) -> JourneyOutcome:
        await workflow.sleep(DEBOUNCE)
        return await super().run(input)
