"""The references validator: every helper program the configuration names
exists in the image and can be run, and every file it names in quotes
(``acl blocked dstdomain "/etc/squid/blocked.acl"``) is a readable file.

A config written for another distribution names its helpers where that
distribution keeps them (Red Hat: /usr/lib64/squid/), sometimes by an older
name (Squid 3's ssl_crtd is Squid 4's security_file_certgen). Squid would
find out only when it starts the helper, or die of a bare ENOENT; here the
user gets the directive, the path, and the image's equivalent.
"""

from __future__ import annotations

import os

from .. import squidconf, userfiles
from ..errors import Fatal
from ..squidconf import Directive, SquidConfig
from . import Context

# Directives whose first argument is the program.
PROGRAM_FIRST = ("sslcrtd_program", "url_rewrite_program", "redirect_program", "store_id_program",
                 "logfile_daemon", "unlinkd_program", "diskd_program")
# Helpers renamed since the configs that still name them were written.
RENAMED = {
    "ssl_crtd": "security_file_certgen",
    "ncsa_auth": "basic_ncsa_auth",
    "squid_ldap_auth": "basic_ldap_auth",
    "squid_kerb_auth": "negotiate_kerberos_auth",
    "squid_ldap_group": "ext_ldap_group_acl",
}


def program(directive: Directive) -> str | None:
    """The helper program a directive names, when it names one by absolute path."""
    args = directive.args
    if directive.name == "auth_param" and len(args) >= 3 and args[1] == "program":
        named = args[2]
    elif directive.name in PROGRAM_FIRST and args:
        named = args[0]
    elif directive.name in ("external_acl_type", "sslcrtvalidator_program"):
        # options and the format come first; the program is the first path
        named = next((arg for arg in args[1:] if arg.startswith("/")), "")
    else:
        return None
    return named if named.startswith("/") else None  # a bare name is looked up on PATH


def equivalent(path: str, helper_dir: str) -> str | None:
    name = os.path.basename(path)
    candidate = os.path.join(helper_dir, RENAMED.get(name, name))
    return candidate if candidate != path and os.access(candidate, os.X_OK) else None


def quoted_files(directive: Directive) -> list[str]:
    """The files an ``acl`` reads its values from: quoted arguments after its
    name and type (elsewhere a quoted argument is just a quoted value)."""
    if directive.name != "acl":
        return []
    return [arg[1:-1] for arg in directive.args[2:]
            if len(arg) > 2 and arg.startswith('"') and arg.endswith('"')]


def check_files(config: SquidConfig) -> None:
    for directive in config.directives:
        for path in quoted_files(directive):
            place = f"{directive.name} in {directive.where}"
            if not path.startswith("/"):
                raise Fatal(f"{place} reads the file {path} by a relative path; write it in full")
            try:
                # A blocklist may be large: only its start is read, enough to
                # tell a key (a few KiB) that would end up quoted in Squid's log.
                start = userfiles.head(path, userfiles.MAX_PEM_BYTES)
            except OSError as error:
                raise Fatal(f"{place} reads the file {path}: {error.strerror}; "
                            "mount it, readable by the container's UID") from None
            except userfiles.NotAFile as error:
                raise Fatal(f"{place} reads the file {error}") from None
            if squidconf.holds_key(start):
                raise Fatal(f"{place} reads the file {path}, which holds a private key; "
                            "name a file of ACL values")


def check(context: Context, config: SquidConfig) -> None:
    check_files(config)
    helper_dir = os.path.dirname(context.settings.squid_certgen)  # where the image keeps them
    for directive in config.directives:
        path = program(directive)
        if path is not None and "\0" in path:
            raise Fatal(f"{directive.name} in {directive.where} names a path with a NUL byte")
        if path is None or (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        problem = "is not executable" if os.path.exists(path) else "does not exist in this image"
        instead = equivalent(path, helper_dir)
        fix = f"use {instead}" if instead else f"the image's helpers are in {helper_dir}"
        raise Fatal(f"{directive.name} in {directive.where} names {path}, which {problem}; {fix}")
