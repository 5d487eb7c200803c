"""The bundled policies and scenarios, shipped as package data.

``leadflow simulate baseline`` and ``--policy demo-policy`` find these files by name
(``runtime.settings.resolve_scenario_path`` / ``resolve_policy_path``); a path
to any other YAML file works too.
"""
