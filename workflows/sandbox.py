"""The workflow sandbox every worker and replayer uses, with our pure modules passed through."""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Deterministic, side-effect-free modules imported once rather than re-imported per run.
PASSTHROUGH_MODULES = ("leadflow", "activities", "pydantic", "pydantic_core", "sqlalchemy", "httpx", "yaml", "email_validator", "idna")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with our pure modules passed through (imported once, not per run)."""
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES))
