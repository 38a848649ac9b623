"""LOG_FORMAT=json: Squid's lines become JSON objects, one per line, none lost."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from cephaloinit import logs, squidlog

STDOUT, STDERR = 1, 2
NOW = 1796535824.0  # what the relay's clock says for lines that carry no time


def relay():
    return squidlog.Relay(clock=lambda: NOW)


def refuse(name: str):
    raise ValueError(f"not JSON: {name}")


def objects(chunk: bytes, fd=STDERR, converter=None) -> list[dict]:
    """What a strict JSON parser (no NaN, no Infinity) makes of the relay's output."""
    out = (converter or relay()).convert(fd, chunk)
    assert out.endswith(b"\n")
    lines = out.split(b"\n")[:-1]
    return [json.loads(line, parse_constant=refuse) for line in lines]


def found_time() -> str:
    """The relay's time, given to a line that has none of its own."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(NOW))


# Real lines: Squid 5.7 (Debian 12) and 6.13 (Debian 13) start-up and failure.
CACHE_LOG = b"""\
2026/12/06 05:46:01| Starting Squid Cache version 6.13 for x86_64-pc-linux-gnu...
2026/12/06 05:46:01| Accepting HTTP Socket connections at conn3 local=[::]:3128 remote=[::] FD 11 flags=9
    listening port: 3128
2026/12/06 05:43:29| FATAL: Cannot open '/dev/stdout' for writing.
\tThe parent directory must be writeable by the
2026/12/06 05:43:30| WARNING: Squid is configured to use ssl_bump without sslcrtd_program
2026/12/06 05:43:31 kid1| ERROR: Connection to peer failed
2026/12/06 05:43:32.123 kid1| 33,2| client_side.cc(1234) parse: a debug line
2026/12/06 05:43:33| SECURITY ALERT: Host header forgery detected on conn7
2026/12/06 05:43:34| assertion failed: store.cc:1234: "e"
"""


def test_cache_log_lines_become_time_level_source_message():
    found = objects(CACHE_LOG)
    assert len(found) == 10  # one object per line: nothing merged, nothing dropped
    assert found[0] == {"time": "2026-12-06 05:46:01", "level": "INFO", "source": "squid",
                        "message": "Starting Squid Cache version 6.13 for x86_64-pc-linux-gnu..."}
    assert [o["level"] for o in found] == ["INFO", "INFO", "INFO", "ERROR", "ERROR", "WARNING",
                                           "ERROR", "INFO", "WARNING", "ERROR"]
    assert found[2] == {"time": "2026-12-06 05:46:01", "level": "INFO", "source": "squid",
                        "message": "listening port: 3128"}  # a continuation keeps its line's time
    # The project's one redaction rule (redact.line) hides a quoted word made only of
    # base64 characters, as a key's last line is: '/dev/stdout' is one too.
    assert found[3]["message"] == "FATAL: Cannot open '[redacted]' for writing."
    assert found[4]["message"] == "The parent directory must be writeable by the"
    assert found[6]["message"] == "ERROR: Connection to peer failed"  # kid1| (workers) is cut too
    assert found[7]["time"] == "2026-12-06 05:43:32"


def test_a_line_without_a_cache_log_prefix_is_a_message_at_the_relay_time():
    found = objects(b"WARNING: Cannot write log file: /dev/stderr\n/dev/stderr: Permission denied\n")
    stamp = found_time()
    assert found == [
        {"time": stamp, "level": "WARNING", "source": "squid",
         "message": "WARNING: Cannot write log file: /dev/stderr"},
        {"time": stamp, "level": "INFO", "source": "squid", "message": "/dev/stderr: Permission denied"},
    ]


def test_a_continuation_without_a_line_before_it_is_its_own_message():
    assert objects(b"\tindented, alone\n")[0]["message"] == "\tindented, alone"


def test_continuations_follow_the_line_before_on_the_same_stream_only():
    converter = relay()
    objects(b"2026/12/06 05:43:29| FATAL: bad\n", STDERR, converter)
    assert objects(b"  more\n", STDERR, converter)[0]["level"] == "ERROR"
    assert objects(b"  more\n", STDOUT, converter)[0]["level"] == "INFO"


ACCESS = (b"cephaloproxy-access 2026-12-06 05:46:23 9 127.0.0.1 502 3416 GET TCP_MISS "
          b"HIER_NONE/- - http://example.invalid/a%20b?\n")


def test_an_access_line_in_our_format_becomes_fields():
    assert objects(ACCESS, STDOUT) == [{
        "time": "2026-12-06 05:46:23", "level": "INFO", "source": "squid", "client": "127.0.0.1",
        "method": "GET", "url": "http://example.invalid/a%20b?", "status": 502, "bytes": 3416,
        "duration_ms": 9, "result": "TCP_MISS", "hierarchy": "HIER_NONE/-", "user": None}]


def test_access_fields_squid_leaves_empty_are_null_and_a_url_keeps_its_spaces():
    line = (b"cephaloproxy-access 2026-12-06 05:46:23 10 ::1 - - CONNECT NONE_NONE HIER_NONE/- "
            b"alice example.invalid:443 with space\n")
    found = objects(line, STDOUT)[0]
    assert (found["status"], found["bytes"], found["user"]) == (None, None, "alice")
    assert found["url"] == "example.invalid:443 with space" and found["client"] == "::1"


@pytest.mark.parametrize("line", [
    b"1796535824.918     12 127.0.0.1 TCP_MISS/502 3404 GET http://example.invalid/ - HIER_NONE/- text/html",
    b"cephaloproxy-access too few fields",
    b"cephaloproxy-accessory 2026-12-06 05:46:23 9 127.0.0.1 502 3416 GET TCP_MISS HIER_NONE/- - u",
    b"{not json",
    b"[1, 2]",
    b'{"a": 1} trailing',
    b"",
])
def test_any_other_line_is_relayed_whole_as_a_message(line):
    found = objects(line + b"\n", STDOUT)
    assert len(found) == 1 and found[0]["source"] == "squid"
    assert found[0]["message"] == line.decode()


def test_json_objects_pass_unchanged():
    """The health server's own lines (it logs JSON itself), or a user's JSON logformat."""
    ours = b'{"time": "2026-12-06 05:46:01", "level": "INFO", "message": "Health server stopped"}\n'
    assert relay().convert(STDOUT, ours) == ours


def test_bytes_that_are_not_utf8_and_control_characters_still_make_valid_json():
    found = objects(b"2026/12/06 05:46:01| bad \xff\xfe bytes \x1b[31m and a \x00\n")
    assert found[0]["message"] == "bad \ufffd\ufffd bytes \x1b[31m and a \x00"


def test_a_private_key_in_a_message_is_redacted():
    key_line = b"2026/12/06 05:46:01| ERROR: unrecognized: 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7'\n"
    found = objects(b"-----BEGIN PRIVATE KEY-----\n" + key_line)
    assert "PRIVATE" not in json.dumps(found) and "MIIEvQIBADAN" not in json.dumps(found)
    assert found[1]["level"] == "ERROR"


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
def test_no_line_of_a_key_squid_quotes_reaches_a_json_line():
    key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, check=True).stdout.decode()
    body = [line for line in key.splitlines() if line and "-----" not in line]
    chunk = "".join(f"2026/12/06 04:00:00| ERROR: unrecognized: '{line}'\n" for line in key.splitlines())
    for fd in (STDOUT, STDERR):
        out = relay().convert(fd, chunk.encode()).decode()
        assert not any(part in out for part in body if len(part) > 8)
        assert out.count("\n") == len(key.splitlines())


def test_many_lines_in_one_chunk_stay_in_order_one_object_each():
    chunk = b"".join(ACCESS.replace(b" 9 ", f" {n} ".encode()) for n in range(500))
    found = objects(chunk, STDOUT)
    assert [o["duration_ms"] for o in found] == list(range(500))


def test_the_relay_hook_rewrites_children_lines_and_leaves_ours_alone(monkeypatch):
    written = []
    monkeypatch.setattr(logs.OUTPUT, "write_line", lambda fd, line: written.append((fd, line)))
    monkeypatch.setattr(logs.OUTPUT, "relayed", relay().convert)
    logs.write_line(STDOUT, ACCESS)  # a child's line
    logs.Logger("INFO", "json").info("ours")
    assert json.loads(written[0][1])["method"] == "GET"
    assert json.loads(written[1][1])["message"] == "ours" and "source" not in json.loads(written[1][1])


def test_without_the_hook_children_lines_pass_as_they_are(monkeypatch):
    written = []
    monkeypatch.setattr(logs.OUTPUT, "write_line", lambda fd, line: written.append((fd, line)))
    logs.write_line(STDOUT, ACCESS)
    assert written == [(STDOUT, ACCESS)]


def test_the_logformat_names_every_field_the_relay_reads():
    """The container layer's logformat and the parser must agree on the order."""
    words = squidlog.ACCESS_LOGFORMAT.split()
    assert words[:3] == ["logformat", squidlog.ACCESS_LOGFORMAT_NAME, squidlog.ACCESS_MARKER]
    # The time format holds one space: two words; then one code per field, the URL last.
    assert words[3:5] == ["%{%Y-%m-%d", "%H:%M:%S}tl"]
    assert words[5:] == ["%tr", "%>a", "%>Hs", "%<st", "%rm", "%Ss", "%Sh/%<a", "%[un", "%ru"]


def test_a_line_nested_too_deep_to_parse_is_a_message_not_a_crash():
    line = b'{"ua": "x", "y": ' + b"[" * 3000 + b"\n"
    (found,) = objects(line)
    assert found["message"] == line.decode().rstrip("\n")


def test_a_line_with_nan_or_infinity_is_a_message_since_strict_json_has_neither():
    line = b'{"a": NaN, "b": Infinity}\n'
    assert objects(line) == [{"time": found_time(), "level": "INFO", "source": "squid",
                                     "message": '{"a": NaN, "b": Infinity}'}]


@pytest.mark.parametrize("status", ["\u00b2", "1" * 5000, "\u0663"])
def test_access_numbers_that_are_not_ascii_digits_or_are_absurdly_long_are_null(status):
    line = ACCESS.replace(b" 502 ", f" {status} ".encode())
    (found,) = objects(line, STDOUT)
    assert found["status"] is None and found["method"] == "GET"
