"""Reading /proc: a process's stat and status fields, the process tree, and sockets.

Parsing is kept apart from reading so the parsers can be tested on sample text.
Every reader tolerates a process vanishing between listing and reading.
"""

from __future__ import annotations

import os
from typing import NamedTuple

PROC = "/proc"


class Stat(NamedTuple):
    pid: int
    comm: str
    state: str
    ppid: int


def parse_stat(text: str) -> Stat:
    """Parse /proc/PID/stat. ``comm`` may itself contain spaces and parentheses,
    so it runs from the first '(' to the last ')'."""
    open_paren = text.index("(")
    close_paren = text.rindex(")")
    fields = text[close_paren + 2:].split()
    return Stat(
        pid=int(text[:open_paren]),
        comm=text[open_paren + 1:close_paren],
        state=fields[0],
        ppid=int(fields[1]),
    )


def parse_status(text: str) -> dict[str, str]:
    """Parse /proc/PID/status into {field: value}."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def stat(pid: int, proc: str = PROC) -> Stat | None:
    text = _read(f"{proc}/{pid}/stat")
    return parse_stat(text) if text else None


def status(pid: int, proc: str = PROC) -> dict[str, str]:
    text = _read(f"{proc}/{pid}/status")
    return parse_status(text) if text else {}


def cmdline(pid: int, proc: str = PROC) -> list[str]:
    """The process's argv as it shows it now (a program may rewrite it); empty
    for a zombie or a vanished process."""
    text = _read(f"{proc}/{pid}/cmdline")
    return text.rstrip("\0").split("\0") if text else []


def all_stats(proc: str = PROC) -> list[Stat]:
    stats = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            found = stat(int(entry), proc)
            if found is not None:
                stats.append(found)
    return stats


def children(pid: int, proc: str = PROC) -> list[Stat]:
    return [s for s in all_stats(proc) if s.ppid == pid]


def descendants(pid: int, proc: str = PROC) -> list[int]:
    """Every process below ``pid`` in the process tree, parents before children."""
    by_parent: dict[int, list[int]] = {}
    for s in all_stats(proc):
        by_parent.setdefault(s.ppid, []).append(s.pid)
    found: list[int] = []
    pending = list(by_parent.get(pid, []))
    while pending:
        current = pending.pop(0)
        found.append(current)
        pending.extend(by_parent.get(current, []))
    return found


class TcpSocket(NamedTuple):
    port: int  # local port
    state: str  # the kernel's hex code: 01 established, 0A listen
    inode: int


def parse_net_tcp(text: str) -> list[TcpSocket]:
    """The sockets in /proc/net/tcp or tcp6 text."""
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        _, _, port = fields[1].rpartition(":")
        try:
            sockets.append(TcpSocket(int(port, 16), fields[3], int(fields[9])))
        except ValueError:
            continue
    return sockets


def tcp_sockets(proc: str = PROC) -> list[TcpSocket] | None:
    """Every TCP socket of this network namespace, IPv4 and IPv6; None when
    neither table can be read."""
    sockets: list[TcpSocket] = []
    found = False
    for name in ("tcp", "tcp6"):
        text = _read(f"{proc}/net/{name}")
        if text is not None:
            found = True
            sockets.extend(parse_net_tcp(text))
    return sockets if found else None


def socket_inodes(pid: int, proc: str = PROC) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open (its fd links read
    'socket:[INODE]'); empty when they cannot be read."""
    inodes = set()
    try:
        names = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"{proc}/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes
