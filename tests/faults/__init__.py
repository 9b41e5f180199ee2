"""Fault tests: backing services and the gateway itself dying mid-run, and what clients see."""
