"""Key material never survives redact.line; ordinary helper output does."""

import shutil
import subprocess

import pytest

from cephaloinit import redact


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")
@pytest.mark.parametrize("algorithm", [["genrsa", "2048"], ["ecparam", "-genkey", "-name", "prime256v1"]])
def test_every_line_of_a_key_quoted_by_squid_is_redacted(algorithm):
    key = subprocess.run(["openssl", *algorithm], capture_output=True, check=True).stdout.decode()
    body = [line for line in key.splitlines() if line and "-----" not in line]
    for line in key.splitlines():
        quoted = redact.line(f"2026/12/06 04:00:00| unrecognized: '{line}'")
        assert not any(part in quoted for part in body if len(part) > 8), quoted


@pytest.mark.parametrize("text", [
    "2026/12/06| FATAL: Bungled /etc/squid/squid.conf line 3: http_port 3128 foo",
    "unrecognized: 'this_is_not_a_directive on'",
    "unrecognized: 'cachemgr'",
    "ERROR: Can not open file /etc/squid/Lists/blocked1.txt for reading",
    "WARNING: cannot open '/etc/squid/Lists/blocked1.txt'",
    "Processing: sslcrtd_program /usr/lib/squid/security_file_certgen -s /var/lib/squid/ssl_db -M 4MB",
])
def test_ordinary_messages_and_paths_are_left_alone(text):
    assert redact.line(text) == text
