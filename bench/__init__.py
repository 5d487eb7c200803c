"""Benchmarks of the live stack (``leadflow bench live``): journeys on a real dev server
against a ceiling workflow that issues the same commands and nothing else."""
