"""The ``leadflow`` command line (typer + rich)."""
