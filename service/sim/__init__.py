"""Simulated users against a running service: ``cbserve demo``, the HTTP driver and log
audit that ``scripts/simulate.py`` shares, and their tables, CSV files and plots."""
