"""The long fuzz run: ``python -m tests.fuzz [--seconds N] [--seed S]``.

The time is shared: 40 % the coverage-guided parser campaign, 30 % the server
in-process, 30 % the real health-server child. Exit 0 when every invariant
held; 1 with the offending input (also written to fuzz-failure.bin).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time

from . import harness


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=None)
    options = parser.parse_args(argv)
    seed = options.seed if options.seed is not None else random.randrange(2**32)
    print(f"fuzz: seed {seed}, {options.seconds:g}s", flush=True)
    rng = random.Random(seed)
    campaigns = [
        ("parser (coverage-guided)", 0.4, lambda s, d: harness.fuzz_parser(s, rng)),
        ("server in-process", 0.3, lambda s, d: harness.fuzz_server(s, rng, d)),
        ("health-server child", 0.3, lambda s, d: harness.fuzz_process(s, rng, d)),
    ]
    for name, share, campaign in campaigns:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="cephalofuzz-") as run_dir:
            try:
                stats = campaign(options.seconds * share, run_dir)
            except harness.FuzzFailure as failure:
                with open("fuzz-failure.bin", "wb") as file:
                    file.write(failure.data)
                print(f"fuzz: {name}: FAILED (seed {seed}): {failure}", flush=True)
                return 1
        took = time.monotonic() - started
        extra = f", corpus {stats.corpus}, {stats.arcs} arcs of http.py" if stats.arcs else ""
        memory = (f", VmRSS {stats.rss_kib[0][0]} -> {stats.rss_kib[1][0]} KiB, VmHWM "
                  f"{stats.rss_kib[1][1]} KiB" if stats.rss_kib else "")
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(stats.statuses.items(), key=str))
        print(f"fuzz: {name}: {stats.executions} inputs in {took:.0f}s{extra}{memory}"
              f"{'; answers ' + statuses if statuses else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
