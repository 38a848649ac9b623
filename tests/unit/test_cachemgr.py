"""Where the cache manager is asked, and its info page read (Squid 5.7 and 6.13)."""

from __future__ import annotations

import pytest

from cephaloinit.health import cachemgr
from cephaloinit.squidconf import directives_in

# Captured from Squid 6.13 (Debian 13, the image), trimmed to its sections; Squid 5.7
# (Debian 12) prints the same lines with "Build Info: Debian linux".
INFO_6_13 = """\
Squid Object Cache: Version 6.13
Build Info: Debian GNU/Linux 13 (trixie)
Service Name: squid
Start Time:\tSun, 06 Dec 2026 05:46:01 GMT
Current Time:\tSun, 06 Dec 2026 05:46:04 GMT
Connection information for squid:
\tNumber of clients accessing cache:\t1
\tNumber of HTTP requests received:\t0
\tRequest failure ratio:\t 0.00
\tAverage HTTP requests per minute since start:\t0.0
\tSelect loop called: 5 times, 594.807 ms avg
Cache information for squid:
\tHits as % of all requests:\t5min: 25.5%, 60min: 12.0%
\tHits as % of bytes sent:\t5min: -0.0%, 60min: 150.0%
\tMemory hits as % of hit requests:\t5min: 0.0%, 60min: 0.0%
\tDisk hits as % of hit requests:\t5min: 0.0%, 60min: 0.0%
\tStorage Swap size:\t0 KB
\tStorage Mem size:\t216 KB
\tMean Object Size:\t0.00 KB
Median Service Times (seconds)  5 min    60 min:
\tHTTP Requests (All):   0.04519  0.03066
\tCache Misses:          0.05046  0.04277
\tCache Hits:            0.00000  0.00091
\tNear Hits:             0.00000  0.00000
\tNot-Modified Replies:  0.00000  0.00000
\tDNS Lookups:           0.01865  0.02000
\tICP Queries:           0.00000  0.00000
Resource usage for squid:
\tUP Time:\t2.974 seconds
\tCPU Time:\t0.038 seconds
\tMaximum Resident Size: 101984 KB
File descriptor usage for squid:
\tMaximum number of file descriptors:   1024
\tLargest file desc currently in use:     12
\tNumber of file desc currently in use:    9
\tFiles queued for open:                   0
\tAvailable number of file descriptors: 1015
\tReserved number of file descriptors:   100
Internal Data Structures:
\t    52 StoreEntries
"""


def test_the_info_page_gives_descriptors_ratios_and_medians_in_base_units():
    info = cachemgr.parse_info(INFO_6_13)
    assert (info.fds_max, info.fds_open) == (1024, 9)
    assert info.hit_ratios == {("requests", "5m"): 0.255, ("requests", "60m"): 0.12,
                               ("bytes", "5m"): 0.0, ("bytes", "60m"): 1.0}  # clamped to 0..1
    assert info.medians == {("all", "5m"): 0.04519, ("all", "60m"): 0.03066,
                            ("misses", "5m"): 0.05046, ("misses", "60m"): 0.04277,
                            ("hits", "5m"): 0.0, ("hits", "60m"): 0.00091,
                            ("dns", "5m"): 0.01865, ("dns", "60m"): 0.02}


@pytest.mark.parametrize("text", ["", "<html><body>Access Denied</body></html>",
                                  "client_http.requests = 12\n", "\tCache Hits:  1 2\n"])
def test_a_page_without_any_figure_is_none(text):
    assert cachemgr.parse_info(text) is None


def test_garbage_figures_are_left_out_not_guessed():
    info = cachemgr.parse_info("File descriptor usage for squid:\n"
                               "\tMaximum number of file descriptors:   lots\n"
                               "\tNumber of file desc currently in use:  inf\n"
                               "Cache information for squid:\n"
                               "\tHits as % of all requests:\t5min: x%, 60min: 1.0%\n"
                               "Median Service Times (seconds)  5 min    60 min:\n"
                               "\tHTTP Requests (All):   0.5\n"
                               "\tDNS Lookups:   0.5  nan\n"
                               "\tCache Hits:   -1  0.25\n")
    assert info.fds_max is None and info.fds_open is None and info.hit_ratios == {}
    assert info.medians == {("hits", "5m"): 0.0, ("hits", "60m"): 0.25}


def test_median_labels_outside_their_section_are_not_medians():
    assert cachemgr.parse_info("Other section:\n\tCache Hits:   1.0  2.0\n") is None


def address(text):
    return cachemgr.address(tuple(directives_in(text, "squid.conf")))


@pytest.mark.parametrize("text, expected", [
    ("http_port 3128\n", ("127.0.0.1", 3128)),
    ("http_port 0.0.0.0:3128\n", ("127.0.0.1", 3128)),
    ("http_port [::]:3128\n", ("::1", 3128)),
    ("http_port [::1]:3129\n", ("::1", 3129)),
    ("http_port 127.0.0.1:3130\n", ("127.0.0.1", 3130)),
    ("http_port 10.1.2.3:3128\n", ("10.1.2.3", 3128)),
    ("http_port localhost:3128\n", ("127.0.0.1", 3128)),
    ("http_port 3128 ssl-bump tls-cert=/etc/squid/tls/ca.pem\n", ("127.0.0.1", 3128)),
    # the first one it can use: https, interception, reverse proxy and names are skipped
    ("https_port 3443 tls-cert=/c.pem\nhttp_port 3128\n", ("127.0.0.1", 3128)),
    ("http_port 3129 intercept\nhttp_port 3128\n", ("127.0.0.1", 3128)),
    ("http_port 3129 tproxy\nhttp_port 3130 accel\nhttp_port 3128\n", ("127.0.0.1", 3128)),
    ("http_port 3129 require-proxy-header\nhttp_port [::1]:3128\n", ("::1", 3128)),
    ("http_port proxy.example:3129\nhttp_port 3128\n", ("127.0.0.1", 3128)),
    ("https_port 3443 tls-cert=/c.pem\n", None),
    ("http_port 3129 intercept\n", None),
    ("http_port\nhttp_port nonsense\nhttp_port 99999\n", None),
    ("", None),
])
def test_the_cache_manager_is_asked_on_the_first_plain_http_port(text, expected):
    assert address(text) == expected
