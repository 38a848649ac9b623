"""CephaloProxy against the same Squid under tini, dumb-init, and alone as PID 1.

benchmarks/run is the one command (it installs the Debian packages and sets
CONTAINERS_CONF); this file does the work. docs/benchmarks.md explains every row.

Each iteration measures every system, in an order rotated from one iteration
to the next, so drift on a shared machine hits all of them alike:

  A  start-up (containers created beforehand; from the `podman start` call to the
     first request answered through the proxy, polled every 2 ms; cephaloinit
     also to /ready 200), one container at a time
  -  containers for B and C started (not timed)
  B  idle window: PID 1's context switches, then RSS (PID 1, whole container)
  C  proxy throughput (ab -X through each proxy; bare Squid on the host too),
     health server load (cephaloinit), reaping of orphans (nsenter)
  D  crash detection: kill -9 of Squid from the host -> PID 1 gone
  E  stops, all at once, staggered: the idle A containers, and B containers
     with a download in flight

    benchmarks/run [--runs 5] [--idle 30] [--quick] [--keep-images]
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

import health as health_bench  # noqa: E402  benchmarks/health.py: its load generator
from cephaloinit import squid as squid_module  # noqa: E402
from cephaloinit.settings import Settings  # noqa: E402
from cephaloinit.validators import config as config_layer  # noqa: E402

PODMAN = "podman"
IMAGE = os.environ.get("IMAGE", "localhost/cephaloproxy:trixie")
BASE_IMAGE = os.environ.get("BASE_IMAGE", "localhost/cephaloproxy-base:trixie")
PEER_TAG = os.environ.get("PEER_TAG", "localhost/cephaloproxy-peer")  # the peers' repository; each peer is a tag
POLL = 0.002  # start-up polling interval, seconds
RUN_ID = f"cpbench-{os.getpid()}"
LABEL = f"io.cephaloproxy.bench={RUN_ID}"


@dataclasses.dataclass(frozen=True)
class System:
    key: str
    title: str
    image: str
    health: bool = False  # has a health server on 8080


SYSTEMS = (
    System("cephaloinit", "cephaloinit", IMAGE, health=True),
    System("tini", "tini", f"{PEER_TAG}:tini"),
    System("dumb-init", "dumb-init", f"{PEER_TAG}:dumb-init"),
    System("squid", "squid -N as PID 1", f"{PEER_TAG}:squid"),
)
HOST = "host"  # bare Squid on the host: a column of the throughput row only


def say(message: str) -> None:
    print(f"benchmarks: {message}", file=sys.stderr, flush=True)


def podman(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the peers' images -------------------------------------------------------------
def render_peer_config() -> str:
    """The squid.conf cephaloinit runs by default: its container layer
    (validators/config.py: pid file in the run directory, logs on stdout and
    stderr, shutdown_lifetime from the default SHUTDOWN_TIMEOUT, 30 s -> 23 s)
    around container/squid.conf.default with port 3128 and no conf.d (the
    host's own /etc/squid/conf.d must not leak in)."""
    settings = Settings()
    with open(os.path.join(REPO, "container", "squid.conf.default")) as file:
        template = file.read()
    for name, value in (("SQUID_PORT", str(settings.squid_port)),
                        ("CONF_D_INCLUDE", "# no /etc/squid/conf.d/*.conf files")):
        template = template.replace(f"@{name}@", value)
    left = re.findall(r"@[A-Z_]+@", template)
    if left:
        raise RuntimeError(f"container/squid.conf.default has placeholders this runner does not know: {left}")
    defaults = config_layer.DEFAULTS.format(
        run_dir=settings.run_dir, spool_dir=settings.spool_dir,
        max_filedescriptors=config_layer.MAX_FILEDESCRIPTORS,
        shutdown_lifetime=squid_module.shutdown_lifetime(settings.shutdown_timeout))
    return f"{defaults}\n# The configuration: container/squid.conf.default\n{template}\n{config_layer.ACCESS_LOG}"


def build_images() -> None:
    if subprocess.run([PODMAN, "image", "exists", IMAGE]).returncode != 0:
        say(f"{IMAGE} is missing: make image")
        subprocess.run(["make", "-C", REPO, "image"], check=True)
    if subprocess.run([PODMAN, "image", "exists", BASE_IMAGE]).returncode != 0:
        raise SystemExit(f"benchmarks: the builder base {BASE_IMAGE} is missing: make image creates it "
                         "(or set BASE_IMAGE to a Debian trixie image)")
    context = tempfile.mkdtemp(prefix="cpbench-peers-")
    try:
        shutil.copy(os.path.join(HERE, "peers", "Dockerfile"), context)
        with open(os.path.join(context, "squid.conf"), "w") as file:
            file.write(render_peer_config())
        for system in SYSTEMS[1:]:
            target = system.image.rsplit(":", 1)[1]
            say(f"building {system.image} (cached layers after the first time)")
            subprocess.run([PODMAN, "build", "-q", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
                            "--target", target, "-t", system.image, context],
                           check=True, stdout=subprocess.DEVNULL)
    finally:
        shutil.rmtree(context, ignore_errors=True)


# -- containers --------------------------------------------------------------------------
@dataclasses.dataclass
class Container:
    system: System
    name: str
    proxy_port: int
    health_port: int | None
    pid: int = 0  # PID 1's PID on the host


CREATED: list[str] = []


def create(system: System, role: str, iteration: int) -> Container:
    name = f"{RUN_ID}-{system.key}-{role}{iteration}"
    proxy_port = free_port()
    args = ["create", "--name", name, "--label", LABEL, "--no-healthcheck",
            "-p", f"127.0.0.1:{proxy_port}:3128"]
    health_port = None
    if system.health:
        health_port = free_port()
        args += ["-p", f"127.0.0.1:{health_port}:8080"]
    podman(*args, system.image)
    CREATED.append(name)
    return Container(system, name, proxy_port, health_port)


def init_pid(container: Container) -> int:
    container.pid = int(podman("inspect", "-f", "{{.State.Pid}}", container.name))
    return container.pid


def remove(names: list[str]) -> None:
    if names:
        podman("rm", "-f", "-t", "0", *names, check=False, timeout=300)


def cleanup() -> None:
    remove(CREATED)
    CREATED.clear()
    left = podman("ps", "-aq", "--filter", f"label={LABEL}", check=False)
    if left:
        remove(left.split())


# -- HTTP through the proxy ------------------------------------------------------------------
def http_get(port: int, target: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One request on a new connection to 127.0.0.1:port; (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def try_get(port: int, target: str) -> bool:
    try:
        return http_get(port, target, timeout=1.0)[0] == 200
    except OSError:
        return False


# -- /proc ------------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def descendants(root: int) -> list[int]:
    """root and every process below it (by parent PID)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as file:
            return file.read().strip()
    except OSError:
        return ""


def squid_pid(container: Container) -> int:
    for pid in descendants(container.pid):
        if comm(pid) == "squid":
            return pid
    raise RuntimeError(f"{container.name}: no squid process under PID {container.pid}")


def rss_kib(pid: int) -> int:
    try:
        return int(proc_status(pid).get("VmRSS", "0 kB").split()[0])
    except OSError:
        return 0


# -- the measurements --------------------------------------------------------------------------
Samples = dict[str, dict[str, list]]  # row -> system -> values


def record(samples: Samples, row: str, system: str, value) -> None:
    samples.setdefault(row, {}).setdefault(system, []).append(value)


def measure_startup(container: Container, samples: Samples, origin_url: str) -> None:
    """From the `podman start` call to the first answer through the proxy (and
    to /ready 200), polling every POLL seconds from this thread."""
    key = container.system.key
    t0 = time.perf_counter()
    starter = subprocess.Popen([PODMAN, "start", container.name], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    returned = proxy = ready = None
    deadline = t0 + 60
    while time.perf_counter() < deadline:
        if returned is None and starter.poll() is not None:
            returned = time.perf_counter() - t0
        if proxy is None and try_get(container.proxy_port, origin_url):
            proxy = time.perf_counter() - t0
        if container.health_port and ready is None and try_get(container.health_port, "/ready"):
            ready = time.perf_counter() - t0
        if returned is not None and proxy is not None and (ready is not None or not container.health_port):
            break
        time.sleep(POLL)
    if starter.wait() != 0:
        raise RuntimeError(f"podman start {container.name}: {starter.stderr.read().decode()}")
    if proxy is None:
        raise RuntimeError(f"{container.name}: the proxy did not answer within 60 s")
    record(samples, "start_call", key, returned * 1e3)
    record(samples, "start_proxy", key, proxy * 1e3)
    if container.health_port:
        record(samples, "start_ready", key, ready * 1e3)
    init_pid(container)


def start_untimed(container: Container, origin_url: str) -> None:
    podman("start", container.name)
    deadline = time.monotonic() + 60
    while not try_get(container.proxy_port, origin_url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{container.name}: the proxy did not answer within 60 s")
        time.sleep(0.01)
    if container.health_port:
        while not try_get(container.health_port, "/ready"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{container.name}: /ready did not answer 200 within 60 s")
            time.sleep(0.01)
    init_pid(container)


def measure_idle(containers: list[Container], seconds: float, samples: Samples) -> None:
    """PID 1's voluntary context switches over the idle window (all containers
    at once, none of them touched), then RSS."""
    before = {c.name: int(proc_status(c.pid)["voluntary_ctxt_switches"]) for c in containers}
    time.sleep(seconds)
    for c in containers:
        after = int(proc_status(c.pid)["voluntary_ctxt_switches"])
        record(samples, "idle_ctxt", c.system.key, after - before[c.name])
        record(samples, "rss_pid1", c.system.key, rss_kib(c.pid) / 1024)
        record(samples, "rss_all", c.system.key, sum(rss_kib(p) for p in descendants(c.pid)) / 1024)


AB_RESULT = re.compile(r"Requests per second:\s+([\d.]+)")


def ab(port: int, url: str, seconds: float, clients: int) -> float:
    """Requests/s of ab with keep-alive through the proxy at 127.0.0.1:port."""
    argv = ["ab", "-q", "-k", "-c", str(clients), "-t", str(seconds), "-n", "100000000",
            "-X", f"127.0.0.1:{port}", url]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    match = AB_RESULT.search(result.stdout)
    failed = re.search(r"Failed requests:\s+(\d+)", result.stdout)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", result.stdout)
    if not match or (failed and int(failed.group(1))) or non2xx:
        raise RuntimeError(f"ab through port {port} failed:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def measure_health(container: Container, seconds: float, samples: Samples) -> None:
    failures, latencies = health_bench.concurrent(container.health_port, "/health", 50, seconds)
    key = container.system.key
    record(samples, "health_rps", key, len(latencies) / seconds)
    record(samples, "health_p50", key, health_bench.percentile(latencies, 0.5) * 1e3)
    record(samples, "health_p99", key, health_bench.percentile(latencies, 0.99) * 1e3)
    if failures:
        say(f"{container.name}: {failures} failed health requests")


ORPHANS = r"""
import os, sys
n = int(sys.argv[1])
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    os.close(w)
    for _ in range(n):
        if os.fork() == 0:
            os.read(r, 1)   # until the writer closes: then every orphan exits at once
            os._exit(0)
    os._exit(0)             # the orphans go to the namespace's PID 1
os.close(r)
os.waitpid(middle, 0)
print("orphaned", flush=True)
sys.stdin.read()            # benchmarks/run closes our stdin: the pipe closes as we exit
"""


def measure_reaping(container: Container, count: int, samples: Samples) -> None:
    """COUNT processes orphaned to the container's PID 1, then released at once:
    the time until the last of them is gone (reaped) from /proc."""
    key = container.system.key
    before = set(descendants(container.pid))  # the health server is a python3 child too
    helper = subprocess.Popen(
        ["nsenter", "--target", str(container.pid), "--pid", "--",
         sys.executable, "-I", "-S", "-c", ORPHANS, str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if helper.stdout.readline().strip() != "orphaned":
            raise RuntimeError(f"{container.name}: the orphan helper failed")
        orphans = [pid for pid in descendants(container.pid)
                   if pid not in before and comm(pid).startswith("python")
                   and _ppid(pid) == container.pid]
        if len(orphans) < count:
            raise RuntimeError(f"{container.name}: only {len(orphans)} of {count} orphans were "
                               f"re-parented to PID 1 ({container.pid})")
        t0 = time.perf_counter()
        helper.stdin.close()
        left = orphans
        deadline = t0 + 30
        while left and time.perf_counter() < deadline:
            left = [pid for pid in left if os.path.exists(f"/proc/{pid}")]
            if left:
                time.sleep(0.001)
        elapsed = time.perf_counter() - t0
        record(samples, "reap", key, elapsed * 1e3 if not left else f"{len(left)} left")
    finally:
        helper.kill()
        helper.wait()


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return int(file.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def measure_crash(container: Container, samples: Samples) -> None:
    """kill -9 of Squid from the host; the time until the container's PID 1 has
    exited, seen through a pidfd (no polling); the exit code from podman."""
    key = container.system.key
    target = squid_pid(container)
    pidfd = os.pidfd_open(container.pid)
    try:
        t0 = time.perf_counter()
        os.kill(target, signal.SIGKILL)
        ready, _, _ = select.select([pidfd], [], [], 30)
        elapsed = time.perf_counter() - t0
    finally:
        os.close(pidfd)
    code = podman("wait", container.name, timeout=60)
    record(samples, "crash", key, elapsed * 1e3 if ready else "no exit in 30 s")
    record(samples, "crash_code", key, int(code))


def download(port: int, url: str, started: threading.Event, result: dict) -> None:
    """GET url through the proxy; set ``started`` at the first body byte."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(f"GET {url} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            started.set()
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        result["complete"] = bool(head.startswith(b"HTTP/1.1 200") and length
                                  and len(body) == int(length.group(1)))
    except OSError as error:
        result["complete"] = False
        result["error"] = str(error)
    finally:
        started.set()


def stop(container: Container, timeout: int, out: dict) -> None:
    t0 = time.perf_counter()
    subprocess.run([PODMAN, "stop", "-t", str(timeout), container.name],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out["ms"] = (time.perf_counter() - t0) * 1e3
    out["code"] = int(podman("inspect", "-f", "{{.State.ExitCode}}", container.name))


def measure_stops(idle: list[Container], busy: list[Container], slow_url: str, stop_timeout: int,
                  samples: Samples) -> None:
    """`podman stop` of every idle container and of every container with a
    download in flight, all issued 0.15 s apart (each timed on its own)."""
    downloads = {}
    for c in busy:
        started, result = threading.Event(), {}
        thread = threading.Thread(target=download, args=(c.proxy_port, slow_url, started, result))
        thread.start()
        downloads[c.name] = (thread, started, result)
    for _, started, _ in downloads.values():
        started.wait(30)
    stops = []
    for c in [x for pair in zip(idle, busy) for x in pair]:
        out: dict = {}
        thread = threading.Thread(target=stop, args=(c, stop_timeout, out))
        thread.start()
        stops.append((c, thread, out))
        time.sleep(0.15)
    for c, thread, out in stops:
        thread.join()
        key = c.system.key
        if c in idle:
            record(samples, "stop_idle", key, out["ms"])
            record(samples, "stop_idle_code", key, out["code"])
        else:
            thread_d, _, result = downloads[c.name]
            thread_d.join(60)
            record(samples, "stop_busy", key, out["ms"])
            record(samples, "stop_busy_code", key, out["code"])
            record(samples, "stop_busy_complete", key, "yes" if result.get("complete") else "no")


# -- bare Squid on the host ------------------------------------------------------------------
class HostSquid:
    """The image's own Squid binary, outside any container: the image's root
    filesystem exported to a temporary directory, Squid chrooted into it as
    UID 1000 (in a private mount namespace holding /dev and /proc binds), on
    the host's network, with the peers' config on another port."""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix="cpbench-rootfs-")
        os.chmod(self.root, 0o755)  # becomes "/" for UID 1000
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = open(os.path.join(self.root + ".log"), "wb")

    def start(self) -> None:
        name = f"{RUN_ID}-export"
        podman("create", "--name", name, IMAGE)
        CREATED.append(name)
        exporter = subprocess.Popen([PODMAN, "export", name], stdout=subprocess.PIPE)
        subprocess.run(["tar", "--numeric-owner", "-C", self.root, "-x"], stdin=exporter.stdout, check=True)
        exporter.wait()
        remove([name])
        CREATED.remove(name)
        config = render_peer_config().replace("http_port 3128", f"http_port 127.0.0.1:{self.port}")
        config = config.replace("/var/run/squid/squid.pid", "/tmp/squid.pid")
        # The host's name does not resolve here (a container's does): without
        # this line Squid tries reverse DNS at start-up and warns.
        config += "visible_hostname localhost\n"
        with open(os.path.join(self.root, "tmp", "squid.conf"), "w") as file:
            file.write(config)
        for sub in ("dev", "proc"):
            os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        # Squid reopens /dev/stdout and /dev/stderr as UID 1000: the log file is
        # that user's. A private /dev/shm: Squids on the host keep theirs there.
        os.chown(self.log.name, 1000, 0)
        script = (f'mount --rbind /dev "$0/dev" && mount --rbind /proc "$0/proc" '
                  f'&& mount -t tmpfs -o mode=1777 tmpfs "$0/dev/shm" && exec chroot --userspec=1000:0 "$0" /usr/sbin/squid -N -f /tmp/squid.conf')
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, self.root],
            stdout=self.log, stderr=self.log, start_new_session=True)

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + 30
        while not try_get(self.port, url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.flush()
                with open(self.log.name, "rb") as file:
                    tail = file.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"bare Squid on the host did not answer:\n{tail}")
            time.sleep(0.01)

    def close(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)
        # The binds lived in the private namespace, gone with Squid; refuse to
        # delete through a mount point all the same.
        for sub in ("dev", "proc"):
            if os.path.ismount(os.path.join(self.root, sub)):
                raise RuntimeError(f"{self.root}/{sub} is still mounted; not removing {self.root}")
        shutil.rmtree(self.root, ignore_errors=True)


# -- the table -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    key: str
    title: str
    unit: str
    better: str  # "low", "high", or "" (no ratio)
    digits: int = 0


ROWS = (
    Row("start_call", "`podman start` call returns (engine overhead)", "ms", "low"),
    Row("start_proxy", "start → proxy answers (200 through it)", "ms", "low"),
    Row("start_ready", "start → /ready 200", "ms", "low"),
    Row("stop_idle", "stop, idle", "ms", "low"),
    Row("stop_idle_code", "stop, idle: exit code", "", ""),
    Row("stop_busy", "stop, download in flight", "ms", "low"),
    Row("stop_busy_code", "stop, download in flight: exit code", "", ""),
    Row("stop_busy_complete", "stop, download in flight: download complete", "", ""),
    Row("crash", "crash detection: kill -9 Squid → PID 1 exits", "ms", "low", 1),
    Row("crash_code", "crash: exit code", "", ""),
    Row("rss_pid1", "PID 1 RSS", "MiB", "low", 1),
    Row("rss_all", "container RSS (sum of its processes)", "MiB", "low", 1),
    Row("idle_ctxt", "PID 1 voluntary context switches, idle", "", "low"),
    Row("reap", "reaping: orphans released → all reaped", "ms", "low"),
    Row("health_p50", "health: GET /health, 50 clients, p50", "ms", "", 2),
    Row("health_p99", "health: GET /health, 50 clients, p99", "ms", "", 2),
    Row("health_rps", "health: GET /health, 50 clients", "req/s", ""),
    Row("proxy_rps", "proxy throughput, ab -k -c 50, cache hit", "req/s", "high"),
    Row("image_size", "image size", "MB", "low", 1),
)


def number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def cell(values: list, digits: int) -> str:
    if not values:
        return "n/a"
    numbers = [v for v in values if isinstance(v, (int, float))]
    others = sorted({str(v) for v in values if not isinstance(v, (int, float))})
    if not numbers:
        return ", ".join(others)
    median = statistics.median(numbers)
    if len(numbers) == 1:
        text = number(median, digits)
    elif min(numbers) == max(numbers):
        text = f"{number(median, digits)} (all)"
    else:
        text = f"{number(median, digits)} ({number(min(numbers), digits)}–{number(max(numbers), digits)})"
    if others:
        text += " + " + ", ".join(others)
    return text


def median_of(samples: Samples, row: str, system: str) -> float | None:
    numbers = [v for v in samples.get(row, {}).get(system, []) if isinstance(v, (int, float))]
    return statistics.median(numbers) if numbers else None


def ratio(samples: Samples, row: Row) -> str:
    ours = median_of(samples, row.key, "cephaloinit")
    peers = [m for s in SYSTEMS[1:] if (m := median_of(samples, row.key, s.key)) is not None]
    if not row.better or ours is None or not peers:
        return ""
    best = min(peers) if row.better == "low" else max(peers)
    if best == 0:
        return "—" if ours else "1.00"
    return f"{ours / best:.2f}"


def table(samples: Samples, columns: list[tuple[str, str]]) -> str:
    header = ["measure", *[title for _, title in columns], "cephaloinit ÷ best peer"]
    lines = []
    for row in ROWS:
        if row.key not in samples:
            continue
        title = f"{row.title} ({row.unit})" if row.unit else row.title
        lines.append([title, *[cell(samples[row.key].get(key, []), row.digits) for key, _ in columns],
                      ratio(samples, row)])
    widths = [max(len(x) for x in column) for column in zip(header, *lines)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in lines]
    return "\n".join(out)


def goals(samples: Samples) -> str:
    """Each goal of issue 7: the measured medians, met or not, the ratio."""
    m = lambda row, system="cephaloinit": median_of(samples, row, system)  # noqa: E731
    out = []

    def goal(name: str, ok: bool | None, detail: str) -> None:
        verdict = "n/a " if ok is None else ("MET " if ok else "MISSED")
        out.append(f"- {verdict:6s} {name}: {detail}")

    floor, ours = m("start_proxy", "tini"), m("start_ready")
    ours_proxy = m("start_proxy")
    if floor is not None and ours is not None:
        everything = max(ours, ours_proxy or 0)
        goal("start-up ≤ tini floor + 100 ms", everything - floor <= 100,
             f"cephaloinit {everything:.0f} ms to proxy and /ready, tini+Squid {floor:.0f} ms: "
             f"+{everything - floor:.0f} ms, ratio {everything / floor:.2f}")
        sleeper = floor + 2000
        goal("start-up ≥ 10× faster than a supervisor sleeping 2 s", sleeper / everything >= 10,
             f"such a supervisor needs ≥ {sleeper:.0f} ms (tini floor + 2000, derived): "
             f"{sleeper / everything:.1f}× faster")
    stop_ms = m("stop_idle")
    codes = samples.get("stop_idle_code", {}).get("cephaloinit", [])
    if stop_ms is not None:
        goal("idle stop ≤ 2 s with exit 0", stop_ms <= 2000 and set(codes) == {0},
             f"{stop_ms:.0f} ms, exit codes {sorted(set(codes))}; best peer "
             f"{min(m('stop_idle', s.key) for s in SYSTEMS[1:]):.0f} ms, ratio {ratio(samples, ROWS[3])}")
    crash = m("crash")
    if crash is not None:
        goal("crash detection ≤ 100 ms", crash <= 100,
             f"{crash:.1f} ms; ratio to the best peer {ratio(samples, _row('crash'))}")
    ctxt = samples.get("idle_ctxt", {}).get("cephaloinit")
    if ctxt:
        goal("zero idle wakeups", max(ctxt) == 0, f"PID 1 voluntary context switches: {sorted(ctxt)}")
    rss = m("rss_pid1")
    if rss is not None:
        goal("PID 1 RSS ≤ 15 MB", rss * 1.048576 <= 15,
             f"{rss:.1f} MiB = {rss * 1.048576:.1f} MB; ratio to the best peer {ratio(samples, _row('rss_pid1'))}")
    rps, bare = m("proxy_rps"), m("proxy_rps", HOST)
    if rps is not None and bare:
        peer = max(m("proxy_rps", s.key) or 0 for s in SYSTEMS[1:])
        goal("proxy throughput ≥ 0.95× bare Squid", rps / bare >= 0.95,
             f"{rps:,.0f} req/s vs {bare:,.0f} on the host: {rps / bare:.2f}×; "
             f"vs the best containerised peer {rps / peer:.2f}×")
    return "\n".join(out)


def _row(key: str) -> Row:
    return next(row for row in ROWS if row.key == key)


# -- main ----------------------------------------------------------------------------------
def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    with open("/proc/meminfo") as file:
        mem = int(file.readline().split()[1]) // 1024 // 1024
    with open("/etc/os-release") as file:
        release = dict(line.rstrip().split("=", 1) for line in file if "=" in line)
    engine = podman("--version")
    runtime = podman("info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Version}}").split("\n")[0]
    return (f"{cpu}, {os.cpu_count()} CPUs, {mem} GiB; {release.get('PRETTY_NAME', '?').strip(chr(34))}, "
            f"kernel {platform.release()}; {engine}, {runtime}")


def main() -> int:
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
    options = parser.parse_args()
    if options.quick:
        given = set(sys.argv)
        for flag, value in (("--runs", 2), ("--idle", 5.0), ("--load-seconds", 2.0), ("--orphans", 2000)):
            if flag not in given:
                setattr(options, flag[2:].replace("-", "_"), value)

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build_images()
    origin = subprocess.Popen([sys.executable, os.path.join(HERE, "origin.py")],
                              stdout=subprocess.PIPE, text=True)
    atexit.register(origin.kill)
    origin_port = int(origin.stdout.readline())
    threading.Thread(target=lambda: [None for _ in origin.stdout], daemon=True).start()
    gateway = podman("network", "inspect", "podman", "--format",
                     "{{range .Subnets}}{{.Gateway}}{{end}}")
    obj_url = f"http://{gateway}:{origin_port}/obj"
    slow_url = (f"http://{gateway}:{origin_port}/slow?seconds={options.download_seconds:g}"
                f"&chunks={int(options.download_seconds * 10)}")
    host_squid = HostSquid()
    atexit.register(host_squid.close)
    host_squid.start()
    # The same origin, through loopback: the podman bridge (and so the gateway
    # address) only exists while some container runs.
    host_obj_url = f"http://127.0.0.1:{origin_port}/obj"
    host_squid.wait_ready(host_obj_url)

    samples: Samples = {}
    for system in SYSTEMS:
        size = int(podman("image", "inspect", "--format", "{{.Size}}", system.image))
        record(samples, "image_size", system.key, size / 1e6)
    begun = time.monotonic()
    for iteration in range(options.runs):
        order = list(SYSTEMS[iteration % len(SYSTEMS):] + SYSTEMS[:iteration % len(SYSTEMS)])
        say(f"run {iteration + 1}/{options.runs}: {', '.join(s.key for s in order)}")
        a = [create(s, "a", iteration) for s in order]
        b = [create(s, "b", iteration) for s in order]
        c = [create(s, "c", iteration) for s in order]
        for container in a:
            measure_startup(container, samples, obj_url)
        for container in b + c:
            start_untimed(container, obj_url)
        measure_idle(a, options.idle, samples)
        for container in a:
            record(samples, "proxy_rps", container.system.key,
                   ab(container.proxy_port, obj_url, options.load_seconds, 50))
            if container is a[len(a) // 2]:
                record(samples, "proxy_rps", HOST, ab(host_squid.port, host_obj_url, options.load_seconds, 50))
            if container.system.health:
                measure_health(container, options.load_seconds, samples)
        for container in c:
            measure_reaping(container, options.orphans, samples)
        for container in c:
            measure_crash(container, samples)
        measure_stops(a, b, slow_url, options.stop_timeout, samples)
        remove([x.name for x in a + b + c])
        for x in a + b + c:
            CREATED.remove(x.name)
    elapsed = time.monotonic() - begun

    columns = [(s.key, s.title) for s in SYSTEMS] + [(HOST, "bare Squid, host")]
    print(f"CephaloProxy benchmarks: {options.runs} runs, interleaved; median (min–max)")
    print(f"Machine: {machine()}")
    revision = podman("image", "inspect", "--format",
                      '{{index .Labels "org.opencontainers.image.revision"}}', IMAGE)
    print(f"Squid: {podman('run', '--rm', '--entrypoint', '/usr/sbin/squid', IMAGE, '-v').splitlines()[0]}; "
          f"image {IMAGE} (revision {revision}); peers built from {BASE_IMAGE}")
    print(f"Idle window {options.idle:g} s; loads {options.load_seconds:g} s; {options.orphans} orphans; "
          f"download in flight {options.download_seconds:g} s; podman stop -t {options.stop_timeout}; "
          f"measuring took {elapsed / 60:.1f} min")
    print()
    print(table(samples, columns))
    print()
    print("Goals (medians):")
    print(goals(samples))
    if options.json:
        with open(options.json, "w") as file:
            json.dump(samples, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
