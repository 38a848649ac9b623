"""The benchmark table's cells and ratios (benchmarks/table.py, samples.py)."""

from benchmarks import samples, table
from benchmarks.table import Row

PEERS = ("tini", "dumb-init")
LOW = Row("stop_idle", "stop, idle", "ms", "low")
HIGH = Row("proxy_rps", "proxy throughput", "req/s", "high")


def test_a_cell_is_the_median_then_the_range():
    assert table.cell([3, 1, 2, 10], 0) == "2 (1–10)"
    assert table.cell([1234.5, 2000.25], 1) == "1,617.4 (1,234.5–2,000.2)"


def test_a_cell_says_all_when_every_value_is_the_same_and_nothing_for_one_value():
    assert table.cell([0, 0, 0], 0) == "0 (all)"
    assert table.cell([52.17], 1) == "52.2"


def test_words_are_listed_once_each_after_the_numbers():
    assert table.cell(["yes", "yes"], 0) == "yes"
    assert table.cell(["no", "yes", "no"], 0) == "no, yes"
    assert table.cell([250, "3 left", 240], 0) == "245 (240–250) + 3 left"


def test_an_empty_cell_is_not_applicable():
    assert table.cell([], 0) == "n/a"


def test_the_median_ignores_words_and_missing_rows():
    found: samples.Samples = {}
    samples.record(found, "reap", "tini", 10)
    samples.record(found, "reap", "tini", "2 left")
    samples.record(found, "reap", "tini", 30)
    assert found == {"reap": {"tini": [10, "2 left", 30]}}
    assert samples.median_of(found, "reap", "tini") == 20
    assert samples.median_of(found, "reap", "dumb-init") is None
    assert samples.median_of(found, "crash", "tini") is None


def test_the_ratio_is_ours_over_the_best_peer_lowest_or_highest():
    found = {"stop_idle": {"cephaloinit": [2000], "tini": [10000], "dumb-init": [8000]},
             "proxy_rps": {"cephaloinit": [900], "tini": [1000], "dumb-init": [800], "host": [5000]}}
    assert table.ratio(found, LOW, PEERS) == "0.25"
    assert table.ratio(found, HIGH, PEERS) == "0.90"  # host is no peer


def test_no_ratio_without_a_better_side_or_a_median():
    found = {"stop_idle": {"cephaloinit": [2000]}, "code": {"cephaloinit": [0], "tini": [137]}}
    assert table.ratio(found, LOW, PEERS) == ""
    assert table.ratio(found, Row("code", "exit code", "", ""), PEERS) == ""
    assert table.ratio({"stop_idle": {"tini": [1]}}, LOW, PEERS) == ""


def test_a_best_peer_of_zero():
    assert table.ratio({"idle": {"cephaloinit": [0], "tini": [0]}}, Row("idle", "", "", "low"), PEERS) == "1.00"
    assert table.ratio({"idle": {"cephaloinit": [3], "tini": [0]}}, Row("idle", "", "", "low"), PEERS) == "—"


def test_the_table_has_a_row_per_measured_row_in_order_and_aligned_columns():
    found = {"image_size": {"cephaloinit": [52.17], "tini": [274.2]},
             "stop_idle_code": {"cephaloinit": [0, 0], "tini": [137, 137]},
             "stop_idle": {"cephaloinit": [1500, 2500], "tini": [10000]}}
    columns = [("cephaloinit", "cephaloinit"), ("tini", "tini"), ("host", "bare Squid, host")]
    assert table.table(found, columns, ("tini",)).splitlines() == [
        "| measure               | cephaloinit         | tini      | bare Squid, host | cephaloinit ÷ best peer |",
        "|-----------------------|---------------------|-----------|------------------|-------------------------|",
        "| stop, idle (ms)       | 2,000 (1,500–2,500) | 10,000    | n/a              | 0.20                    |",
        "| stop, idle: exit code | 0 (all)             | 137 (all) | n/a              |                         |",
        "| image size (MB)       | 52.2                | 274.2     | n/a              | 0.19                    |",
    ]


def test_every_row_is_found_by_its_key():
    assert [table.row(r.key) for r in table.ROWS] == list(table.ROWS)
