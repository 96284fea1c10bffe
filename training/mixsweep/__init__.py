"""Replay-ratio sweep: short CPT runs over mixture shares x token budgets, a fitted D-CPT law, and
the critical mixture ratio it implies (`python -m training mixsweep`)."""
