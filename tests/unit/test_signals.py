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
