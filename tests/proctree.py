"""What tests ask of /proc and the product does not: whether a process is
still alive, and which children of a process are zombies."""

from cephaloinit import procfs


def is_alive(pid: int, proc: str = procfs.PROC) -> bool:
    """True while the process exists and is not a zombie."""
    found = procfs.stat(pid, proc)
    return found is not None and found.state not in ("Z", "X")


def zombie_children(pid: int, proc: str = procfs.PROC) -> list[procfs.Stat]:
    return [s for s in procfs.children(pid, proc) if s.state == "Z"]
