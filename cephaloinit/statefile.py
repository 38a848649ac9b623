"""The supervisor's published state: a small JSON file replaced atomically.

The supervisor writes it at every state transition (and when a child's PID
changes); the health server reads it when answering. A rename is atomic, so a
reader sees the old file or the new one, never half of one. The file holds no
secret: PIDs, state, ports, paths and counters only.
"""

from __future__ import annotations

import json
import os


def publish(path: str, state: dict) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(state, file, sort_keys=True)
    os.replace(temporary, path)


def read(path: str) -> dict | None:
    """The last published state, or None when there is none (yet)."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (FileNotFoundError, ValueError):
        return None
