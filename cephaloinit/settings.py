"""Every environment variable cephaloinit reads, parsed and checked in one place.

An invalid value never stops the container: it is replaced by the default and
reported as one warning line naming the variable, the value and the default.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping


@dataclasses.dataclass(frozen=True)
class Settings:
    squid_port: int = 3128
    health_port: int = 8080
    log_level: str = "INFO"
    log_format: str = "text"
    shutdown_timeout: float = 30.0


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError
    return value


def _log_level(text: str) -> str:
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


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # also rejects nan
        raise ValueError
    return value


# variable name -> (field, parser, what a valid value looks like)
VARIABLES: dict[str, tuple[str, Callable[[str], object], str]] = {
    "SQUID_PORT": ("squid_port", _port, "a port number 1-65535"),
    "HEALTH_PORT": ("health_port", _port, "a port number 1-65535"),
    "LOG_LEVEL": ("log_level", _log_level, "DEBUG, INFO, WARNING, WARN or ERROR"),
    "LOG_FORMAT": ("log_format", _log_format, "text or json"),
    "SHUTDOWN_TIMEOUT": ("shutdown_timeout", _positive_seconds, "a number of seconds > 0"),
}


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
        except ValueError:
            default = getattr(defaults, field)
            shown = f"{default:g}" if isinstance(default, float) else default
            warnings.append(
                f"Invalid {variable}={text!r}: expected {expected}; using the default {shown}"
            )
    return dataclasses.replace(defaults, **values), warnings
