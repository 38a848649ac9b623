import os
import signal

import pytest

from cephaloinit import signals
from cephaloinit.loop import Loop


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe2(os.O_NONBLOCK)
    yield read_end, write_end
    os.close(read_end)
    os.close(write_end)


def test_no_timer_means_select_blocks_forever(pipe):
    loop = Loop(pipe[0], lambda s: None)
    assert loop.next_timeout() is None


def test_timers_fire_in_deadline_order_once_due(pipe):
    clock = FakeClock()
    loop = Loop(pipe[0], lambda s: None, clock=clock)
    fired = []
    loop.call_later(2, lambda: fired.append("second"))
    loop.call_later(1, lambda: fired.append("first"))
    assert loop.next_timeout() == 1
    clock.now += 1.5
    loop.run_due_timers()
    assert fired == ["first"]
    assert loop.next_timeout() == pytest.approx(0.5)
    clock.now += 1
    loop.run_due_timers()
    assert fired == ["first", "second"]
    assert loop.next_timeout() is None


def test_timers_with_equal_deadlines_keep_their_order(pipe):
    clock = FakeClock()
    loop = Loop(pipe[0], lambda s: None, clock=clock)
    fired = []
    for name in "abc":
        loop.call_at(101, lambda name=name: fired.append(name))
    clock.now = 101
    loop.run_due_timers()
    assert fired == ["a", "b", "c"]


def test_a_cancelled_timer_never_fires_nor_sets_the_timeout(pipe):
    clock = FakeClock()
    loop = Loop(pipe[0], lambda s: None, clock=clock)
    fired = []
    timer = loop.call_later(1, lambda: fired.append(1))
    timer.cancel()
    assert loop.next_timeout() is None
    clock.now += 5
    loop.run_due_timers()
    assert fired == []


def test_an_overdue_timer_gives_a_zero_timeout(pipe):
    clock = FakeClock()
    loop = Loop(pipe[0], lambda s: None, clock=clock)
    loop.call_later(1, lambda: None)
    clock.now += 10
    assert loop.next_timeout() == 0


def test_run_once_sleeps_until_the_timer_and_runs_it(pipe):
    loop = Loop(pipe[0], lambda s: None)
    fired = []
    loop.call_later(0.01, lambda: fired.append(True))
    loop.run_once()
    assert fired == [True]


def test_signal_bytes_in_the_wakeup_pipe_reach_the_handler_decoded(pipe):
    received = []
    loop = Loop(pipe[0], received.append)
    os.write(pipe[1], bytes([signal.SIGTERM, signal.SIGCHLD, signal.SIGTERM]))
    loop.run_once()
    assert received == [[signal.SIGTERM, signal.SIGCHLD]]


def test_a_reader_closed_by_an_earlier_callback_is_not_called(pipe):
    loop = Loop(pipe[0], lambda s: None)
    a_read, a_write = os.pipe()
    b_read, b_write = os.pipe()
    calls = []

    def close_both():
        calls.append("first")
        for fd in (a_read, b_read):
            loop.remove_reader(fd)
        os.close(a_read)
        os.close(b_read)

    loop.add_reader(a_read, close_both)
    loop.add_reader(b_read, close_both)
    os.write(a_write, b"x")
    os.write(b_write, b"x")
    loop.run_once()
    assert calls == ["first"]
    os.close(a_write)
    os.close(b_write)


def test_real_signals_arrive_through_the_wakeup_pipe():
    wakeup_fd = signals.install()
    try:
        received = []
        loop = Loop(wakeup_fd, received.extend)
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGHUP)
        loop.run_once()
        assert set(received) == {signal.SIGUSR1, signal.SIGHUP}
    finally:
        signals.uninstall()


def test_watch_registers_changes_and_stops_watching(pipe):
    import selectors
    loop = Loop(pipe[0], lambda s: None)
    read_end, write_end = os.pipe()
    calls = []
    loop.watch(write_end, selectors.EVENT_WRITE, lambda: calls.append("writable"))
    loop.run_once()
    assert calls == ["writable"]
    loop.watch(write_end, selectors.EVENT_READ, lambda: calls.append("readable"))
    assert loop.selector.get_key(write_end).events == selectors.EVENT_READ
    loop.watch(write_end, 0)
    loop.watch(write_end, 0)  # already unwatched: no error
    assert write_end not in loop.selector.get_map()
    os.close(read_end)
    os.close(write_end)


def test_a_cancelled_timer_lets_go_of_its_callback(pipe):
    loop = Loop(pipe[0], lambda s: None)
    timer = loop.call_later(60, lambda: None)
    callback = timer.callback
    timer.cancel()
    assert timer.callback is not callback
