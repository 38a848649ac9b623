"""The validators, run in order before anything starts; each fails fast with a
``Fatal`` naming the input and what to do about it.

Validators that need a helper program (squid -k parse, squid -z, certgen) get
it run through ``run_helper``, which the supervisor provides: the helper is its
child like any other, reaped by the one reaper, bounded by a deadline, and a
stop signal during it is still honoured.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .. import smp
from ..errors import Fatal
from ..logs import Logger
from ..settings import Settings
from ..squidconf import SquidConfig


class HelperResult(NamedTuple):
    exit_code: int
    output: list[str]  # the helper's stdout and stderr lines, in arrival order


RunHelper = Callable[[str, list[str], float], HelperResult]


class Context(NamedTuple):
    settings: Settings
    run_helper: RunHelper
    log: Logger
    uid: int
    gid: int
    # `cephaloinit validate`, perhaps beside a running supervisor: what it
    # writes goes here, and nothing the supervisor or Squid owns is touched.
    scratch_dir: str | None = None
    # A reload: Squid is running on the config validated before.
    reload: bool = False
    # Whether the running config is the mounted one (a reload must not fall
    # back to the image's default because the mounted file went away).
    mounted: bool = False

    @property
    def dry_run(self) -> bool:
        return self.scratch_dir is not None


def validate(context: Context) -> SquidConfig:
    """Every validator, in order, at start-up and again for a reload. Returns
    the config Squid will run with.

    Squid's own parse comes after the directories and the certificate merge,
    not before: parsing an ssl-bump config loads the merged signing
    certificate, and fails when it is not there yet. Swap directories come
    last, once Squid has accepted the config that names them.
    """
    from . import cache, config, directories, references, tls

    found = config.render(context, config.locate(context))
    directories.check(context, found)
    references.check(context, found)
    tls.check(context, found)
    squid_config = config.parse(context, found)
    cache.check(context, squid_config)
    return squid_config


def for_reload(context: Context, running: SquidConfig) -> SquidConfig:
    """A reload: every validator again, for a Squid that runs on ``running``;
    the accepted config is put in place."""
    found = validate(context._replace(reload=True))
    if found.pid_file != running.pid_file:
        # Squid writes its pid file when it starts, not when it reconfigures.
        raise Fatal(f"pid_filename changed from {running.pid_file} to {found.pid_file}; "
                    "Squid applies it only when it starts: restart the container to apply it")
    before, after = smp.workers(running), smp.workers(found)
    if after != before:
        # Squid's master starts its kids once; a reconfigure cannot change how many.
        raise Fatal(f"workers changed from {before} to {after}; "
                    "Squid applies it only when it starts: restart the container to apply it")
    return put_in_place(found)


def put_in_place(found: SquidConfig) -> SquidConfig:
    """The accepted config becomes the one Squid runs; until then a rejected
    one has left the file in use untouched."""
    from . import config

    return config.put_in_place(found)


__all__ = ["Context", "Fatal", "HelperResult", "RunHelper", "for_reload", "put_in_place", "validate"]
