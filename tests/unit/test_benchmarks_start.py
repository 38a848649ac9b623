"""The start-up poll (benchmarks/measure_start.py): every probe in turn until each is true."""

import itertools
import time

from benchmarks.measure_start import first_true


def true_from_call(n):
    calls = itertools.count(1)
    return lambda: next(calls) >= n


def test_each_probe_gets_the_time_it_first_was_true_and_is_not_asked_again():
    asked = []
    once = true_from_call(1)
    probes = {"call": lambda: asked.append("call") or once(), "proxy": true_from_call(3)}
    t0 = time.perf_counter()
    times = first_true(probes, t0, t0 + 30)
    assert set(times) == {"call", "proxy"}
    assert 0 <= times["call"] <= times["proxy"]
    assert asked == ["call"]


def test_a_probe_never_true_is_missing_once_the_deadline_passed():
    t0 = time.perf_counter()
    times = first_true({"call": lambda: True, "ready": lambda: False}, t0, t0 + 0.05)
    assert list(times) == ["call"]
    assert time.perf_counter() - t0 >= 0.05
