import json
import os
import re
import time

from cephaloinit import logs
from cephaloinit.logs import Logger

WHEN = time.mktime((2026, 11, 27, 9, 5, 3, 0, 0, -1))


def test_text_format_is_exactly_date_time_level_message():
    line = Logger().format("INFO", "Squid started with PID 7", WHEN)
    assert line == b"2026-11-27 09:05:03 [INFO] Squid started with PID 7\n"


def test_text_entry_with_newlines_stays_on_one_line():
    line = Logger().format("ERROR", "first\nsecond", WHEN)
    assert line == b"2026-11-27 09:05:03 [ERROR] first second\n"


def test_json_format_is_one_object_per_line():
    line = Logger(fmt="json").format("WARNING", 'say "hi"\nthere', WHEN)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"time": "2026-11-27 09:05:03", "level": "WARNING",
                                "message": 'say "hi"\nthere'}


def test_info_and_warning_go_to_stdout_errors_to_stderr(capfd):
    log = Logger()
    log.info("to out")
    log.warning("also out")
    log.error("to err")
    out, err = capfd.readouterr()
    assert re.fullmatch(r"\S+ \S+ \[INFO\] to out\n\S+ \S+ \[WARNING\] also out\n", out)
    assert re.fullmatch(r"\S+ \S+ \[ERROR\] to err\n", err)


def test_messages_below_the_level_are_dropped(capfd):
    log = Logger("WARNING")
    log.debug("no")
    log.info("no")
    log.warning("yes")
    out = capfd.readouterr().out
    assert "no" not in out and "[WARNING] yes" in out


def test_debug_is_shown_at_debug_level(capfd):
    Logger("DEBUG").debug("details")
    assert "[DEBUG] details" in capfd.readouterr().out


def test_write_line_to_a_closed_reader_is_quietly_abandoned():
    read_end, write_end = os.pipe()
    os.close(read_end)
    logs.write_line(write_end, b"nobody listens\n")  # EPIPE; SIGPIPE is ignored by Python
    os.close(write_end)


def test_write_line_waits_out_a_non_blocking_full_pipe():
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    big = b"x" * (1 << 20) + b"\n"
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        received = 0
        while chunk := os.read(read_end, 65536):
            received += len(chunk)
        os._exit(0 if received == len(big) else 1)
    os.close(read_end)
    logs.write_line(write_end, big)
    os.close(write_end)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
