"""The ssl-bump validator: the CA certificate and key are present, valid and
matching, merged into the file Squid reads, and the certificate database exists.

The private key is read only by the ssl module and copied; no message here
ever contains its content, only its path.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable

from .. import squid, squidconf, userfiles
from ..errors import Fatal
from ..settings import Settings
from . import Context

CERTGEN_TIMEOUT = 30.0
UPSTREAM_TLS_DIR = "/etc/squid/ssl_cert"  # where the upstream CephaloProxy image documents it
MERGED_NAME = "squid-ca.pem"


def _read_pem(path: str, label: str, markers: tuple[bytes, ...], context: Context) -> bytes:
    try:
        data = userfiles.read_bytes(path, userfiles.MAX_PEM_BYTES)
    except userfiles.NotAFile as error:
        raise Fatal(f"The {label} {error}; mount the PEM file itself") from None
    except FileNotFoundError:
        raise Fatal(f"ssl-bump is configured but the {label} {path} is missing; mount it "
                    f"(TLS_DIR={context.settings.tls_dir})") from None
    except OSError as error:
        raise Fatal(f"Cannot read the {label} {path}: {error.strerror}; make it readable "
                    f"by UID {context.uid} (GID {context.gid})") from None
    if not any(marker in data for marker in markers):
        raise Fatal(f"The {label} {path} is not in PEM format (no {markers[0].decode()} block)")
    return data


def merge(lib_dir: str, certificate: bytes, key: bytes,
          verify: Callable[[str], None] = lambda path: None) -> str:
    """Write certificate + key to lib_dir/squid-ca.pem, mode 0600, atomically;
    ``verify`` sees the merged copy before it is put in place, and may raise."""
    final = os.path.join(lib_dir, MERGED_NAME)
    temporary = f"{final}.{os.getpid()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(certificate.rstrip(b"\n") + b"\n" + key.rstrip(b"\n") + b"\n")
                file.flush()
                os.fsync(file.fileno())
            verify(temporary)
            os.replace(temporary, final)
        except BaseException:
            # The temporary file holds the CA key: never leave it behind.
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as error:
        raise Fatal(f"Cannot write {final}: {error.strerror}; {lib_dir} needs free space "
                    f"and must be writable") from None
    return final


def tls_dir(settings: Settings) -> str:
    """TLS_DIR; or, when TLS_DIR is left at its default and holds no
    certificate, the upstream image's mount point for a Kubernetes TLS secret."""
    default = Settings().tls_dir
    if (settings.tls_dir == default and not os.path.lexists(os.path.join(default, "tls.crt"))
            and os.path.lexists(os.path.join(UPSTREAM_TLS_DIR, "tls.crt"))):
        return UPSTREAM_TLS_DIR
    return settings.tls_dir


def check(context: Context, config: squidconf.SquidConfig) -> str | None:
    if not config.ssl_bump:
        return None
    settings = context.settings
    directory = tls_dir(settings)
    cert_path = os.path.join(directory, "tls.crt")
    key_path = os.path.join(directory, "tls.key")
    certificate = _read_pem(cert_path, "CA certificate", (b"-----BEGIN CERTIFICATE-----",), context)
    key = _read_pem(key_path, "CA private key",
                    (b"-----BEGIN PRIVATE KEY-----", b"-----BEGIN RSA PRIVATE KEY-----",
                     b"-----BEGIN EC PRIVATE KEY-----", b"-----BEGIN ENCRYPTED PRIVATE KEY-----"),
                    context)

    def usable_together(merged_copy: str) -> None:
        # OpenSSL opens only our own regular copy, never the user's paths.
        import ssl  # only with ssl-bump: libssl and libcrypto cost PID 1 some 6 MB of memory

        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(merged_copy, password=b"")
        except ssl.SSLError as error:
            if b"ENCRYPTED" in key:  # PKCS#8 "ENCRYPTED PRIVATE KEY", or "Proc-Type: 4,ENCRYPTED"
                raise Fatal(f"The CA private key {key_path} is encrypted and there is nobody to ask "
                            "for its passphrase; mount an unencrypted key") from None
            reason = ("they do not match" if "KEY_VALUES_MISMATCH" in str(error)
                      else error.reason or "OpenSSL cannot load them")
            raise Fatal(f"The CA certificate {cert_path} and private key {key_path} cannot be "
                        f"used together: {reason}; mount a matching, unencrypted pair") from None

    target = settings.lib_dir
    if context.dry_run and os.path.isfile(os.path.join(target, MERGED_NAME)):
        target = context.scratch_dir  # that one is the running Squid's
    merged = merge(target, certificate, key, usable_together)
    database = config.certificate_db or os.path.join(settings.lib_dir, "ssl_db")
    if not os.path.exists(database):
        result = context.run_helper(
            "Squid's certgen helper", squid.certgen_init_command(settings, database), CERTGEN_TIMEOUT)
        if result.exit_code != 0:
            details = " | ".join(result.output[-3:]) or f"exit code {result.exit_code}"
            raise Fatal(f"Cannot initialise the certificate database {database}: {details}")
        context.log.info(f"Initialised the certificate database {database}")
    return merged
