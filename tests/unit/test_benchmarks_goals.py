"""The goals under the benchmark table (benchmarks/goals.py)."""

from benchmarks import goals

PEERS = ("tini", "dumb-init")


def test_each_goal_is_met_or_missed_from_the_medians():
    found = {
        "start_proxy": {"cephaloinit": [240], "tini": [150]},
        "start_ready": {"cephaloinit": [260]},
        "stop_idle": {"cephaloinit": [1900], "tini": [10100], "dumb-init": [10200]},
        "stop_idle_code": {"cephaloinit": [0, 0]},
        "crash": {"cephaloinit": [13.3], "tini": [2.0], "dumb-init": [2.5]},
        "idle_ctxt": {"cephaloinit": [0, 1], "tini": [30]},
        "rss_pid1": {"cephaloinit": [12.0], "tini": [1.5]},
        "proxy_rps": {"cephaloinit": [28000], "tini": [29000], "dumb-init": [30000], "host": [32000]},
    }
    assert goals.goals(found, PEERS, "host").splitlines() == [
        "- MISSED start-up ≤ tini floor + 100 ms: cephaloinit 260 ms to proxy and /ready, "
        "tini+Squid 150 ms: +110 ms, ratio 1.73",
        "- MISSED start-up ≥ 10× faster than a supervisor sleeping 2 s: such a supervisor needs "
        "≥ 2150 ms (tini floor + 2000, derived): 8.3× faster",
        "- MET    idle stop ≤ 2 s with exit 0: 1900 ms, exit codes [0]; best peer 10100 ms, ratio 0.19",
        "- MET    crash detection ≤ 100 ms: 13.3 ms; ratio to the best peer 6.65",
        "- MISSED zero idle wakeups: PID 1 voluntary context switches: [0, 1]",
        "- MET    PID 1 RSS ≤ 15 MB: 12.0 MiB = 12.6 MB; ratio to the best peer 8.00",
        "- MISSED proxy throughput ≥ 0.95× bare Squid: 28,000 req/s vs 32,000 on the host: 0.88×; "
        "vs the best containerised peer 0.93×",
    ]


def test_an_idle_stop_with_another_exit_code_misses():
    found = {"stop_idle": {"cephaloinit": [1000], "tini": [10000], "dumb-init": [10000]},
             "stop_idle_code": {"cephaloinit": [0, 137]}}
    assert goals.goals(found, PEERS, "host") == (
        "- MISSED idle stop ≤ 2 s with exit 0: 1000 ms, exit codes [0, 137]; best peer 10000 ms, ratio 0.10")


def test_goals_without_their_rows_are_left_out():
    assert goals.goals({"proxy_rps": {"cephaloinit": [1.0]}}, PEERS, "host") == ""
    assert goals.goals({}, PEERS, "host") == ""
