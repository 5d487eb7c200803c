"""Custom search attributes of lead journeys: the one list ``leadflow setup`` registers."""

from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

LEAD_STAGE = SearchAttributeKey.for_keyword("LeadStage")
LEAD_TIER = SearchAttributeKey.for_keyword("LeadTier")
OWNER_ID = SearchAttributeKey.for_keyword("OwnerId")
SLA_DUE_AT = SearchAttributeKey.for_datetime("SlaDueAt")

ALL = (LEAD_STAGE, LEAD_TIER, OWNER_ID, SLA_DUE_AT)
BY_NAME = {key.name: key for key in ALL}

# How the Temporal CLI, the Cloud UI and tcld spell each type.
_TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def type_name(kind: int) -> str:
    """``Keyword``, ``Datetime``...: the spelling of an indexed value type (enum or proto number)."""
    try:
        return _TYPE_NAMES[SearchAttributeIndexedValueType(kind)]
    except ValueError:
        return f"type {kind}"


TYPES: dict[str, str] = {key.name: type_name(key.indexed_value_type) for key in ALL}
"""Name -> type name, e.g. for ``temporal server start-dev --search-attribute LeadStage=Keyword``."""
