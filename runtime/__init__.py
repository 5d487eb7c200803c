"""The edge of the core: environment settings, policy files, the embedded dev server.

Unlike the rules in ``leadflow/`` itself, these modules read the environment and files and
start processes; the workers, the CLI and the tests use them.
"""
