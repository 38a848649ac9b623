"""The systems under test, their images, and their containers under podman.

Every container of a run is labelled with RUN_ID, so that cleanup() also finds
what an interrupted run left. IMAGE, BASE_IMAGE and PEER_TAG come from the
environment, like the Makefile's IMAGE.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import NamedTuple

from benchmarks import load
from cephaloinit import procfs, squid
from cephaloinit.settings import Settings
from cephaloinit.validators import config as config_layer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PODMAN = "podman"
IMAGE = os.environ.get("IMAGE", "localhost/cephaloproxy:trixie")
BASE_IMAGE = os.environ.get("BASE_IMAGE", "localhost/cephaloproxy-base:trixie")
PEER_TAG = os.environ.get("PEER_TAG", "localhost/cephaloproxy-peer")  # the peers' repository; each peer is a tag
RUN_ID = f"cpbench-{os.getpid()}"
LABEL = f"io.cephaloproxy.bench={RUN_ID}"
START_TIMEOUT = 60.0  # seconds for a container's proxy (and /ready) to answer


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
PEERS = tuple(system.key for system in SYSTEMS[1:])
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
        shutdown_lifetime=squid.shutdown_lifetime(settings.shutdown_timeout))
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


def image_size_mb(image: str) -> float:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image)) / 1e6


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


def wait_until_answers(port: int, target: str, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not load.try_get(port, target):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer 200 within {START_TIMEOUT:g} s")
        time.sleep(0.01)


def start_untimed(container: Container, origin_url: str) -> None:
    """Start, then wait for the proxy (and /ready) to answer 200."""
    podman("start", container.name)
    wait_until_answers(container.proxy_port, origin_url, f"{container.name}: the proxy")
    if container.health_port:
        wait_until_answers(container.health_port, "/ready", f"{container.name}: /ready")
    init_pid(container)


def remove(names: list[str]) -> None:
    if names:
        podman("rm", "-f", "-t", "0", *names, check=False, timeout=300)


def remove_created(containers: list[Container]) -> None:
    remove([c.name for c in containers])
    for c in containers:
        CREATED.remove(c.name)


def cleanup() -> None:
    remove(CREATED)
    CREATED.clear()
    left = podman("ps", "-aq", "--filter", f"label={LABEL}", check=False)
    if left:
        remove(left.split())


# -- inside a container, seen from the host -----------------------------------------------
def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    return [pid, *procfs.descendants(pid)]


def squid_pid(container: Container) -> int:
    for pid in process_tree(container.pid):
        found = procfs.stat(pid)
        if found is not None and found.comm == "squid":
            return pid
    raise RuntimeError(f"{container.name}: no squid process under PID {container.pid}")


def machine() -> str:
    """The host, its kernel, and the engine: the table's second line."""
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


# -- the origin ----------------------------------------------------------------------
class Origin(NamedTuple):
    """Where the systems fetch from: benchmarks/origin.py on the host."""

    obj_url: str  # the cacheable 1 KiB object, through the podman gateway
    slow_url: str  # the download in flight during a stop
    host_obj_url: str  # the object through loopback, for bare Squid on the host


def start_origin(download_seconds: float) -> Origin:
    origin = subprocess.Popen([sys.executable, os.path.join(REPO, "benchmarks", "origin.py")],
                              stdout=subprocess.PIPE, text=True)
    atexit.register(origin.kill)
    port = int(origin.stdout.readline())
    threading.Thread(target=lambda: [None for _ in origin.stdout], daemon=True).start()
    gateway = podman("network", "inspect", "podman", "--format",
                     "{{range .Subnets}}{{.Gateway}}{{end}}")
    # Bare Squid fetches through loopback: the podman bridge (and so the
    # gateway address) only exists while some container runs.
    return Origin(f"http://{gateway}:{port}/obj",
                  f"http://{gateway}:{port}/slow?seconds={download_seconds:g}&chunks={int(download_seconds * 10)}",
                  f"http://127.0.0.1:{port}/obj")
