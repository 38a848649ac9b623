"""The engine and the image's tag for the Python scripts beside this file
(verify-image, list-packages), as container/engine.sh chooses them: one
place decides both, for the shell scripts and for these."""

from __future__ import annotations

import os
import subprocess
import sys

ENGINE_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine.sh")


def choose(program: str) -> tuple[list[str], str]:
    """[ENGINE] and IMAGE (the default tag); sets CONTAINERS_CONF for podman.
    PROGRAM names the caller in engine.sh's messages."""
    script = '. "$1" && pick_engine && printf "%s\\n" "$ENGINE" "$IMAGE" "${CONTAINERS_CONF:-}"'
    result = subprocess.run(["bash", "-c", script, program, ENGINE_SH], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr.strip() or f"{program}: {ENGINE_SH} failed")
    engine, image, containers_conf = result.stdout.split("\n")[:3]
    if containers_conf:
        os.environ["CONTAINERS_CONF"] = containers_conf
    return [engine], image
