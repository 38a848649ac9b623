"""Fuzzing the health server. ``python -m tests.fuzz --seconds N`` is the long,
opt-in run (``make fuzz``); test_fuzz.py is the short one inside the suite."""
