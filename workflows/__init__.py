"""The Temporal shell: one durable workflow per lead, driven by the core's ``decide``."""
