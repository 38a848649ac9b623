"""benchmarks/health.py's latency cells."""
from benchmarks.health import p50_p99


def test_a_latency_cell_with_no_finished_request_says_so():
    assert p50_p99([]) == "none finished"


def test_a_latency_cell_gives_the_median_and_the_99th_percentile_in_ms():
    seconds = [i / 1000 for i in range(1, 101)]
    assert p50_p99(seconds) == "51.00 / 100.00 ms"
