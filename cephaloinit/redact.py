"""Keeping key material out of what we print.

Helpers quote the lines they choke on: `squid -k parse` given a PEM file as
configuration answers `unrecognized: 'MIIEvQIBADANBgkqhkiG9w0BAQEF...'`. Every
line of helper output that we log or put in an error passes through here.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
# A PEM boundary, and any unbroken run of base64 as long as a PEM body line
# (64 characters; 40 leaves room) that mixes upper case, lower case and
# digits as encoded random bytes do; paths and Squid's own messages have no
# such runs.
_PEM_BOUNDARY = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]+-----")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")


# Squid quotes a line it does not understand whole: a quoted word made only
# of base64 characters, with anything but lower-case letters in it, is a
# piece of encoded data (a PEM body's short last line), never a directive.
_QUOTED_BASE64 = re.compile(r"'([A-Za-z0-9+/]*[A-Z0-9+/=][A-Za-z0-9+/]*={0,2})'")


def _looks_encoded(run: str) -> bool:
    return (any(c.isupper() for c in run) and any(c.islower() for c in run)
            and any(c.isdigit() for c in run))


def line(text: str) -> str:
    text = _PEM_BOUNDARY.sub(REDACTED, text)
    text = _QUOTED_BASE64.sub(f"'{REDACTED}'", text)
    return _BASE64_RUN.sub(lambda m: REDACTED if _looks_encoded(m.group()) else m.group(), text)
