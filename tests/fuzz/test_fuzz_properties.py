"""Property-based tests of the health server's request parser (hypothesis, a
dev dependency; skipped with the reason when it is not installed)."""

from __future__ import annotations

import pytest

from cephaloinit.health import http

from . import harness

# -- property-based: the parser --------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a dev dependency (pip install hypothesis)")
from hypothesis import given, settings, strategies as st  # noqa: E402

TOKEN = st.text(alphabet="!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                min_size=1, max_size=12)
EOL = st.sampled_from(["\r\n", "\n"])
FIELD_VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)
TARGET = st.one_of(
    st.sampled_from(["/health", "/ready", "/metrics", "/status", "/", "*", "/health/", "/a?b#c"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=60),
    st.builds(lambda host, path: f"http://{host}{path}", TOKEN, st.sampled_from(["/health", "", "/x?y"])),
)


@st.composite
def requests(draw):
    """Mostly well-formed heads: the parser's interesting paths are near valid."""
    eol = draw(EOL)
    line = f"{draw(st.sampled_from(['GET', 'HEAD', 'POST']) | TOKEN)} {draw(TARGET)} " \
           f"HTTP/{draw(st.integers(0, 9))}.{draw(st.integers(0, 9))}"
    headers = draw(st.lists(st.tuples(TOKEN, FIELD_VALUE), max_size=6))
    leading = draw(st.sampled_from(["", "\r\n", "\n\n"]))
    text = leading + line + eol + "".join(f"{k}:{v}{eol}" for k, v in headers) + eol
    return text.encode("latin-1")


@settings(max_examples=400, deadline=None, database=None)
@given(requests())
def test_well_formed_heads_parse_and_keep_their_fields(data):
    request = harness.check_parse(data)
    if request is not None:
        assert request.version.startswith("HTTP/1.")
        assert data.lstrip(b"\r\n").startswith(request.method.encode() + b" ")


@settings(max_examples=400, deadline=None, database=None)
@given(requests(), st.data())
def test_a_request_fed_in_pieces_gives_the_same_answer_as_whole(data, pieces):
    """What the server does: parse the growing buffer after each chunk."""
    whole = harness.check_parse(data)
    cut = pieces.draw(st.integers(0, len(data)))
    prefix = data[:cut]
    try:
        partial = http.parse(prefix)
    except http.RequestError:
        partial = "error"
    assert partial is None or partial == whole or cut >= http.head_end(data)


@settings(max_examples=600, deadline=None, database=None)
@given(st.binary(max_size=12000))
def test_arbitrary_bytes_never_break_the_parser(data):
    harness.check_parse(data)


@settings(max_examples=300, deadline=None, database=None)
@given(requests(), st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=4)), max_size=4))
def test_damaged_heads_never_break_the_parser(data, damage):
    buffer = bytearray(data)
    for position, junk in damage:
        position %= len(buffer) + 1
        buffer[position:position] = junk
    harness.check_parse(bytes(buffer))


