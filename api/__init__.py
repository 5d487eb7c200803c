"""The HTTP intake API (FastAPI): leads and engagement in, rep actions, state out."""
