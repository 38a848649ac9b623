"""The cache validator: configured cache_dir swap directories are initialised."""

from __future__ import annotations

import os

from .. import squid, squidconf
from ..errors import Fatal
from . import Context

INIT_TIMEOUT = 120.0


def initialised(cache_dir: squidconf.CacheDir) -> bool:
    """Whether `squid -z` has already run for this cache_dir."""
    if cache_dir.kind == "rock":
        return os.path.exists(os.path.join(cache_dir.path, "rock"))
    return os.path.isdir(os.path.join(cache_dir.path, "00"))


def swap_config(context: Context, config: squidconf.SquidConfig) -> str:
    """The config for `squid -z`: the real one without its pid file. `squid -z`
    refuses to run beside a live Squid's pid file, and a reload that adds a
    cache_dir must initialise it while Squid runs."""
    path = os.path.join(context.settings.run_dir, "squid-swap.conf")
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(f"include {config.run_path}\npid_filename none\n")
    except OSError as error:
        raise Fatal(f"Cannot write {path}: {error.strerror}") from None
    return path


def check(context: Context, config: squidconf.SquidConfig) -> None:
    # The directories validator has already made each cache_dir writable.
    missing = [c.path for c in config.cache_dirs if not initialised(c)]
    if not missing:
        return
    if context.dry_run:
        context.log.info(f"Cache directories to be initialised at start-up: {', '.join(missing)}")
        return
    context.log.info(f"Initialising cache directories: {', '.join(missing)}")
    result = context.run_helper("squid -z", squid.init_cache_command(context.settings,
                                                                     swap_config(context, config)),
                                INIT_TIMEOUT)
    if result.exit_code != 0:
        details = " | ".join(result.output[-3:]) or f"exit code {result.exit_code}"
        raise Fatal(f"Cannot initialise the cache directories {', '.join(missing)}: {details}")
