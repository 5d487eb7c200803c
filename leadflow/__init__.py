"""leadflow: workflow-as-code lead orchestration.

This package is the pure rules core: models, policy, scoring, routing, the business
calendar and ``decide``. It does no I/O, reads no clock and draws no random numbers, so
the Temporal shell (``workflows/``, ``activities/``) and the SimPy shell (``simulation/``)
can both run exactly the same rules.
"""

__version__ = "0.1.0"
