"""A stand-in for the operating system under the supervisor (cephaloinit.host).

Nothing is started: ``spawn`` makes up a pid and keeps the child's ends of
its pipes, so a test can write what the child would write. Signals sent go to
a ``World`` that decides what each made-up process does about them. Time is
virtual: when the loop would sleep, the clock jumps to the next timer instead.
Pipes, files and /proc (a directory of the test's own) stay real, so the
supervisor's own code reads them as it would in a container.
"""

from __future__ import annotations

import collections
import os
import selectors
import signal

MAX_WAITS = 20_000  # a run that turns the loop more often than this is stuck


class Stuck(AssertionError):
    """The supervisor waits for an event that nothing will ever send."""


class Process:
    def __init__(self, pid: int, argv: list[str], fds: dict[int, int]):
        self.pid = pid
        self.argv = argv
        self.fds = fds  # the child's ends of its pipes: target fd -> our copy
        self.alive = True
        self.signals: list[int] = []

    @property
    def kind(self) -> str:
        if "health-server" in self.argv:
            return "health"
        if "parse" in self.argv:
            return "helper"
        if "-v" in self.argv:
            return "version"  # `squid -v`, once after the validators
        return "squid"

    def write(self, target: int, data: bytes) -> None:
        os.write(self.fds[target], data)

    def close(self, target: int) -> None:
        os.close(self.fds.pop(target))


class FakeSelector(selectors.BaseSelector):
    """A real selector for the real pipes; its sleeps are virtual."""

    def __init__(self, host: FakeHost):
        self.host = host
        self.real = selectors.DefaultSelector()

    def register(self, fileobj, events, data=None):
        return self.real.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self.real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self.real.modify(fileobj, events, data)

    def get_map(self):
        return self.real.get_map()

    def close(self):
        self.real.close()

    def select(self, timeout=None):
        self.host.waits += 1
        if self.host.waits > MAX_WAITS:
            raise Stuck(f"more than {MAX_WAITS} turns of the loop")
        acted = self.host.world.before_wait()
        ready = self.real.select(0)
        if ready or acted:  # a step of the scenario gets a turn of the loop before time moves
            return ready
        if timeout is None:
            raise Stuck("the loop would sleep with no timer armed and nothing to read")
        self.host.now += timeout
        return []


class FakeHost:
    """What cephaloinit.host.Host offers, for a run with no process at all."""

    def __init__(self, world: World, proc: str, wakeup_write: int):
        self.world = world
        self.proc = proc
        self.wakeup_write = wakeup_write
        self.now = 1000.0
        self.waits = 0
        self.next_pid = 100
        self.processes: dict[int, Process] = {}  # every process ever spawned
        self.exited: collections.deque[tuple[int, int]] = collections.deque()
        self.unreaped: set[int] = set()  # exited or alive, not yet collected
        self.sent: list[tuple[float, int, int]] = []  # (when, pid or 0 for all, signal)

    def clock(self) -> float:
        return self.now

    def selector(self) -> selectors.BaseSelector:
        return FakeSelector(self)

    def spawn(self, argv, env, actions, process_group=False, inherited=None) -> int:
        pid = self.next_pid
        self.next_pid += 1
        # The child's ends stay open as long as the made-up child holds them.
        process = Process(pid, list(argv), {target: os.dup(source) for _, source, target in actions})
        self.processes[pid] = process
        self.unreaped.add(pid)
        self.world.spawned(process)
        return pid

    def kill(self, pid: int, signum: int) -> None:
        self.sent.append((self.now, pid, signum))
        process = self.processes.get(pid)
        if process is not None and process.alive:
            process.signals.append(signum)
            self.world.signalled(process, signum)

    def kill_all(self, signum: int) -> None:
        self.sent.append((self.now, 0, signum))
        for process in list(self.processes.values()):
            if process.alive:
                process.signals.append(signum)
                self.world.signalled(process, signum)

    def waitpid(self) -> tuple[int, int]:
        if self.exited:
            pid, status = self.exited.popleft()
            self.unreaped.discard(pid)
            return pid, status
        if self.unreaped:
            return 0, 0
        raise ChildProcessError()

    # -- what the test's world does ------------------------------------------------
    def exit(self, process: Process, code: int = 0, signum: int | None = None) -> None:
        """``process`` exits: its pipes close and SIGCHLD comes to us."""
        process.alive = False
        for target in list(process.fds):
            process.close(target)
        status = signum if signum is not None else code << 8
        self.exited.append((process.pid, status))
        self.signal_us(signal.SIGCHLD)

    def orphan_exits(self) -> int:
        """A process re-parented to us exits."""
        pid = self.next_pid
        self.next_pid += 1
        self.unreaped.add(pid)
        self.exited.append((pid, 0))
        self.signal_us(signal.SIGCHLD)
        return pid

    def signal_us(self, *signums: int) -> None:
        os.write(self.wakeup_write, bytes(signums))

    def alive(self, kind: str) -> list[Process]:
        return [p for p in self.processes.values() if p.alive and p.kind == kind]

    def signals_to(self, kind: str) -> list[int]:
        return [s for p in self.processes.values() if p.kind == kind for s in p.signals]


class World:
    """What the made-up processes do; the default is a healthy container.
    A test changes the switches or overrides a method, and ``before_wait``
    runs the scenario's steps."""

    def __init__(self) -> None:
        self.host: FakeHost | None = None
        self.supervisor = None
        self.parse_code = 0  # what `squid -k parse` exits with
        self.parse_output = b""
        self.parse_hangs = False
        self.health_ready = True  # writes READY=1 when started
        self.squid_listens = True  # pid file and LISTEN socket when started
        self.squid_clients = 0  # established client connections
        self.reload_listens = True  # after a HUP, its ports open again
        self.helper_ignores_term = False
        self.pending: list[tuple] = []  # (condition, action), run in order
        self.context = None  # what each action is given (the test's run)
        self.seen: list[tuple] = []  # (state, frozenset of live kinds, ready) at each wait
        self.spawn_times: list[tuple[float, str]] = []  # (when, kind) of each start
        self.inode = 4000
        self.listening: int | None = None  # the inode of Squid's listening socket

    # -- steps -----------------------------------------------------------------------
    def when(self, condition, action) -> None:
        """Once ``condition(supervisor)`` holds at a wait, ``action(context)``;
        steps run one at a time, in the order given."""
        self.pending.append((condition, action))

    def before_wait(self) -> bool:
        """Record where the supervisor waits; run the next step if its time has
        come. True when a step ran."""
        supervisor = self.supervisor
        live = frozenset(p.kind for p in self.host.processes.values() if p.alive)
        self.seen.append((supervisor.state, live, supervisor.ready))
        if self.pending and self.pending[0][0](supervisor):
            _, action = self.pending.pop(0)
            action(self.context)
            return True
        return False

    # -- processes -----------------------------------------------------------------
    def spawned(self, process: Process) -> None:
        self.spawn_times.append((self.host.now, process.kind))
        if process.kind == "helper":
            if not self.parse_hangs:
                if self.parse_output:
                    process.write(1, self.parse_output)
                self.host.exit(process, self.parse_code)
        elif process.kind == "version":
            process.write(1, b"Squid Cache: Version 6.13\n")
            self.host.exit(process, 0)
        elif process.kind == "health":
            if self.health_ready:
                process.write(3, b"READY=1\n")
        elif self.squid_listens:
            self.listen(process)

    def signalled(self, process: Process, signum: int) -> None:
        if signum == signal.SIGKILL:
            self.host.exit(process, signum=signal.SIGKILL)
        elif process.kind == "squid":
            self.squid_signalled(process, signum)
        elif signum == signal.SIGTERM and not (process.kind == "helper" and self.helper_ignores_term):
            self.host.exit(process, 0)

    def squid_signalled(self, process: Process, signum: int) -> None:
        if signum == signal.SIGTERM:
            self.close_ports()  # then it waits its shutdown_lifetime, or a second signal
        elif signum == signal.SIGINT:
            self.host.exit(process, 0)
        elif signum == signal.SIGHUP:  # reconfigures: its ports close and open again
            self.close_ports()
            if self.reload_listens:
                self.listen(process)

    # -- Squid's sockets, as /proc shows them ----------------------------------------
    def listen(self, process: Process) -> None:
        config = self.supervisor.config
        if config.pid_file:
            with open(config.pid_file, "w") as file:
                file.write(f"{process.pid}\n")
        self.inode += 1
        fd_dir = f"{self.host.proc}/{process.pid}/fd"
        os.makedirs(fd_dir, exist_ok=True)
        os.symlink(f"socket:[{self.inode}]", f"{fd_dir}/{self.inode}")
        self.listening = self.inode
        self.write_tcp()

    def close_ports(self) -> None:
        self.listening = None
        self.write_tcp()

    def clients(self, count: int) -> None:
        self.squid_clients = count
        self.write_tcp()

    def write_tcp(self) -> None:
        port, listening = self.supervisor.squid_port, self.listening
        lines = ["  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
                 "   uid  timeout inode"]
        if listening is not None:
            lines.append(f"   0: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 "
                         f"00000000  1000        0 {listening} 1")
        for n in range(self.squid_clients):
            lines.append(f"   {n + 1}: 0100007F:{port:04X} 0100007F:9C40 01 00000000:00000000 "
                         f"00:00000000 00000000  1000        0 {9000 + n} 1")
        os.makedirs(f"{self.host.proc}/net", exist_ok=True)
        with open(f"{self.host.proc}/net/tcp", "w") as file:
            file.write("\n".join(lines) + "\n")
