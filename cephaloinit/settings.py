"""Every environment variable cephaloinit reads, parsed and checked in one place.

An invalid value never stops the container: it is replaced by the default and
reported as one warning line naming the variable, the value and the default.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping, NamedTuple

# ASCII only: int() and float() also take other scripts' digits ("３１２８")
# and underscores ("1_0"), which nobody means in an environment variable.
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class Settings(NamedTuple):
    squid_port: int = 3128
    health_port: int = 8080
    health_bind: str = "0.0.0.0"
    log_level: str = "INFO"
    log_format: str = "text"
    shutdown_timeout: float = 30.0
    startup_timeout: float = 60.0
    readiness_drain: float = 0.0
    # `cephaloinit exec` (docs/exec.md); its command-line options override them.
    exec_signal_group: bool = False
    exec_relay_output: bool = False
    # Paths. The defaults are the image's layout; tests point them elsewhere.
    squid_config: str = "/etc/squid/squid.conf"
    squid_default_config: str = "/usr/share/cephaloproxy/squid.conf"
    squid_binary: str = "/usr/sbin/squid"
    squid_certgen: str = "/usr/lib/squid/security_file_certgen"
    tls_dir: str = "/etc/squid/tls"
    run_dir: str = "/var/run/squid"
    log_dir: str = "/var/log/squid"
    lib_dir: str = "/var/lib/squid"
    spool_dir: str = "/var/spool/squid"
    cache_dir: str = "/var/cache/squid"

    @property
    def state_file(self) -> str:
        """Where the supervisor publishes its state for the health server."""
        return f"{self.run_dir}/cephaloinit.state"


class Hint(ValueError):
    """An invalid value with a word on what was probably meant."""


def _port(text: str) -> int:
    text = text.strip()
    if not _INTEGER.fullmatch(text):
        raise ValueError
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError
    return value


def _log_level(text: str) -> str:
    if text.strip().isdigit():  # the upstream image's LOG_LEVEL was Squid's debug level
        raise Hint("a number is Squid's debug level, which squid.conf sets: debug_options ALL,"
                   + text.strip())
    level = text.strip().upper()
    if level == "WARN":
        level = "WARNING"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError
    return level


def _log_format(text: str) -> str:
    fmt = text.strip().lower()
    if fmt not in ("text", "json"):
        raise ValueError
    return fmt


def _address(text: str) -> str:
    import ipaddress

    return str(ipaddress.ip_address(text.strip()))


# In the squid.conf Squid runs, these would be a glob, a quote, an escape or a
# macro (${service_name}).
_SPECIAL_IN_SQUID_CONF = set('*?["\\$')


def _absolute_path(text: str) -> str:
    """Paths are written into the squid.conf Squid runs, where whitespace
    separates words, and into UTF-8 files and log lines."""
    if (not text.startswith("/") or any(character.isspace() for character in text)
            or _SPECIAL_IN_SQUID_CONF.intersection(text)):
        raise ValueError
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as surrogates
        raise ValueError from None
    return text.rstrip("/") or "/"


def _seconds(text: str) -> float:
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        raise ValueError
    return float(text)


def _switch(text: str) -> bool:
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _seconds_or_zero(text: str) -> float:
    value = _seconds(text)
    if not 0 <= value < float("inf"):
        raise ValueError
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if not 0 < value < float("inf"):  # also rejects nan
        raise ValueError
    return value


PATH_EXPECTED = 'an absolute path without whitespace or any of * ? [ " \\ $'
# variable name -> (field, parser, what a valid value looks like)
VARIABLES: dict[str, tuple[str, Callable[[str], object], str]] = {
    "SQUID_PORT": ("squid_port", _port, "a port number 1-65535"),
    "HEALTH_PORT": ("health_port", _port, "a port number 1-65535"),
    "HEALTH_BIND": ("health_bind", _address, "an IPv4 or IPv6 address"),
    "LOG_LEVEL": ("log_level", _log_level, "DEBUG, INFO, WARNING, WARN or ERROR"),
    "LOG_FORMAT": ("log_format", _log_format, "text or json"),
    "SHUTDOWN_TIMEOUT": ("shutdown_timeout", _positive_seconds, "a number of seconds > 0"),
    "STARTUP_TIMEOUT": ("startup_timeout", _positive_seconds, "a number of seconds > 0"),
    "READINESS_DRAIN": ("readiness_drain", _seconds_or_zero, "a number of seconds >= 0"),
    "SQUID_CONFIG": ("squid_config", _absolute_path, PATH_EXPECTED),
    "SQUID_DEFAULT_CONFIG": ("squid_default_config", _absolute_path, PATH_EXPECTED),
    "SQUID_BINARY": ("squid_binary", _absolute_path, PATH_EXPECTED),
    "SQUID_CERTGEN": ("squid_certgen", _absolute_path, PATH_EXPECTED),
    "TLS_DIR": ("tls_dir", _absolute_path, PATH_EXPECTED),
    "SQUID_RUN_DIR": ("run_dir", _absolute_path, PATH_EXPECTED),
    "SQUID_LOG_DIR": ("log_dir", _absolute_path, PATH_EXPECTED),
    "SQUID_LIB_DIR": ("lib_dir", _absolute_path, PATH_EXPECTED),
    "SQUID_SPOOL_DIR": ("spool_dir", _absolute_path, PATH_EXPECTED),
    "SQUID_CACHE_DIR": ("cache_dir", _absolute_path, PATH_EXPECTED),
    "EXEC_SIGNAL_GROUP": ("exec_signal_group", _switch, "1 or 0"),
    "EXEC_RELAY_OUTPUT": ("exec_relay_output", _switch, "1 or 0"),
}


# Variables of the upstream CephaloProxy image that have no meaning here, and
# what to do instead (docs/migration.md).
NOT_HERE = {
    "CACHE_SIZE_MB": "a disk cache is a cache_dir line in squid.conf, e.g. "
                     "cache_dir ufs /var/cache/squid 250 16 256 (examples/disk-cache.conf)",
}


def shown_default(default: object) -> str:
    """A default as a user would write it in the variable."""
    if isinstance(default, bool):
        return "1" if default else "0"
    return f"{default:g}" if isinstance(default, float) else str(default)


def load(environ: Mapping[str, str]) -> tuple[Settings, list[str]]:
    """Return the settings and one warning line per invalid variable."""
    defaults = Settings()
    values: dict[str, object] = {}
    warnings: list[str] = []
    for variable, (field, parse, expected) in VARIABLES.items():
        text = environ.get(variable)
        if text is None or text == "":
            continue
        try:
            values[field] = parse(text)
        except ValueError as error:
            default = getattr(defaults, field)
            shown = shown_default(default)
            hint = f" ({error})" if isinstance(error, Hint) else ""
            warnings.append(
                f"Invalid {variable}={text!r}: expected {expected}{hint}; using the default {shown}"
            )
    for variable, instead in NOT_HERE.items():
        if environ.get(variable):
            warnings.append(f"{variable} is not used by this image; {instead}")
    return defaults._replace(**values), warnings
