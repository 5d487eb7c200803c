"""Custom search attributes of lead journeys (registered by ``leadflow dev``)."""

from temporalio.common import SearchAttributeKey

LEAD_STAGE = SearchAttributeKey.for_keyword("LeadStage")
LEAD_TIER = SearchAttributeKey.for_keyword("LeadTier")
OWNER_ID = SearchAttributeKey.for_keyword("OwnerId")
SLA_DUE_AT = SearchAttributeKey.for_datetime("SlaDueAt")

ALL = (LEAD_STAGE, LEAD_TIER, OWNER_ID, SLA_DUE_AT)
