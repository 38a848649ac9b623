"""How long a freshly started cephaloinit goes without a SIGTERM handler.

A signal sent to PID 1 before its handler exists is dropped by the kernel, so
this window is where an early `docker stop` is lost. Measured from just
before the spawn until /proc/PID/status shows SIGTERM caught (SigCgt), for:

- floor:    python3 -S -c "import _signal; _signal.signal(15, ...)": the interpreter
            alone and one handler, the least any Python PID 1 can do;
- launcher: python3 -S LAUNCHER exec -- sleep 5, as the image's ENTRYPOINT
            (/usr/bin/cephaloinit) starts it;
- -m:       python3 -S -m cephaloinit exec -- sleep 5 (runpy first).

Variants are interleaved, so that drift of a busy machine hits all alike.
Usage: python3 benchmarks/first_handler.py [RUNS]   (default 100)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
SIGTERM_BIT = 1 << (15 - 1)


def term_caught(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & SIGTERM_BIT)
    except FileNotFoundError:
        pass
    return False


def window_ms(argv: list[str]) -> float:
    started = time.monotonic()
    process = subprocess.Popen(argv, env={"PYTHONPATH": REPO}, stdout=subprocess.DEVNULL)
    while not term_caught(process.pid):
        pass  # a busy wait: any sleep would blur the figure
    elapsed = (time.monotonic() - started) * 1000
    process.kill()
    process.wait()
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as launcher:
        launcher.write("import cephaloinit.__main__\n")
    variants = {
        "floor": [PYTHON, "-S", "-c",
                  "import _signal, time; _signal.signal(15, lambda *a: None); time.sleep(5)"],
        "launcher": [PYTHON, "-S", launcher.name, "exec", "--", "sleep", "5"],
        "-m": [PYTHON, "-S", "-m", "cephaloinit", "exec", "--", "sleep", "5"],
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(runs):
            for name, argv in variants.items():
                results[name].append(window_ms(argv))
    finally:
        os.unlink(launcher.name)
    floor = statistics.median(results["floor"])
    print(f"{'variant':<10} {'median ms':>10} {'p90 ms':>8} {'max ms':>8} {'x floor':>8}")
    for name, times in results.items():
        times.sort()
        median = statistics.median(times)
        print(f"{name:<10} {median:>10.1f} {times[int(len(times) * 0.9)]:>8.1f} "
              f"{times[-1]:>8.1f} {median / floor:>8.2f}")


if __name__ == "__main__":
    main()
