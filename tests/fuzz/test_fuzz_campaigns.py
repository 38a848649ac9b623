"""A few seconds of each campaign of harness.py, inside the normal suite (about
20 s in all). The long run is ``python -m tests.fuzz`` (``make fuzz``); the seed
is random unless FUZZ_SEED is set, and printed with the figures."""

from __future__ import annotations

import os
import random

import pytest

from . import harness

SEED = int(os.environ.get("FUZZ_SEED", "0")) or random.randrange(2**32)


def report(name: str, stats: harness.Stats) -> None:
    print(f"FIGURE fuzz {name} seed={SEED}: {stats}")


# -- a few seconds of each campaign ----------------------------------------------------------
@pytest.mark.timeout(30)
def test_coverage_guided_parser_fuzz_finds_no_broken_invariant():
    stats = harness.fuzz_parser(5.0, random.Random(SEED))
    report("parser", stats)
    assert stats.executions > 1000 and stats.arcs > 30


@pytest.mark.timeout(30)
def test_server_in_process_answers_every_fuzzed_input_and_leaks_nothing(tmp_path):
    stats = harness.fuzz_server(5.0, random.Random(SEED), str(tmp_path))
    report("server", stats)
    assert stats.executions > 100
    assert {400, 431}.issubset(stats.statuses)


@pytest.mark.timeout(40)
def test_the_health_server_child_survives_fuzzing_with_bounded_memory(tmp_path):
    stats = harness.fuzz_process(6.0, random.Random(SEED), str(tmp_path))
    report("process", stats)
    assert stats.executions > 100
    assert stats.rss_kib[1][1] < harness.MAX_HWM_KIB
