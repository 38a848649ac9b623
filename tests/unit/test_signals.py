import signal

from cephaloinit import signals


def test_decode_keeps_first_occurrence_order_and_merges_repeats():
    data = bytes([signal.SIGHUP, signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD])
    assert signals.decode(data) == [signal.SIGHUP, signal.SIGCHLD, signal.SIGTERM]


def test_every_signal_we_act_on_has_a_handler_and_children_get_them_back():
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
        assert signum in signals.HANDLED
        assert signum in signals.RESET_IN_CHILDREN
    assert signal.SIGPIPE in signals.RESET_IN_CHILDREN


def test_install_sets_handlers_and_uninstall_restores_defaults():
    signals.install()
    try:
        for signum in signals.HANDLED:
            assert callable(signal.getsignal(signum))
        for signum in signals.IGNORED:
            assert signal.getsignal(signum) == signal.SIG_IGN
    finally:
        signals.uninstall()
    for signum in signals.HANDLED + signals.IGNORED:
        expected = signal.SIG_IGN if signum in signals.PYTHON_IGNORES else signal.SIG_DFL
        assert signal.getsignal(signum) == expected


def test_every_catchable_signal_is_handled_or_ignored_so_none_can_kill_us():
    catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    assert set(signals.HANDLED) | set(signals.IGNORED) == catchable
    assert not set(signals.HANDLED) & set(signals.IGNORED)


def test_exec_forwards_every_handled_signal_but_chld_and_none_of_the_synchronous_ones():
    assert signal.SIGCHLD not in signals.FORWARDED_BY_EXEC
    assert set(signals.FORWARDED_BY_EXEC) == set(signals.HANDLED) - {signal.SIGCHLD}
    for signum in (signal.SIGSEGV, signal.SIGFPE, signal.SIGTTIN, signal.SIGTTOU):
        assert signum not in signals.FORWARDED_BY_EXEC
    for signum in (signal.SIGPIPE, signal.SIGWINCH, signal.SIGTSTP, signal.SIGCONT,
                   signal.SIGALRM, signal.SIGRTMIN, signal.SIGRTMAX):
        assert signum in signals.FORWARDED_BY_EXEC


def test_children_get_every_handled_and_ignored_signal_back():
    assert set(signals.RESET_IN_CHILDREN) == set(signals.HANDLED) | set(signals.IGNORED)


def test_names():
    assert signals.name(signal.SIGKILL) == "SIGKILL"
    assert signals.name(200) == "signal 200"


def test_install_sets_the_wakeup_fd_before_any_handler(monkeypatch):
    """A signal that finds its handler must also find the pipe, or it is lost."""
    calls = []
    real_signal, real_wakeup = signals._signal.signal, signals._signal.set_wakeup_fd
    monkeypatch.setattr(signals._signal, "signal",
                        lambda n, h: calls.append("handler") or real_signal(n, h))
    monkeypatch.setattr(signals._signal, "set_wakeup_fd",
                        lambda fd, **kw: calls.append("wakeup") or real_wakeup(fd, **kw))
    try:
        signals.install()
    finally:
        monkeypatch.undo()
        signals.uninstall()
    assert calls[0] == "wakeup"
    assert calls.count("handler") == len(signals.HANDLED) + len(signals.IGNORED)


def test_the_health_server_keeps_the_handlers_and_pipe_installed_at_start(monkeypatch):
    """No window with default dispositions: a TERM there used to be lost."""
    from cephaloinit import cli
    from cephaloinit.health import server
    from cephaloinit.logs import Logger
    from cephaloinit.settings import Settings

    seen = {}

    def fake_serve(settings, log, wakeup_fd):
        seen["fd"] = wakeup_fd
        seen["handlers"] = {signal.getsignal(s) for s in signals.HANDLED}
        return 0

    wakeup_fd = signals.install()
    try:
        monkeypatch.setattr(server, "serve", fake_serve)
        set_to_default = []
        real_signal = signals._signal.signal
        for module in (signal, signals._signal):
            monkeypatch.setattr(module, "signal",
                                lambda n, h: set_to_default.append(n) if h == signal.SIG_DFL
                                else real_signal(n, h))
        assert cli.dispatch("health-server", [], Settings(), Logger(), wakeup_fd) == 0
    finally:
        monkeypatch.undo()
        signals.uninstall()
    assert seen["fd"] == wakeup_fd
    assert seen["handlers"] == {signals._do_nothing}
    assert set_to_default == []
