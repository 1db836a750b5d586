"""Resilience drills (see drills/run.py)."""
