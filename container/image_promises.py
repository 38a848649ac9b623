"""The image's promises, container/image-promises.toml, read in one place.

Imported by container/assemble-rootfs.py (in the builder stage) and
container/verify-image; `python3 container/image_promises.py writable` prints
the writable directories, one a line, for the shell (tests/integration).
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "image-promises.toml")


@dataclass(frozen=True)
class Promises:
    user: str  # "UID:GID", the image's USER
    uid: int
    gid: int
    writable_dirs: tuple[str, ...]  # absolute paths
    writable_mode: int
    tmp_mode: int
    forbidden_names: frozenset[str]  # no file of these names anywhere


def load(path: str = PATH) -> Promises:
    with open(path, "rb") as stream:
        data = tomllib.load(stream)
    uid, _, gid = data["user"].partition(":")
    writable = data["writable"]
    return Promises(
        user=data["user"],
        uid=int(uid),
        gid=int(gid),
        writable_dirs=tuple(writable["directories"]),
        writable_mode=int(writable["mode"], 8),
        tmp_mode=int(writable["tmp_mode"], 8),
        forbidden_names=frozenset(name for names in data["forbidden"].values() for name in names),
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["writable"]:
        sys.exit("usage: image_promises.py writable")
    print(*load().writable_dirs, sep="\n")
