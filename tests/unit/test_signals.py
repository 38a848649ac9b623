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
    finally:
        signals.uninstall()
    for signum in signals.HANDLED:
        assert signal.getsignal(signum) == signal.SIG_DFL


def test_names():
    assert signals.name(signal.SIGKILL) == "SIGKILL"
    assert signals.name(200) == "signal 200"


def test_install_sets_the_wakeup_fd_before_any_handler(monkeypatch):
    """A signal that finds its handler must also find the pipe, or it is lost."""
    calls = []
    real_signal, real_wakeup = signal.signal, signal.set_wakeup_fd
    monkeypatch.setattr(signal, "signal", lambda n, h: calls.append("handler") or real_signal(n, h))
    monkeypatch.setattr(signal, "set_wakeup_fd",
                        lambda fd, **kw: calls.append("wakeup") or real_wakeup(fd, **kw))
    try:
        signals.install()
    finally:
        monkeypatch.undo()
        signals.uninstall()
    assert calls[0] == "wakeup" and calls.count("handler") == len(signals.HANDLED)


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
        real_signal = signal.signal
        monkeypatch.setattr(signal, "signal",
                            lambda n, h: set_to_default.append(n) if h == signal.SIG_DFL
                            else real_signal(n, h))
        assert cli.dispatch("health-server", [], Settings(), Logger(), wakeup_fd) == 0
    finally:
        monkeypatch.undo()
        signals.uninstall()
    assert seen["fd"] == wakeup_fd
    assert seen["handlers"] == {signals._do_nothing}
    assert set_to_default == []
