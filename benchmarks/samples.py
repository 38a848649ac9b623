"""What a run measured: row -> system -> every value, and their medians.

A value is a number, or a word where a measurement has no number ("yes", "3 left").
"""

from __future__ import annotations

import statistics

Samples = dict[str, dict[str, list]]


def record(samples: Samples, row: str, system: str, value) -> None:
    samples.setdefault(row, {}).setdefault(system, []).append(value)


def numbers(values: list) -> list:
    return [v for v in values if isinstance(v, (int, float))]


def median_of(samples: Samples, row: str, system: str) -> float | None:
    found = numbers(samples.get(row, {}).get(system, []))
    return statistics.median(found) if found else None
