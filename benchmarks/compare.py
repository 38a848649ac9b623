"""CephaloProxy against the same Squid under tini, dumb-init, and alone as PID 1.

benchmarks/run is the one command (it installs the Debian packages and sets
CONTAINERS_CONF); this file runs the iterations and prints the table.
docs/benchmarks.md explains every row; each is measured in a measure_*.py.

Each iteration measures every system, in an order rotated from one iteration
to the next, so drift on a shared machine hits all of them alike:

  A  start-up (containers created beforehand; from the `podman start` call to the
     first request answered through the proxy, polled every 2 ms; cephaloinit
     also to /ready 200), one container at a time           measure_start.py
  -  containers for B and C started (not timed)
  B  idle window: PID 1's context switches, then RSS (PID 1, whole container)
                                                             measure_idle.py
  C  proxy throughput (ab -X through each proxy; bare Squid on the host too),
     health server load (cephaloinit)                        measure_load.py
     reaping of orphans (nsenter)                            measure_reaping.py
  D  crash detection: kill -9 of Squid from the host -> PID 1 gone
                                                             measure_crash.py
  E  stops, all at once, staggered: the idle A containers, and B containers
     with a download in flight                               measure_stop.py

    benchmarks/run [--runs 5] [--idle 30] [--quick] [--json FILE]   (--help: every option)
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import containers  # noqa: E402
from benchmarks.containers import HOST, IMAGE, PEERS, SYSTEMS, Origin, podman, say, start_origin  # noqa: E402
from benchmarks.goals import goals  # noqa: E402
from benchmarks.host_squid import HostSquid  # noqa: E402
from benchmarks.measure_crash import measure_crash  # noqa: E402
from benchmarks.measure_idle import measure_idle  # noqa: E402
from benchmarks.measure_load import measure_load  # noqa: E402
from benchmarks.measure_reaping import measure_reaping  # noqa: E402
from benchmarks.measure_start import measure_startup  # noqa: E402
from benchmarks.measure_stop import measure_stops  # noqa: E402
from benchmarks.samples import Samples, record  # noqa: E402
from benchmarks.table import table  # noqa: E402

QUICK = (("--runs", 2), ("--idle", 5.0), ("--load-seconds", 2.0), ("--orphans", 2000))


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="iterations (default 5)")
    parser.add_argument("--idle", type=float, default=30.0,
                        help="idle window for context switches, seconds (default 30)")
    parser.add_argument("--load-seconds", type=float, default=3.0,
                        help="duration of each throughput and health load (default 3)")
    parser.add_argument("--orphans", type=int, default=10000, help="orphans to reap (default 10000)")
    parser.add_argument("--download-seconds", type=float, default=4.0,
                        help="length of the download in flight during a stop (default 4)")
    parser.add_argument("--stop-timeout", type=int, default=10,
                        help="podman stop -t (default 10, the engine's default)")
    parser.add_argument("--quick", action="store_true",
                        help="--runs 2 --idle 5 --load-seconds 2 --orphans 2000 unless given")
    parser.add_argument("--json", help="also write every sample to this file")
    options = parser.parse_args(argv)
    if options.quick:
        for flag, value in QUICK:
            if flag not in argv:
                setattr(options, flag[2:].replace("-", "_"), value)
    return options


def iteration(number: int, options: argparse.Namespace, origin: Origin, host_squid: HostSquid,
              samples: Samples) -> None:
    """Every system once, in an order rotated by ``number``: A, B, C, D, E."""
    turn = number % len(SYSTEMS)
    order = list(SYSTEMS[turn:] + SYSTEMS[:turn])
    say(f"run {number + 1}/{options.runs}: {', '.join(s.key for s in order)}")
    a = [containers.create(s, "a", number) for s in order]
    b = [containers.create(s, "b", number) for s in order]
    c = [containers.create(s, "c", number) for s in order]
    for container in a:
        measure_startup(container, samples, origin.obj_url)
    for container in b + c:
        containers.start_untimed(container, origin.obj_url)
    measure_idle(a, options.idle, samples)
    measure_load(a, origin.obj_url, host_squid.port, origin.host_obj_url, options.load_seconds, samples)
    for container in c:
        measure_reaping(container, options.orphans, samples)
    for container in c:
        measure_crash(container, samples)
    measure_stops(a, b, origin.slow_url, options.stop_timeout, samples)
    containers.remove_created(a + b + c)


def heading(options: argparse.Namespace, minutes: float) -> str:
    revision = podman("image", "inspect", "--format",
                      '{{index .Labels "org.opencontainers.image.revision"}}', IMAGE)
    squid = podman("run", "--rm", "--entrypoint", "/usr/sbin/squid", IMAGE, "-v").splitlines()[0]
    return "\n".join([
        f"CephaloProxy benchmarks: {options.runs} runs, interleaved; median (min–max)",
        f"Machine: {containers.machine()}",
        f"Squid: {squid}; image {IMAGE} (revision {revision}); peers built from {containers.BASE_IMAGE}",
        f"Idle window {options.idle:g} s; loads {options.load_seconds:g} s; {options.orphans} orphans; "
        f"download in flight {options.download_seconds:g} s; podman stop -t {options.stop_timeout}; "
        f"measuring took {minutes:.1f} min",
    ])


def main() -> int:
    options = parse_options(sys.argv[1:])
    atexit.register(containers.cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    containers.build_images()
    origin = start_origin(options.download_seconds)
    host_squid = HostSquid()
    atexit.register(host_squid.close)
    host_squid.start()
    host_squid.wait_ready(origin.host_obj_url)

    samples: Samples = {}
    for system in SYSTEMS:
        record(samples, "image_size", system.key, containers.image_size_mb(system.image))
    begun = time.monotonic()
    for number in range(options.runs):
        iteration(number, options, origin, host_squid, samples)
    minutes = (time.monotonic() - begun) / 60

    columns = [(s.key, s.title) for s in SYSTEMS] + [(HOST, "bare Squid, host")]
    print(heading(options, minutes))
    print()
    print(table(samples, columns, PEERS))
    print()
    print("Goals (medians):")
    print(goals(samples, PEERS, HOST))
    if options.json:
        with open(options.json, "w") as file:
            json.dump(samples, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
