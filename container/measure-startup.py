"""Start-up cost of the image's interpreter flags, measured inside the image.

    podman run --rm --no-healthcheck -v "$PWD/container/measure-startup.py:/m.py:ro" \
        --entrypoint /usr/bin/python3 cephaloproxy:trixie -I -S /m.py [RUNS]

For each flag set: the wall time of `python3 FLAGS -c pass` and of
`python3 FLAGS -m cephaloinit --version` (variants interleaved, so that drift
hits them alike), then how soon cephaloinit's SIGTERM handler is in place: a
SIGTERM sent N ms after spawn is either caught or kills the process, which is
what a `docker stop` right after start meets (a PID 1 would drop it instead).
docs/image.md has the figures.
"""

import signal
import statistics
import subprocess
import sys
import time

PYTHON = "/usr/bin/python3"
FLAG_SETS = ([], ["-I"], ["-I", "-S"])
DELAYS_MS = (6, 8, 10, 12, 14, 16, 20, 25)


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1e3


def term_handled(flags: list[str], delay_ms: float) -> bool:
    """Send SIGTERM DELAY_MS after spawn: True if cephaloinit's handler took it
    (exec mode forwards it and exits 143), False if it killed the process."""
    child = subprocess.Popen(
        [PYTHON, *flags, "-m", "cephaloinit", "exec", "--",
         PYTHON, "-I", "-S", "-c", "import time; time.sleep(5)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(delay_ms / 1e3)
    child.send_signal(signal.SIGTERM)
    return child.wait() != -signal.SIGTERM


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tests = []
    what = (
        ("-c pass", lambda f: wall([PYTHON, *f, "-c", "pass"])),
        ("-m cephaloinit --version", lambda f: wall([PYTHON, *f, "-m", "cephaloinit", "--version"])),
    )
    for suffix, measure in what:
        for flags in FLAG_SETS:
            label = f"{' '.join(flags) or '(none)':7s} {suffix}"
            tests.append((label, lambda f=flags, m=measure: m(f)))
    results = {label: [] for label, _ in tests}
    for _ in range(runs):
        for label, test in tests:
            results[label].append(test())
    print(f"{'flags / what':40s} median    p10    p90  (ms, {runs} runs)")
    for label, _ in tests:
        xs = sorted(results[label])
        print(f"{label:40s} {statistics.median(xs):6.2f} {xs[len(xs) // 10]:6.2f} {xs[len(xs) * 9 // 10]:6.2f}")

    trials = max(runs // 5, 10)
    print(f"\nSIGTERM sent N ms after spawn: share caught by cephaloinit's handler ({trials} trials)")
    print(f"{'flags':7s} " + " ".join(f"{d:>5}" for d in DELAYS_MS))
    for flags in FLAG_SETS:
        shares = [sum(term_handled(flags, d) for _ in range(trials)) * 100 // trials for d in DELAYS_MS]
        print(f"{' '.join(flags) or '(none)':7s} " + " ".join(f"{p:>4}%" for p in shares))


if __name__ == "__main__":
    main()
