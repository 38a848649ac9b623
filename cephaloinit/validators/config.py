"""The config validators: the configuration is read, wrapped in the container
layer, and Squid accepts the result."""

from __future__ import annotations

import os
from typing import NamedTuple

from .. import squid, squidconf, squidlog, userfiles
from ..errors import Fatal
from . import Context

PARSE_TIMEOUT = 30.0
# Squid prints every directive it processes; only these lines explain a failure.
PROBLEM_MARKERS = ("FATAL", "ERROR", "WARNING", "Bungled", "unrecognized", "Terminated")


class Source(NamedTuple):
    """The configuration the user gave: a mounted file, or the image's default."""

    path: str  # what messages and /status name
    body: str  # what the container layer puts after its defaults
    directives: tuple[squidconf.Directive, ...]  # what it sets, includes followed


# The container layer: what every config runs inside, mounted or default.
# Defaults first: Squid keeps the last value of a directive, so the same
# directive in the user's configuration, which follows, replaces each one.
# Nothing is forced after it: the user's file has the last word.
DEFAULTS = """\
# Rendered by cephaloinit at every start and reload; Squid runs this file.
# Container defaults (docs/configuration.md, "The container layer"): the same
# directive in the configuration below replaces each of them.
pid_filename {run_dir}/squid.pid
cache_log /dev/stderr
coredump_dir {spool_dir}
pinger_enable off
max_filedescriptors {max_filedescriptors}
shutdown_lifetime {shutdown_lifetime} seconds
logfile_rotate 0
"""
# Added only when the configuration has no access_log of its own (access_log
# may be given many times: a default before it would log twice).
ACCESS_LOG = """
# No access_log in the configuration: requests go to stdout, into the container's log.
access_log stdio:/dev/stdout
"""
# The same with LOG_FORMAT=json: a format cephaloinit turns into JSON fields (squidlog).
ACCESS_LOG_JSON = f"""
# No access_log in the configuration: requests go to stdout, into the container's log,
# in a format cephaloinit turns into JSON fields (LOG_FORMAT=json).
{squidlog.ACCESS_LOGFORMAT}
access_log stdio:/dev/stdout {squidlog.ACCESS_LOGFORMAT_NAME}
"""
MAX_FILEDESCRIPTORS = 1024  # Squid sizes its tables to RLIMIT_NOFILE otherwise (Squid bug 5554)


def _directives(path: str, context: Context,
                text: str | None = None) -> tuple[squidconf.Directive, ...]:
    """The directives of the file ``path`` (or of ``text`` read from it), each
    problem one Fatal line. Errors inside an included file name that file."""
    try:
        if text is None:
            text = squidconf.read_text(path)
        return tuple(squidconf.directives_in(text, path))
    except OSError as error:
        raise Fatal(f"Cannot read Squid configuration {path}: {error.strerror}; "
                    f"make it readable by UID {context.uid} (GID {context.gid})") from None
    except userfiles.NotAFile as error:
        raise Fatal(f"Squid configuration {error}; mount a squid.conf file there") from None
    except squidconf.ConfigError as error:
        raise Fatal(f"Squid configuration {path} is invalid: {error}") from None


def locate(context: Context) -> Source:
    """The mounted config if there is one, else the image's default with the
    settings filled in; read, as Squid will read it."""
    settings = context.settings
    path = settings.squid_config
    if os.path.lexists(path):
        return Source(path, f"include {path}", _directives(path, context))
    if context.mounted:
        raise Fatal(f"The mounted Squid configuration {path} is gone; "
                    "mount it again (Squid would re-read it, not the image's default)")
    template_path = settings.squid_default_config
    try:
        data = userfiles.read_bytes(template_path, userfiles.MAX_CONFIG_BYTES)
        template = data.decode("utf-8")
    except (OSError, ValueError) as error:  # NotAFile and UnicodeDecodeError are ValueErrors
        reason = error.strerror if isinstance(error, OSError) else _reason(error)
        raise Fatal(f"Cannot read the default Squid configuration {template_path}: "
                    f"{reason}; mount a squid.conf at {path}") from None
    text = squid.render_default_config(template, settings)
    return Source(template_path, text, _directives(template_path, context, text))


def render(context: Context, source: Source) -> squidconf.SquidConfig:
    """Write the container layer around ``source`` into the run directory (a
    new file beside the one in use, so that a rejected reload leaves that one
    alone) and return its facts."""
    settings = context.settings
    defaults = DEFAULTS.format(
        run_dir=settings.run_dir, spool_dir=settings.spool_dir,
        max_filedescriptors=MAX_FILEDESCRIPTORS,
        shutdown_lifetime=squid.shutdown_lifetime(settings.shutdown_timeout))
    text = f"{defaults}\n# The configuration: {source.path}\n{source.body}\n"
    if not any(d.name == "access_log" for d in source.directives):
        text += ACCESS_LOG_JSON if settings.log_format == "json" else ACCESS_LOG
    directory = context.scratch_dir or settings.run_dir
    candidate = f"{directory}/squid.conf.new"
    try:
        os.makedirs(directory, exist_ok=True)
        with open(candidate, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as error:
        raise Fatal(f"Cannot write {directory}/squid.conf: {error.strerror}; the run directory "
                    f"{settings.run_dir} must be writable by UID {context.uid} "
                    f"(GID {context.gid}): make it group 0 and group-writable") from None
    every = tuple(squidconf.directives_in(defaults, candidate)) + source.directives
    try:
        found = squidconf.read_config(source.path, every)
    except squidconf.ConfigError as error:
        raise Fatal(f"Squid configuration {source.path} is invalid: {error}") from None
    return found._replace(run_path=candidate)


def put_in_place(found: squidconf.SquidConfig) -> squidconf.SquidConfig:
    """Make the accepted rendered config the one Squid runs (and re-reads)."""
    final = found.run_path[: -len(".new")]
    os.replace(found.run_path, final)
    return found._replace(run_path=final)


def problem_lines(output: list[str]) -> list[str]:
    lines = [line for line in output if any(marker in line for marker in PROBLEM_MARKERS)]
    return (lines or output)[-5:]


def _reason(error: ValueError) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start})"
    return str(error)


def parse(context: Context, found: squidconf.SquidConfig) -> squidconf.SquidConfig:
    """Squid's own verdict on the rendered layer."""
    result = context.run_helper("squid -k parse",
                                squid.parse_command(context.settings, found.run_path), PARSE_TIMEOUT)
    if result.exit_code != 0:
        details = " | ".join(problem_lines(result.output)) or f"exit code {result.exit_code}"
        raise Fatal(f"Squid configuration {found.path} is invalid: {details}")
    return found
