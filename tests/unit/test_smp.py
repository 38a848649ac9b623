"""SMP logic without Squid: the workers count as Squid's master reads it,
the command line it chooses, and kids found in a fake /proc."""

import os
import signal

import pytest

from cephaloinit import procfs, smp, squid, squidconf, statefile
from cephaloinit.health import metrics
from cephaloinit.settings import Settings
from cephaloinit.validators import directories

pytestmark = pytest.mark.timeout(10)


def config_of(tmp_path, text):
    path = tmp_path / "squid.conf"
    path.write_text(text)
    return squidconf.read_config(str(path))


@pytest.mark.parametrize("text, expected", [
    ("http_port 3128\n", 1),
    ("workers 2\n", 2),
    ("workers 4\nworkers 3\n", 3),  # the last line wins, as in Squid
    ("workers 0\n", 1),  # no kids: a single process, as with -N
    ("workers two\n", 1),  # squid -k parse names it
    ("workers 0x2\n", 2),  # Squid reads its integers as C's strtoll(..., 0) does
    ("workers 010\n", 8),
    # Squid's master reads the config as process number 0: what it counts.
    ("if ${process_number} = 0\nworkers 2\nendif\n", 2),
    ("if ${process_number} = 1\nworkers 2\nendif\n", 1),
])
def test_workers_is_read_as_squids_master_reads_it(tmp_path, text, expected):
    assert smp.workers(config_of(tmp_path, text)) == expected


def test_one_worker_keeps_minus_n_and_more_run_squids_master_in_the_foreground():
    settings = Settings(squid_binary="/sq")
    assert squid.run_command(settings, "/c", 1) == ["/sq", "-N", "-f", "/c"]
    assert squid.run_command(settings, "/c", 2) == ["/sq", "--foreground", "-d", "0", "-f", "/c"]


def test_smp_adds_the_ipc_and_shared_memory_directories_named_by_workers(tmp_path):
    one = config_of(tmp_path, "http_port 3128\n")
    assert smp.writable_directories(one) == []
    two = config_of(tmp_path, "http_port 3128\nworkers 2\n")
    where = f"workers, {tmp_path}/squid.conf line 2"
    assert smp.writable_directories(two) == [("/var/run/squid", where), ("/dev/shm", where)]


def test_the_directories_validator_checks_them_with_the_rest(tmp_path):
    settings = Settings(run_dir=f"{tmp_path}/run", log_dir=f"{tmp_path}/log", lib_dir=f"{tmp_path}/lib",
                        spool_dir=f"{tmp_path}/spool", cache_dir=f"{tmp_path}/cache")
    context = type("Context", (), {"settings": settings})()
    config = config_of(tmp_path, "workers 2\n")
    wanted = dict(directories.runtime_directories(context, config))
    assert wanted["/var/run/squid"] == f"workers, {tmp_path}/squid.conf line 1"
    assert "/dev/shm" in wanted


@pytest.mark.parametrize("argv, name", [
    (["(squid-1)", "--kid", "squid-1", "--foreground"], "squid-1"),
    (["(squid-coord-3)", "--kid", "squid-coord-3"], "squid-coord-3"),
    (["squid", "--foreground", "-f", "/c"], None),  # the master
    (["/usr/sbin/squid"], None),
    (["()"], None),
    ([], None),  # a zombie has no command line
])
def test_kid_names_come_from_the_argv0_squid_gives_them(argv, name):
    assert smp.kid_name(argv) == name


@pytest.mark.parametrize("name, worker", [
    ("squid-1", True), ("squid-12", True), ("squid-coord-3", False), ("squid-disk-2", False),
    ("squid", False), ("squid-", False),
])
def test_workers_are_told_from_the_coordinator_and_diskers(name, worker):
    assert smp.Kid(7, name).is_worker is worker


LISTEN_TCP6 = (
    "  sl  local_address                         remote_address                        st tx_queue "
    "rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:0C38 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000  1000        0 555 1 0000000000000000 100 0 0 10 0\n"
)


def fake_tree(tmp_path, processes):
    """processes: (pid, ppid, state, argv, socket inodes held)."""
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp6").write_text(LISTEN_TCP6)
    for process in processes:
        add_process(tmp_path, *process)
    return str(tmp_path)


def add_process(tmp_path, pid, ppid, state, argv, inodes):
    directory = tmp_path / str(pid)
    (directory / "fd").mkdir(parents=True)
    (directory / "stat").write_text(f"{pid} (squid) {state} {ppid} 0 0\n")
    (directory / "cmdline").write_text("".join(word + "\0" for word in argv))
    for number, inode in enumerate(inodes):
        os.symlink(f"socket:[{inode}]", directory / "fd" / str(number + 10))


def kid(pid, name, inodes=(), ppid=10, state="S"):
    return (pid, ppid, state, [f"({name})", "--kid", name], inodes)


def test_kids_are_the_masters_live_named_children(tmp_path):
    proc = fake_tree(tmp_path, [
        (10, 1, "S", ["squid", "--foreground"], []),
        kid(11, "squid-coord-3"), kid(12, "squid-2"), kid(13, "squid-1"),
        kid(14, "squid-1", state="Z"),  # a dead kid not yet collected by the master
        kid(15, "squid-1", ppid=99),  # another master's
    ])
    assert sorted(smp.kids(10, proc)) == [smp.Kid(11, "squid-coord-3"), smp.Kid(12, "squid-2"),
                                          smp.Kid(13, "squid-1")]


def test_only_workers_holding_the_listening_socket_count(tmp_path):
    proc = fake_tree(tmp_path, [
        (10, 1, "S", ["squid", "--foreground"], []),
        kid(11, "squid-coord-3", inodes=[555]),  # the coordinator opened it: not a worker
        kid(12, "squid-2", inodes=[777]),  # holds some other socket only
        kid(13, "squid-1", inodes=[555]),
    ])
    assert squid.listening_workers(3128, 10, proc) == 1
    assert squid.listening_workers(3129, 10, proc) == 0
    os.symlink("socket:[555]", tmp_path / "12" / "fd" / "20")
    assert squid.listening_workers(3128, 10, proc) == 2


def test_an_smp_master_listens_through_its_workers_but_not_through_other_children(tmp_path):
    # What /ready asks: the published Squid PID is the master, which holds no socket.
    proc = fake_tree(tmp_path, [
        (10, 1, "S", ["squid", "--foreground"], []),
        kid(11, "squid-coord-3", inodes=[555]),
        (12, 10, "S", ["/usr/lib/squid/security_file_certgen"], [555]),  # a helper, not a kid
    ])
    assert not squid.listening(3128, 10, proc)
    add_process(tmp_path, *kid(13, "squid-1", inodes=[555]))
    assert squid.listening(3128, 10, proc)


def test_kid_restarts_are_a_counter_in_metrics():
    state = statefile.from_json('{"state": "RUNNING", "ready": true, "squid_kid_restarts": 3}')
    text = metrics.render(metrics.families(state, 0.0, True, None, {}))
    assert "# TYPE cephaloproxy_squid_kid_restarts_total counter\n" in text
    assert "\ncephaloproxy_squid_kid_restarts_total 3\n" in text
    without = metrics.render(metrics.families(statefile.from_json('{"state": "RUNNING"}'),
                                              0.0, True, None, {}))
    assert "kid_restarts" not in without


@pytest.fixture
def loop():
    from cephaloinit.loop import Loop
    read, write = os.pipe()
    made = Loop(read, lambda signums: None)
    yield made
    made.close()
    os.close(read)
    os.close(write)


def turn(loop, predicate, seconds=5.0):
    deadline = loop.clock() + seconds
    while not predicate():
        assert loop.clock() < deadline, "not reached"
        tick = loop.call_later(0.01, lambda: None)
        loop.run_once()
        tick.cancel()


@pytest.fixture
def named_kid():
    """Starts children of this test process that show ``(name)`` as their
    argv[0], as Squid's kids do (this process plays the master); each is
    killed and reaped after the test."""
    import subprocess
    started = []

    def start(name: str) -> subprocess.Popen:
        started.append(subprocess.Popen([f"({name})", "30"], executable="/bin/sleep"))
        return started[-1]
    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_kids_death_is_seen_through_its_pidfd_and_its_replacement_found(loop, named_kid):
    first = named_kid("squid-1")
    events = []
    watch = smp.KidWatch(loop, lambda kid: events.append(("death", kid)),
                         lambda kid: events.append(("restart", kid)),
                         lambda name: events.append(("given up", name)),
                         lambda error: events.append(("failure", error)))
    watch.start(os.getpid())
    assert list(watch.watched) == [first.pid]
    first.kill()
    first.wait()  # what the master does; the pidfd fires either way
    turn(loop, lambda: events)
    assert events == [("death", smp.Kid(first.pid, "squid-1"))]
    second = named_kid("squid-1")  # the master starts it again
    turn(loop, lambda: len(events) == 2)
    assert events[1] == ("restart", smp.Kid(second.pid, "squid-1"))
    watch.stop(signal.SIGKILL)  # kids left without a master are killed
    assert second.wait(timeout=5) == -signal.SIGKILL
    assert watch.watched == {} and loop.next_timeout() is None


def test_a_kid_squid_does_not_restart_is_given_up_on(loop, monkeypatch, named_kid):
    process = named_kid("squid-2")
    monkeypatch.setattr(smp, "KID_RESTART_WAIT", 0.2)
    events = []
    watch = smp.KidWatch(loop, lambda kid: events.append("death"), lambda kid: events.append("restart"),
                         lambda name: events.append(f"given up {name}"), print)
    watch.start(os.getpid())
    process.kill()
    process.wait()
    turn(loop, lambda: len(events) == 2)
    assert events == ["death", "given up squid-2"]
    assert loop.next_timeout() is None  # no timer left: no wakeups while degraded


def test_a_kid_given_up_on_is_looked_for_again_after_a_reload(loop, monkeypatch, named_kid):
    # A HUP makes Squid's master forget a kid's failures and start it again,
    # however long after we gave up on it: it is found, counted and watched.
    process = named_kid("squid-2")
    monkeypatch.setattr(smp, "KID_RESTART_WAIT", 0.2)
    events = []
    watch = smp.KidWatch(loop, lambda kid: events.append("death"),
                         lambda kid: events.append(f"restart {kid.name}"),
                         lambda name: events.append(f"given up {name}"), print)
    try:
        watch.start(os.getpid())
        process.kill()
        process.wait()
        turn(loop, lambda: len(events) == 2)
        watch.look_again()
        assert loop.next_timeout() is not None
        successor = named_kid("squid-2")
        turn(loop, lambda: len(events) == 3)
        assert events == ["death", "given up squid-2", "restart squid-2"]
        assert list(watch.watched) == [successor.pid]
        watch.look_again()  # nothing missing: no timer
        assert loop.next_timeout() is None
    finally:
        watch.stop()


def test_a_pid_that_is_no_longer_the_kid_when_opened_is_not_watched(loop, monkeypatch, named_kid):
    # The kid died and its PID went to another process between the look in
    # /proc and pidfd_open: the pidfd is of that process, which is dropped,
    # and the kid is looked for again.
    stranger = named_kid("not-a-kid")
    monkeypatch.setattr(smp, "kids", lambda master, proc=None: [smp.Kid(stranger.pid, "squid-1")])
    monkeypatch.setattr(smp, "KID_RESTART_WAIT", 0.2)
    events = []
    fds_before = len(os.listdir("/proc/self/fd"))
    watch = smp.KidWatch(loop, lambda kid: events.append("death"), lambda kid: events.append("restart"),
                         lambda name: events.append(f"given up {name}"), print)
    try:
        watch.start(os.getpid())
        assert watch.watched == {} and "squid-1" in watch.missing
        assert len(os.listdir("/proc/self/fd")) == fds_before  # its pidfd is closed
        turn(loop, lambda: events)  # every look finds the stranger again, until we give up
        assert events == ["given up squid-1"]
        assert loop.next_timeout() is None  # no timer left: no wakeups while degraded
        assert stranger.poll() is None  # never signalled
    finally:
        watch.stop()


def test_without_pidfd_open_start_raises_and_stop_leaves_nothing_registered(loop, monkeypatch):
    # A seccomp filter may refuse pidfd_open: the supervisor then warns once.
    def refused(pid):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(smp, "kids", lambda master, proc=None: [smp.Kid(os.getpid(), "squid-1")])
    monkeypatch.setattr(os, "pidfd_open", refused)
    watch = smp.KidWatch(loop, print, print, print, print)
    with pytest.raises(PermissionError):
        watch.start(10)
    watch.stop()
    assert watch.watched == {} and loop.next_timeout() is None
    assert len(loop.selector.get_map()) == 1  # the wakeup pipe only


def test_a_successor_whose_pid_is_no_longer_the_kid_is_not_counted(loop, monkeypatch, named_kid):
    # Seen in /proc, gone by pidfd_open: no restart is reported for it, and
    # the kid that does come is reported once.
    first = named_kid("squid-1")
    events = []
    watch = smp.KidWatch(loop, lambda kid: events.append("death"),
                         lambda kid: events.append(f"restart {kid.pid}"), print, print)
    try:
        watch.start(os.getpid())
        stranger = named_kid("not-a-kid")
        looks = []

        def stranger_in_its_place(master, proc=None):
            looks.append(master)
            return [smp.Kid(stranger.pid, "squid-1")]
        monkeypatch.setattr(smp, "kids", stranger_in_its_place)
        first.kill()
        first.wait()
        turn(loop, lambda: len(looks) == 2)  # two looks found only the stranger
        assert events == ["death"] and watch.watched == {}
        monkeypatch.undo()
        successor = named_kid("squid-1")
        turn(loop, lambda: len(events) == 2)
        assert events == ["death", f"restart {successor.pid}"]
        assert list(watch.watched) == [successor.pid]
    finally:
        watch.stop()


def test_a_pidfd_is_closed_when_reading_proc_after_opening_it_fails(loop, monkeypatch, named_kid):
    # With one descriptor left, pidfd_open takes it and /proc cannot be read.
    kid = named_kid("squid-1")
    fds_before = len(os.listdir("/proc/self/fd"))

    def exhausted(pid, proc=procfs.PROC):
        raise OSError(24, "Too many open files")
    monkeypatch.setattr(smp, "kids", lambda master, proc=None: [smp.Kid(kid.pid, "squid-1")])
    monkeypatch.setattr(procfs, "stat", exhausted)
    watch = smp.KidWatch(loop, print, print, print, print)
    try:
        with pytest.raises(OSError):
            watch.start(os.getpid())
        monkeypatch.undo()
        assert len(os.listdir("/proc/self/fd")) == fds_before
    finally:
        watch.stop()


def test_a_successor_that_cannot_be_watched_ends_the_watch_with_one_report(loop, monkeypatch, named_kid):
    # Out of file descriptors, say, when the restarted kid turns up: reported
    # once, nothing left registered, and PID 1's loop goes on.
    first = named_kid("squid-1")
    events = []
    watch = smp.KidWatch(loop, lambda kid: events.append("death"), lambda kid: events.append("restart"),
                         lambda name: events.append("given up"),
                         lambda error: events.append(f"failure {error.errno}"))
    watch.start(os.getpid())
    first.kill()
    first.wait()
    monkeypatch.setattr(smp, "kids", lambda master, proc=None: [smp.Kid(os.getpid(), "squid-1")])

    def exhausted(pid):
        raise OSError(24, "Too many open files")
    monkeypatch.setattr(os, "pidfd_open", exhausted)
    turn(loop, lambda: len(events) == 2)
    assert events == ["death", "failure 24"]  # not a restart: that PID was never checked
    assert watch.watched == {} and loop.next_timeout() is None
    assert len(loop.selector.get_map()) == 1  # the wakeup pipe only
