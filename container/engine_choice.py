"""The engine and the images for the Python scripts beside this file
(verify-image, list-packages), as container/engine.sh chooses them: one
place decides both, for the shell scripts and for these."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import NamedTuple

ENGINE_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine.sh")


class Choice(NamedTuple):
    engine: list[str]
    images: list[tuple[str, str]]  # (architecture, tag): PLATFORM's, or one per PLATFORMS
    native_arch: str


def choose(program: str) -> Choice:
    """ENGINE and the images a build makes; sets CONTAINERS_CONF for podman.
    PROGRAM names the caller in engine.sh's messages."""
    script = ('. "$1" && pick_engine && printf "%s\\n" "$ENGINE" "${CONTAINERS_CONF:-}" "$NATIVE_ARCH"'
              ' && platform_images')
    result = subprocess.run(["bash", "-c", script, program, ENGINE_SH], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr.strip() or f"{program}: {ENGINE_SH} failed")
    engine, containers_conf, native_arch, *images = result.stdout.splitlines()
    if containers_conf:
        os.environ["CONTAINERS_CONF"] = containers_conf
    pairs = [line.split(" ", 1) for line in images]
    return Choice([engine], [(platform.removeprefix("linux/"), tag) for platform, tag in pairs], native_arch)
