"""A stand-in for Squid whose behaviour the fault-injection tests script through
environment variables (the supervisor passes its environment on to Squid).

Like Squid: `-k parse` and `-z` are short helper runs (`-k parse` fails when the config
contains `no_such_directive`); otherwise it writes the
pid file named by the -f config's pid_filename and listens on its http_port.
Every signal it receives is reported as one line on stdout
(``scripted-squid: got SIGUSR1``), which the supervisor relays, and appended
to $FAKE_LOG, so a test can tell exactly what reached "Squid".

FAKE_LOG            file the events are appended to as well
FAKE_PARSE_GATE     `-k parse` waits until this file exists (holds VALIDATING)
FAKE_PARSE_IGNORE   comma-separated signals `-k parse` ignores while it waits
FAKE_LISTEN_GATE    wait until this file exists before listening (holds STARTING_SQUID)
FAKE_START_EXIT     exit with this code before listening (a crash during start-up)
FAKE_IGNORE         comma-separated signals ignored (TERM, INT, ...)
FAKE_HUP_CLOSES     "1": on HUP close the listener for good (a reload that never ends)
FAKE_ORPHANS        leave this many orphans behind once listening

TERM, INT and QUIT end it (exit 0) unless ignored. Client connections are
accepted and held open, as a client in the middle of a download would be.

Signals are blocked first thing and taken one at a time by the main thread
(sigtimedwait), never handled inside a handler: a handler that prints can
be interrupted by the next signal's handler in the middle of the print.
"""

import signal

HANDLED = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2}
signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)  # pending from here on, never lost

import os  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402


def note(text: str, stdout: bool = True) -> None:
    line = f"scripted-squid: {text}"
    path = os.environ.get("FAKE_LOG")
    if path:
        with open(path, "a") as file:
            file.write(line + "\n")
    if stdout:
        print(line, flush=True)


def wait_for(path: str, take_signals: bool = True) -> None:
    """Until the test opens the gate (checked every 10 ms), taking signals in
    the meantime, or leaving them to their handlers."""
    while not os.path.exists(path):
        if not take_signals:
            time.sleep(0.01)
            continue
        info = signal.sigtimedwait(HANDLED, 0.01)
        if info is not None:
            on_signal(info.si_signo)


def ignored(variable: str) -> set[str]:
    return {"SIG" + name.strip().upper() for name in os.environ.get(variable, "").split(",") if name.strip()}


def config_words(path: str):
    """The words of each line of a config, includes followed (cephaloinit's
    container layer includes the mounted file)."""
    with open(path) as file:
        for line in file:
            words = line.split()
            if words[:1] == ["include"]:
                yield from config_words(words[1])
            elif words:
                yield words


args = sys.argv[1:]
if "-k" in args:  # squid -k parse: the output is captured by the supervisor, not relayed
    def parse_stopped(signum, frame):
        note(f"parse got {signal.Signals(signum).name}", stdout=False)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, parse_stopped)
    for name in ignored("FAKE_PARSE_IGNORE"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    note("parse started", stdout=False)
    gate = os.environ.get("FAKE_PARSE_GATE")
    if gate:
        wait_for(gate, take_signals=False)
    words = config_words(args[args.index("-f") + 1])
    code = 1 if any("no_such_directive" in line for line in words) else 0
    if code:
        print("FATAL: Bungled scripted configuration", flush=True)
    sys.exit(code)
if "-z" in args:
    sys.exit(0)


def on_signal(signum: int) -> None:
    name = signal.Signals(signum).name
    note(f"got {name}")
    if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        note(f"exiting on {name}")
        os._exit(0)
    if signum == signal.SIGHUP and os.environ.get("FAKE_HUP_CLOSES") == "1" and state["listener"]:
        # shutdown first: a close alone leaves the socket listening while the
        # accept thread is still blocked in accept() on it.
        state["listener"].shutdown(socket.SHUT_RDWR)
        state["listener"].close()
        state["listener"] = None
        note("listener closed for good")


port, pid_file = None, None
for words in config_words(args[args.index("-f") + 1]):
    if words[0] == "http_port" and port is None:
        port = int(words[1].rsplit(":", 1)[-1])
    elif words[0] == "pid_filename":
        pid_file = words[1]  # the last one counts, as in Squid

state = {"listener": None}
held = []
IGNORED = ignored("FAKE_IGNORE")

# A blocked signal is queued even when ignored: ignored ones are unblocked.
for signum in [s for s in HANDLED if s.name in IGNORED]:
    signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    HANDLED.discard(signum)

note(f"started as PID {os.getpid()}")
if os.environ.get("FAKE_START_EXIT"):
    note("crashing during start-up")
    sys.exit(int(os.environ["FAKE_START_EXIT"]))
gate = os.environ.get("FAKE_LISTEN_GATE")
if gate:
    wait_for(gate)

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(64)
state["listener"] = listener


def accept_forever(sock):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        held.append(conn)
        note("client connected")


# The accept thread inherits the blocked mask: signals stay for the main thread.
threading.Thread(target=accept_forever, args=(listener,), daemon=True).start()
if pid_file:
    with open(pid_file, "w") as file:
        file.write(f"{os.getpid()}\n")
note("listening")

orphans = int(os.environ.get("FAKE_ORPHANS", "0"))
if orphans:
    # Each child forks a grandchild and exits at once: the grandchild is
    # re-parented to PID 1, which must reap it when it exits.
    for _ in range(orphans):
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                os._exit(0)
            os._exit(0)
        os.waitpid(pid, 0)
    note(f"left {orphans} orphans")

while True:
    on_signal(signal.sigwaitinfo(HANDLED).si_signo)
