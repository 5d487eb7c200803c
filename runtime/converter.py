"""The data converter of every client, worker, replayer and the API (one place for the codec)."""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from runtime.codec import configured_codec
from runtime.settings import Settings


def journey_data_converter(settings: Settings | None = None) -> DataConverter:
    """Pydantic models as JSON payloads, AES-GCM encrypted when keys are configured.

    With encryption on, failures are encrypted too: a failure's message and stack trace
    travel in its encoded attributes, through the codec, and history shows only
    "Encoded failure" (clients, workers and the Web UI's codec endpoint decrypt them).
    """
    codec = configured_codec(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=codec, failure_converter_class=DefaultFailureConverterWithEncodedAttributes
    )
