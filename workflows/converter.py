"""The data converter of every client, worker and replayer (one place to add a codec)."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter


def journey_data_converter() -> DataConverter:
    """Pydantic models as JSON payloads."""
    return pydantic_data_converter
