"""Request parsing and response bytes of the health server (cephaloinit.health.http)."""

import pytest

from cephaloinit.health import http


def status_of(raw: bytes) -> int:
    with pytest.raises(http.RequestError) as caught:
        http.parse(raw)
    return caught.value.status


def test_complete_request_is_parsed():
    request = http.parse(b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n")
    assert request == http.Request("GET", "/health", "/health", "HTTP/1.1")


def test_incomplete_head_returns_none_until_the_blank_line():
    assert http.parse(b"GET /health HTTP/1.1\r\nHost: x\r\n") is None
    assert http.parse(b"GET /hea") is None
    assert http.parse(b"") is None


def test_bare_lf_line_endings_and_leading_blank_lines_are_accepted():
    assert http.parse(b"\r\n\nGET /ready HTTP/1.0\nHost: x\n\n").path == "/ready"


def test_http_1_0_without_headers():
    assert http.parse(b"HEAD /status HTTP/1.0\r\n\r\n").method == "HEAD"


def test_query_and_fragment_are_not_part_of_the_path():
    assert http.parse(b"GET /health?verbose=1 HTTP/1.1\r\n\r\n").path == "/health"


def test_absolute_form_target_is_reduced_to_its_path():
    assert http.parse(b"GET http://proxy:8080/metrics HTTP/1.1\r\n\r\n").path == "/metrics"
    assert http.parse(b"GET http://proxy:8080 HTTP/1.1\r\n\r\n").path == "/"


def test_head_over_8_kib_without_end_is_431():
    assert status_of(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * http.MAX_HEAD) == 431


def test_complete_head_over_8_kib_is_431():
    assert status_of(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * http.MAX_HEAD + b"\r\n\r\n") == 431


def test_request_line_over_8_kib_is_431():
    assert status_of(b"GET /" + b"a" * http.MAX_HEAD + b" HTTP/1.1\r\n\r\n") == 431


def test_head_of_exactly_8_kib_is_accepted():
    start = b"GET /health HTTP/1.1\r\nX: "
    raw = start + b"a" * (http.MAX_HEAD - len(start) - 4) + b"\r\n\r\n"
    assert len(raw) == http.MAX_HEAD
    assert http.parse(raw).path == "/health"


@pytest.mark.parametrize("raw", [
    b"GET /health\r\n\r\n",                           # HTTP/0.9 style, no version
    b"GET  /health HTTP/1.1\r\n\r\n",                 # two spaces
    b"GET /health HTTP/1.1 extra\r\n\r\n",
    b"G(T /health HTTP/1.1\r\n\r\n",                  # not a token
    b"GET /hea\x01lth HTTP/1.1\r\n\r\n",              # control character
    b"GET /h\xc3\xa9 HTTP/1.1\r\n\r\n",               # raw non-ASCII in the target
    b"GET /health HTTP/1\r\n\r\n",
    b"GET /health http/1.1\r\n\r\n",
    b"GET /health HTTP/1.1\r\nNoColon\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n",      # space before the colon
    b"GET /health HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",  # obs-fold
    b"GET /health HTTP/1.1\r\nA: b\rc\r\n\r\n",       # bare CR in a value
    b"GET /health HTTP/1.1\r\n: empty-name\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",  # a TLS ClientHello, roughly
])
def test_malformed_requests_are_400(raw):
    assert status_of(raw) == 400


@pytest.mark.parametrize("raw, status, message", [
    (b"GET /health\r\n\r\n", 400, "malformed request line"),
    (b"G(T /h\x01 HTTP/9\r\n\r\n", 400, "malformed method"),  # the first fault is named
    (b"GET /h\x01 HTTP/9\r\n\r\n", 400, "malformed request target"),
    (b"GET /h HTTP/9\r\nNoColon\r\n\r\n", 400, "malformed HTTP version"),
    (b"GET /h HTTP/2.0\r\nNoColon\r\n\r\n", 505, "only HTTP/1.0 and HTTP/1.1 are supported"),
    (b"GET /h HTTP/1.1\r\nA: b\r\nNoColon\r\n\r\n", 400, "malformed header line"),
    (b"GET /h HTTP/1.1\r\nA: " + b"a" * http.MAX_HEAD + b"\r\n\r\n", 431,
     f"request head longer than {http.MAX_HEAD} bytes"),
    (b"G" * (http.MAX_HEAD + 1), 431, f"request head longer than {http.MAX_HEAD} bytes"),
])
def test_each_refusal_names_the_first_fault_and_its_status(raw, status, message):
    with pytest.raises(http.RequestError) as raised:
        http.parse(raw)
    assert (raised.value.status, raised.value.message, str(raised.value)) == (status, message, message)


def test_an_incomplete_head_of_exactly_8_kib_is_still_awaited():
    assert http.parse(b"G" * http.MAX_HEAD) is None


def test_trailing_blank_lines_and_a_bare_lf_header_are_read_as_the_head_ends():
    request = http.parse(b"\r\n\nHEAD http://h:1/a?x HTTP/1.0\nA: b\r\n\n\r\n")
    assert request == http.Request("HEAD", "http://h:1/a?x", "/a", "HTTP/1.0")


def test_http_2_request_line_is_505():
    assert status_of(b"GET /health HTTP/2.0\r\n\r\n") == 505


def test_any_method_token_parses_so_the_server_can_answer_405():
    assert http.parse(b"DELETE /health HTTP/1.1\r\n\r\n").method == "DELETE"


def test_head_end_finds_the_first_blank_line():
    raw = b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody\r\n\r\n"
    assert raw[:http.head_end(raw)].endswith(b"A: b\r\n\r\n")


def test_response_has_length_close_and_no_store():
    raw = http.response(200, b"OK\n", now=0)
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Content-Length: 3" in lines
    assert b"Connection: close" in lines
    assert b"Cache-Control: no-store" in lines
    assert b"Date: Thu, 01 Jan 1970 00:00:00 GMT" in lines
    assert body == b"OK\n"


def test_head_response_keeps_the_length_but_drops_the_body():
    raw = http.response(503, b"not ready\n", head_only=True)
    assert raw.endswith(b"\r\n\r\n")
    assert b"Content-Length: 10" in raw
    assert b"not ready" not in raw


def test_extra_headers_are_sent():
    raw = http.response(405, b"no\n", headers=(("Allow", "GET, HEAD"),))
    assert b"\r\nAllow: GET, HEAD\r\n" in raw
    assert raw.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")


def test_every_status_the_server_sends_has_a_reason_phrase():
    for status in (200, 400, 404, 405, 408, 431, 500, 503, 505):
        assert http.response(status, b"").split(b"\r\n")[0] == f"HTTP/1.1 {status} {http.REASONS[status]}".encode()
