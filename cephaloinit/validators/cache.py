"""The cache validator: configured cache_dir swap directories are initialised."""

from __future__ import annotations

import os

from .. import squid
from ..errors import Fatal
from . import Context

INIT_TIMEOUT = 120.0


def initialised(cache_dir: squid.CacheDir) -> bool:
    """Whether `squid -z` has already run for this cache_dir."""
    if cache_dir.kind == "rock":
        return os.path.exists(os.path.join(cache_dir.path, "rock"))
    return os.path.isdir(os.path.join(cache_dir.path, "00"))


def check(context: Context, config: squid.SquidConfig) -> None:
    # The directories validator has already made each cache_dir writable.
    missing = [c.path for c in config.cache_dirs if not initialised(c)]
    if not missing:
        return
    context.log.info(f"Initialising cache directories: {', '.join(missing)}")
    result = context.run_helper("squid -z", squid.init_cache_command(context.settings, config.path),
                                INIT_TIMEOUT)
    if result.exit_code != 0:
        details = " | ".join(result.output[-3:]) or f"exit code {result.exit_code}"
        raise Fatal(f"Cannot initialise the cache directories {', '.join(missing)}: {details}")
