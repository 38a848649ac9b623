"""Writing a state file the way the supervisor does (a temporary file, then a
rename), from any JSON document: tests publish states, broken ones too, that
the supervisor's typed record could not express."""

from __future__ import annotations

import json
import os


def write_state(path: str, document: object) -> None:
    temporary = f"{path}.test.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(document, file)
    os.replace(temporary, path)
