"""Deterministic generators of test data with known answers (edited videos, ...)."""
