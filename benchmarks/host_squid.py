"""Bare Squid on the host: the image's own Squid binary outside any container,
the throughput row's last column (no port forwarding, no PID 1 of its own)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

from benchmarks import load
from benchmarks.containers import CREATED, IMAGE, PODMAN, RUN_ID, free_port, podman, remove, render_peer_config


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
        script = ('mount --rbind /dev "$0/dev" && mount --rbind /proc "$0/proc" '
                  '&& mount -t tmpfs -o mode=1777 tmpfs "$0/dev/shm" '
                  '&& exec chroot --userspec=1000:0 "$0" /usr/sbin/squid -N -f /tmp/squid.conf')
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, self.root],
            stdout=self.log, stderr=self.log, start_new_session=True)

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + 30
        while not load.try_get(self.port, url):
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
