"""The config validators: the file exists and is readable, and Squid accepts it."""

from __future__ import annotations

import os

from .. import squid, squidconf, userfiles
from ..errors import Fatal
from . import Context

PARSE_TIMEOUT = 30.0
# Squid prints every directive it processes; only these lines explain a failure.
PROBLEM_MARKERS = ("FATAL", "ERROR", "WARNING", "Bungled", "unrecognized", "Terminated")


def config_path(context: Context) -> str:
    """The mounted config if there is one, else the default rendered into the run
    directory (a new file beside the old, so a reload can still reject it)."""
    settings = context.settings
    if os.path.lexists(settings.squid_config):
        return settings.squid_config
    if context.mounted:
        raise Fatal(f"The mounted Squid configuration {settings.squid_config} is gone; "
                    "mount it again (Squid would re-read it, not the image's default)")
    try:
        data = userfiles.read_bytes(settings.squid_default_config, userfiles.MAX_CONFIG_BYTES)
        template = data.decode("utf-8")
    except (OSError, ValueError) as error:  # NotAFile and UnicodeDecodeError are ValueErrors
        reason = error.strerror if isinstance(error, OSError) else _reason(error)
        raise Fatal(f"Cannot read the default Squid configuration {settings.squid_default_config}: "
                    f"{reason}; mount a squid.conf at {settings.squid_config}") from None
    directory = context.scratch_dir or settings.run_dir
    rendered = f"{directory}/squid.conf"
    try:
        os.makedirs(directory, exist_ok=True)
        candidate = f"{rendered}.new"
        with open(candidate, "w", encoding="utf-8") as file:
            file.write(squid.render_default_config(template, settings))
    except OSError as error:
        raise Fatal(f"Cannot write {rendered}: {error.strerror}; the run directory "
                    f"{settings.run_dir} must be writable by UID {context.uid} "
                    f"(GID {context.gid}): make it group 0 and group-writable") from None
    return candidate


def promote(candidate: str) -> str:
    """Make a validated rendered config the one in use."""
    if candidate.endswith(".new"):
        final = candidate[: -len(".new")]
        os.replace(candidate, final)
        return final
    return candidate


def problem_lines(output: list[str]) -> list[str]:
    lines = [line for line in output if any(marker in line for marker in PROBLEM_MARKERS)]
    return (lines or output)[-5:]


def _reason(error: ValueError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start})"
    return str(error)


def locate(context: Context) -> str:
    """The config to validate, checked to be a readable regular file."""
    path = config_path(context)
    try:
        userfiles.read_bytes(path, userfiles.MAX_CONFIG_BYTES)
    except OSError as error:
        raise Fatal(f"Cannot read Squid configuration {path}: {error.strerror}; "
                    f"make it readable by UID {context.uid} (GID {context.gid})") from None
    except userfiles.NotAFile as error:
        raise Fatal(f"Squid configuration {error}; mount a squid.conf file there") from None
    return path


def facts(path: str) -> squidconf.SquidConfig:
    """What the supervisor needs to know of the config, read the way Squid reads it."""
    try:
        return squidconf.read_config(path)
    except OSError as error:
        raise Fatal(f"Cannot read Squid configuration {path}: {error.strerror or error}") from None
    except (userfiles.NotAFile, squidconf.ConfigError) as error:
        raise Fatal(f"Squid configuration {path} is invalid: {error}") from None


def parse(context: Context, found: squidconf.SquidConfig) -> squidconf.SquidConfig:
    """Squid's own verdict on the config read by ``facts``; a rendered default
    is then put in place."""
    path = found.path
    result = context.run_helper("squid -k parse", squid.parse_command(context.settings, path),
                                PARSE_TIMEOUT)
    if result.exit_code != 0:
        details = " | ".join(problem_lines(result.output)) or f"exit code {result.exit_code}"
        raise Fatal(f"Squid configuration {path} is invalid: {details}")
    return found if context.dry_run else found._replace(path=promote(path))
