"""squid.conf read the way Squid reads it, and the facts the supervisor acts on.

Squid's own reader, followed here rule by rule: leading whitespace is
dropped; a line whose first character is then ``#`` is a comment; a line
ending in a backslash continues on the next (whose leading whitespace is
dropped); trailing whitespace is dropped; the macros ``${service_name}``,
``${process_name}`` and ``${process_number}`` are replaced; ``if EXPR`` /
``else`` / ``endif`` select lines (EXPR is ``true``, ``false`` or
``INTEGER = INTEGER``); ``include`` takes paths and globs, nested at most 16
deep. Stricter than Squid, with one line naming the place: an include by
relative path (Squid would resolve it from a working directory that changes
once it runs), a line longer than Squid's line buffer, a file with NUL bytes. Everything else
is a directive: its name and whitespace-separated words.

Readiness, the drain, the validators and the cache manager all use what
this module returns; nothing else parses squid.conf.
"""

from __future__ import annotations

import glob
import os
import shlex
from typing import NamedTuple

from . import userfiles

MAX_INCLUDE_DEPTH = 16  # Squid's own limit
MAX_LINE = 8192  # Squid's line buffer (BUFSIZ), newline and NUL included
# What Squid run as `squid -N -f CONF` substitutes: no -n service name, and
# the one process, which is no SMP kid, is "squid" number 0. With `workers` > 1
# its master reads the config the same way, and decides how many kids to
# start from that reading (each kid reads it again with its own number).
MACROS = {"${service_name}": "squid", "${process_name}": "squid", "${process_number}": "0"}
# Debian's compiled-in pid_filename, used when a config does not name one.
DEFAULT_PID_FILE = "/run/squid.pid"
# A file holding one of these is key material, never configuration: it is
# refused before Squid could quote it back in an error message.
KEY_MARKERS = (b"PRIVATE KEY-----",)


class ConfigError(ValueError):
    """A config Squid would refuse too, or one we must not hand to Squid."""


class Directive(NamedTuple):
    name: str
    args: tuple[str, ...]
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file} line {self.line}"


class CacheDir(NamedTuple):
    kind: str  # ufs, aufs, diskd, rock
    path: str


class SquidConfig(NamedTuple):
    """The few facts of a squid.conf the supervisor acts on."""

    path: str
    ports: tuple[int, ...]
    pid_file: str | None  # None: "pid_filename none"
    cache_dirs: tuple[CacheDir, ...]
    ssl_bump: bool
    certificate_db: str | None  # the -s directory of sslcrtd_program
    directives: tuple[Directive, ...] = ()
    run_path: str = ""  # the file Squid runs: the container layer around ``path``

    def named(self, name: str) -> list[Directive]:
        return [d for d in self.directives if d.name == name]


def holds_key(data: bytes) -> bool:
    return any(marker in data for marker in KEY_MARKERS)


def read_text(path: str) -> str:
    """One config file's text; refuses what is not a regular file, key
    material, and binary data (a DER key has NUL bytes; Squid's line reader
    would stop at them and quote the rest back)."""
    data = userfiles.read_bytes(path, userfiles.MAX_CONFIG_BYTES)
    if holds_key(data):
        raise ConfigError(f"{path} holds a private key, not Squid configuration; "
                          "include only configuration files (the CA belongs in TLS_DIR)")
    if b"\0" in data:
        raise ConfigError(f"{path} holds NUL bytes: it is not a text configuration file")
    return data.decode("utf-8", "replace")


def expand(text: str) -> str:
    for macro, value in MACROS.items():
        text = text.replace(macro, value)
    return text


def logical_lines(text: str, path: str = "squid.conf"):
    """(line number, line) with comments, blank lines and continuations handled."""
    pending, start = "", 0
    for number, raw in enumerate(text.split("\n"), 1):
        if len(raw.encode()) >= MAX_LINE:
            # Squid reads lines into a fixed buffer and would take the rest of
            # this one as a line of its own: what we read would not be what it reads.
            raise ConfigError(f"{path} line {number} is longer than the {MAX_LINE - 1} bytes "
                              "Squid reads as one line; continue it with a backslash")
        line = raw.split("\r", 1)[0].lstrip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        yield start, expand(pending.rstrip())
        pending = ""
    if pending:
        yield start, expand(pending.rstrip())


def _statement(line: str, word: str) -> str | None:
    """The rest of ``line`` when it is the statement ``word``, else None."""
    if line == word:
        return ""
    if line.startswith(word) and line[len(word)].isspace():
        return line[len(word):].strip()
    return None


def c_integer(text: str) -> int:
    """Like C's strtol(text, ..., 0), as Squid reads its integers: 10, 0x10,
    and 010 (octal, 8)."""
    digits = text.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX":
        return int(text, 8)
    return int(text, 0)


def evaluate(expression: str, where: str) -> bool:
    if expression in ("true", "false"):
        return expression == "true"
    left, equals, right = expression.partition("=")
    try:
        if equals:
            return c_integer(left.strip()) == c_integer(right.strip())
    except ValueError:
        pass
    raise ConfigError(f"{where}: cannot evaluate 'if {expression}': Squid accepts true, false "
                      "or INTEGER = INTEGER")


def directives(path: str, depth: int = 0) -> list[Directive]:
    """Every directive of ``path`` and what it includes, in Squid's order."""
    if depth > MAX_INCLUDE_DEPTH:
        raise ConfigError(f"{path}: includes nested more than {MAX_INCLUDE_DEPTH} deep")
    return directives_in(read_text(path), path, depth)


def directives_in(text: str, path: str, depth: int = 0) -> list[Directive]:
    """Every directive of ``text``, read from ``path``, and what it includes."""
    found: list[Directive] = []
    conditions: list[bool] = []  # the open 'if' blocks, innermost last
    for number, line in logical_lines(text, path):
        where = f"{path} line {number}"
        if conditional(line, conditions, where):
            continue
        if not conditions or conditions[-1]:  # Squid looks at the innermost 'if' only
            found.extend(selected(line, path, number, depth))
    if conditions:
        raise ConfigError(f"{path}: 'if' without 'endif'")
    return found


def conditional(line: str, conditions: list[bool], where: str) -> bool:
    """Whether ``line`` is an if, else or endif; if so, applied to ``conditions``.
    An 'if' is evaluated even inside a block that is not selected, as in Squid."""
    if (expression := _statement(line, "if")) is not None:
        conditions.append(evaluate(expression, where))
        return True
    for word in ("else", "endif"):
        if _statement(line, word) is not None:
            if not conditions:
                raise ConfigError(f"{where}: '{word}' without 'if'")
            if word == "else":
                conditions[-1] = not conditions[-1]
            else:
                conditions.pop()
            return True
    return False


def selected(line: str, path: str, number: int, depth: int) -> list[Directive]:
    """The directive of a selected line, or the directives of the files it includes."""
    words = uncommented(line.split())
    if not words:
        return []
    if words[0] == "include" and len(words) > 1:
        return included(include_paths(line), f"{path} line {number}", depth)
    return [Directive(words[0], tuple(words[1:]), path, number)]


def uncommented(words: list[str]) -> list[str]:
    """A line's words up to a trailing comment (``http_port 3128  # proxy``)."""
    for index, word in enumerate(words):
        if word.startswith("#"):
            return words[:index]
    return words


def include_paths(line: str) -> list[str]:
    """The paths of an include line, which Squid splits like words of a shell:
    a quoted path may hold spaces."""
    try:
        return shlex.split(line[len("include"):], comments=True)
    except ValueError:  # an unbalanced quote
        return uncommented(line.split()[1:])


def included(patterns: list[str], where: str, depth: int) -> list[Directive]:
    found: list[Directive] = []
    for pattern in patterns:
        if not pattern.startswith("/"):
            # Squid resolves it from its working directory, which is not ours
            # and changes once it runs (coredump_dir): a reload would miss it.
            raise ConfigError(f"{where}: include {pattern} is a relative path; write it in full")
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise ConfigError(f"{where}: include {pattern} matches no file")
        for match in matches:
            try:
                found.extend(directives(match, depth + 1))
            except (OSError, userfiles.NotAFile) as error:
                reason = error.strerror if isinstance(error, OSError) else str(error)
                raise ConfigError(f"{where}: cannot include {match}: {reason}") from None
    return found


def _port(spec: str) -> int:
    """The port of an http_port argument: 3128, 0.0.0.0:3128, [::1]:3128."""
    return int(spec.rsplit(":", 1)[-1])


def read_config(path: str, every: tuple[Directive, ...] | None = None) -> SquidConfig:
    """The facts of the config at ``path``, or of its directives ``every`` when
    already read. Raises OSError, userfiles.NotAFile or ConfigError."""
    every = tuple(directives(path)) if every is None else every
    return SquidConfig(path, _ports(every), _pid_file(every), _cache_dirs(every), _bumps(every),
                       _certificate_db(every), every, path)


def _listening(every: tuple[Directive, ...]) -> list[Directive]:
    return [d for d in every if d.name in ("http_port", "https_port") and d.args]


def _ports(every: tuple[Directive, ...]) -> tuple[int, ...]:
    ports: list[int] = []
    for directive in _listening(every):
        try:
            ports.append(_port(directive.args[0]))
        except ValueError:
            pass  # squid -k parse names the problem
    return tuple(ports)


def _pid_file(every: tuple[Directive, ...]) -> str | None:
    """The last pid_filename; every one is checked, as Squid parses each."""
    pid_file: str | None = DEFAULT_PID_FILE
    for directive in every:
        if directive.name == "pid_filename" and directive.args:
            pid_file = None if directive.args[0] == "none" else directive.args[0]
            if pid_file is not None and not os.path.isabs(pid_file):
                raise ConfigError(f"{directive.where}: pid_filename {pid_file} is not an absolute "
                                  "path; write it in full, e.g. /var/run/squid/squid.pid")
    return pid_file


def _cache_dirs(every: tuple[Directive, ...]) -> tuple[CacheDir, ...]:
    return tuple(CacheDir(d.args[0], d.args[1]) for d in every
                 if d.name == "cache_dir" and len(d.args) >= 2)


def _bumps(every: tuple[Directive, ...]) -> bool:
    """Whether Squid bumps TLS: an ssl_bump rule, or a port that bumps."""
    return (any(d.name == "ssl_bump" for d in every)
            or any("ssl-bump" in d.args for d in _listening(every)))


def _certificate_db(every: tuple[Directive, ...]) -> str | None:
    """The -s directory of the last sslcrtd_program that names one."""
    certificate_db = None
    for directive in every:
        args = directive.args
        if directive.name == "sslcrtd_program" and "-s" in args[:-1]:
            certificate_db = args[args.index("-s") + 1]
    return certificate_db
