"""Squid's log lines as JSON objects, for LOG_FORMAT=json.

Under ``run`` every line a child writes passes through ``Relay.convert``
before it reaches our stdout or stderr. The health server already writes
JSON objects: they pass unchanged. Everything else is Squid's:

- an access-log line in ACCESS_LOGFORMAT (the container layer's, when the
  configuration has no access_log of its own) becomes an object with the
  request's fields;
- a cache.log line (``2026/12/06 05:46:01| message``, ``... kid1| ...`` with
  workers) becomes {"time", "level", "source", "message"}, the level taken
  from Squid's FATAL/ERROR/WARNING prefixes; a continuation line (indented)
  keeps the level of the line it continues;
- any other line (a user's own logformat, a helper's message) becomes a
  "message", so nothing is dropped and no two lines are merged.

It is on the path of every access-log line, so it does only prefix tests,
one split and one ``json.dumps`` per line. Messages pass through
``redact.line`` (access records do not: they are a client's request, never a
file of ours).
"""

from __future__ import annotations

import json
import re
import time

from . import redact

SOURCE = "squid"
ACCESS_MARKER = "cephaloproxy-access"
ACCESS_LOGFORMAT_NAME = "cephaloproxy"
# Space-separated, every field free of spaces but the URL, which comes last.
# %tl with a strftime format gives our own time format; %[un escapes a user
# name the way Squid's native format does; "-" is Squid's "none".
ACCESS_LOGFORMAT = (f"logformat {ACCESS_LOGFORMAT_NAME} {ACCESS_MARKER} "
                    "%{%Y-%m-%d %H:%M:%S}tl %tr %>a %>Hs %<st %rm %Ss %Sh/%<a %[un %ru")
_ACCESS_FIELDS = 12  # the marker, date, time and 9 fields, the URL last

_CACHE_LOG = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d)(?:\.\d+)?(?: [a-z]+\d+)?\| ?")
# Squid's own words for its levels; FATAL is our ERROR (we have four levels).
_LEVELS = (("FATAL", "ERROR"), ("ERROR", "ERROR"), ("assertion failed", "ERROR"),
           ("WARNING", "WARNING"), ("SECURITY ALERT", "WARNING"))


def level_of(message: str) -> str:
    for prefix, level in _LEVELS:
        if message.startswith(prefix):
            return level
    return "INFO"


_string = json.encoder.encode_basestring_ascii  # a JSON string literal, quotes included
_ACCESS_JSON = ('{"time": %s, "level": "INFO", "source": "squid", "client": %s, "method": %s, '
                '"url": %s, "status": %s, "bytes": %s, "duration_ms": %s, "result": %s, '
                '"hierarchy": %s, "user": %s}\n')


def _number(text: str) -> str:
    """A JSON number when Squid printed digits, else null ("-" is Squid's none).
    ASCII digits only (``isdigit`` takes other scripts' too), and no more than
    a 64-bit counter has: Python refuses to print an int of 4,301 digits."""
    if text.isascii() and text.isdigit() and len(text) <= 20:
        return str(int(text))  # no leading zeros: JSON has none
    return "null"


def access_json(line: str) -> str | None:
    """An ACCESS_LOGFORMAT line as one JSON line; None when it is not one.

    Built from a template with each string quoted by the json module's own
    encoder: a third of the cost of json.dumps on a dict, on every request."""
    parts = line.split(" ", _ACCESS_FIELDS - 1)
    if len(parts) != _ACCESS_FIELDS or parts[0] != ACCESS_MARKER:
        return None
    _, day, clock, duration, client, status, size, method, result, hierarchy, user, url = parts
    return _ACCESS_JSON % (
        _string(f"{day} {clock}"), _string(client), _string(method), _string(url),
        _number(status), _number(size), _number(duration), _string(result),
        _string(hierarchy), "null" if user == "-" else _string(user))


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # Python reads NaN and Infinity; strict parsers do not


def _is_json_object(line: str) -> bool:
    """Whether a line passes as it is; anything else becomes a message. Deep
    nesting raises RecursionError before the parser sees the line's end."""
    try:
        return isinstance(json.loads(line, parse_constant=_refuse_constant), dict)
    except (ValueError, RecursionError):
        return False


class Relay:
    """Converts chunks of whole lines from one child's stdout or stderr."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.last: dict[int, tuple[str, str]] = {}  # fd -> (time, level) of its last cache.log line

    def convert(self, fd: int, chunk: bytes) -> bytes:
        lines = chunk.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        out = [self.line(fd, raw.decode("utf-8", "replace")) for raw in lines]
        return "".join(out).encode("utf-8")

    def line(self, fd: int, text: str) -> str:
        """One line of ``fd``, without its newline, as one JSON line."""
        if text.startswith(ACCESS_MARKER):
            record = access_json(text)
            if record is not None:
                return record
        elif text.startswith("{") and _is_json_object(text):
            return text + "\n"  # the health server's own lines, or a user's JSON logformat
        return json.dumps(self.message(fd, text)) + "\n"

    def message(self, fd: int, text: str) -> dict:
        matched = _CACHE_LOG.match(text)
        if matched:
            year, month, day, clock = matched.groups()
            stamp, message = f"{year}-{month}-{day} {clock}", text[matched.end():]
            level = level_of(message)
            self.last[fd] = (stamp, level)
        elif text[:1] in (" ", "\t") and fd in self.last:
            (stamp, level), message = self.last[fd], text.strip()
        else:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.clock()))
            message = text
            level = level_of(message)
        return {"time": stamp, "level": level, "source": SOURCE, "message": redact.line(message)}
