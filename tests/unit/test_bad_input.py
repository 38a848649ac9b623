"""The bad-input matrix: every environment variable with invalid values, every
validator's failure, and the command line's own mistakes. Each must give one
clear line (a WARNING and the default for a variable; one ERROR and exit 1
for the rest) and never a traceback.

Settings are checked in-process; validators and the command line through
``python -m cephaloinit`` as a subprocess (not PID 1: no root needed), with a
shell script standing in for Squid.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from cephaloinit import settings as settings_module
from cephaloinit.settings import Settings, load

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UID, GID = os.getuid(), os.getgid()
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"

# -- environment variables ----------------------------------------------------------
INVALID = {
    "port": ["0", "65536", "-1", "http", "3128.0", "0x10", "31 28", "３１２８", "3_128"],
    "address": ["nope", "256.0.0.1", "::g", "localhost", "127.0.0.1:8080", "*"],
    "level": ["TRACE", "verbose", "1.5", "INFOO"],  # a plain number has its own hint, below
    "format": ["xml", "yaml", "JSONL", "plain"],
    "positive": ["0", "-1", "-0.5", "nan", "inf", "-inf", "1e400", "soon", "30s", "1,5", "1_0",
                 "３"],
    "zero_or_more": ["-1", "nan", "inf", "x", "5 seconds", "1_0", "٣"],
    "switch": ["maybe", "2", "enabled", "１"],
    # whitespace would split the path in the squid.conf Squid runs; a byte that is
    # not UTF-8 reaches Python as a lone surrogate
    "path": ["relative", "./x", "~/x", "squid.conf", " /leading-space", "/my dir", "/tab\tdir",
             "/not-utf8-\udcff", "/etc/[x]", "/a*", "/${service_name}", '/"q"'],
}
KIND = {
    "SQUID_PORT": "port", "HEALTH_PORT": "port", "HEALTH_BIND": "address", "LOG_LEVEL": "level",
    "LOG_FORMAT": "format", "SHUTDOWN_TIMEOUT": "positive", "STARTUP_TIMEOUT": "positive",
    "READINESS_DRAIN": "zero_or_more", "EXEC_SIGNAL_GROUP": "switch", "EXEC_RELAY_OUTPUT": "switch",
}
CASES = [(variable, value) for variable in settings_module.VARIABLES
         for value in INVALID[KIND.get(variable, "path")]]


def test_the_matrix_covers_every_variable():
    assert {variable for variable, _ in CASES} == set(settings_module.VARIABLES)


@pytest.mark.parametrize("variable, value", CASES)
def test_an_invalid_value_is_one_warning_naming_it_and_the_default_is_kept(variable, value):
    settings, warnings = load({variable: value})
    assert settings == Settings()
    field, _, expected = settings_module.VARIABLES[variable]
    default = getattr(Settings(), field)
    if isinstance(default, bool):  # a switch: written as the user would, 1 or 0
        shown = "1" if default else "0"
    else:
        shown = f"{default:g}" if isinstance(default, float) else default
    assert warnings == [f"Invalid {variable}={value!r}: expected {expected}; using the default {shown}"]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO, **env}
    full_env.update({k: v for k, v in os.environ.items() if k.startswith("COVERAGE_")})
    return subprocess.run([sys.executable, "-m", "cephaloinit", *args], env=full_env, cwd=REPO,
                          capture_output=True, timeout=timeout)


def test_warnings_are_printed_one_line_each_in_the_log_format_before_anything_else(tmp_path):
    env = {"SQUID_PORT": "http", "HEALTH_BIND": "nope", "SHUTDOWN_TIMEOUT": "soon",
           "SQUID_RUN_DIR": str(tmp_path)}
    result = run_cli(["status"], env)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 3
    for line, text in zip(lines, [
            "Invalid SQUID_PORT='http': expected a port number 1-65535; using the default 3128",
            "Invalid HEALTH_BIND='nope': expected an IPv4 or IPv6 address; using the default 0.0.0.0",
            "Invalid SHUTDOWN_TIMEOUT='soon': expected a number of seconds > 0; using the default 30"]):
        assert re.fullmatch(rf"{STAMP} \[WARNING\] {re.escape(text)}", line), line
    assert result.returncode == 1  # status: nothing published in this run directory


def test_an_invalid_log_format_warns_in_text_and_an_invalid_level_keeps_info(tmp_path):
    result = run_cli(["status"], {"LOG_FORMAT": "xml", "LOG_LEVEL": "TRACE", "SQUID_RUN_DIR": str(tmp_path)})
    out = result.stdout.decode().splitlines()
    assert [line.split("] ", 1)[1] for line in out] == [
        "Invalid LOG_LEVEL='TRACE': expected DEBUG, INFO, WARNING, WARN or ERROR; using the default INFO",
        "Invalid LOG_FORMAT='xml': expected text or json; using the default text"]


def test_in_json_format_a_warning_is_one_json_object(tmp_path):
    import json
    result = run_cli(["status"], {"LOG_FORMAT": "json", "SQUID_PORT": "x", "SQUID_RUN_DIR": str(tmp_path)})
    document = json.loads(result.stdout.decode().splitlines()[0])
    assert document["level"] == "WARNING" and document["message"].startswith("Invalid SQUID_PORT='x'")


@pytest.mark.timeout(30)
def test_a_huge_but_valid_shutdown_timeout_does_not_crash_the_loop():
    """SHUTDOWN_TIMEOUT=1e10 is 'a number of seconds > 0', so it is accepted;
    the stop must then work as with any other value."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": REPO, "SHUTDOWN_TIMEOUT": "1e10"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cephaloinit", "exec", "--", sys.executable,
         f"{REPO}/tests/system/programs/stubborn.py", "3"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout.readline() == b"ready\n"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert b"Traceback" not in err, err.decode()[-500:]
    assert process.returncode == 3


# -- validators -------------------------------------------------------------------------
FAKE_SQUID = """#!/bin/sh
# -k parse fails for a config (or a file it includes) naming no_such_directive;
# -z fails when asked to
case "$*" in
  *"-k parse"*)
    if grep -q no_such_directive "$4" $(sed -n 's/^include //p' "$4"); then
      echo "2026/01/01 00:00:00| Processing: http_port 3128"
      echo "2026/01/01 00:00:00| FATAL: Bungled squid.conf line 2: no_such_directive on"
      echo "Squid Cache (Version 5.7): Terminated abnormally."
      exit 1
    fi
    exit 0;;
  *"-z"*) echo "2026/01/01 00:00:00| FATAL: cannot create swap directories"; exit 1;;
esac
exit 0
"""


class Layout:
    def __init__(self, root):
        self.root = str(root)
        self.squid = f"{self.root}/squid"
        with open(self.squid, "w") as file:
            file.write(FAKE_SQUID)
        os.chmod(self.squid, 0o755)
        self.config = f"{self.root}/etc/squid.conf"
        self.tls = f"{self.root}/etc/tls"
        os.makedirs(self.tls)
        self.dirs = {name: f"{self.root}/{name}" for name in ("run", "log", "lib", "spool", "cache")}
        self.env = {
            "SQUID_CONFIG": self.config, "SQUID_BINARY": self.squid, "TLS_DIR": self.tls,
            "SQUID_DEFAULT_CONFIG": f"{REPO}/container/squid.conf.default",
            "SQUID_CERTGEN": f"{self.root}/certgen",
            **{f"SQUID_{name.upper()}_DIR": path for name, path in self.dirs.items()},
        }
        self.write_config("http_port 3128\n")
        self.write_certgen("exit 0")

    def write_config(self, text: str) -> None:
        with open(self.config, "w") as file:
            file.write(text)

    def write_certgen(self, body: str) -> None:
        with open(f"{self.root}/certgen", "w") as file:
            file.write(f"#!/bin/sh\n{body}\n")
        os.chmod(f"{self.root}/certgen", 0o755)

    def bump(self) -> None:
        self.write_config(f"http_port 3128 ssl-bump tls-cert={self.dirs['lib']}/squid-ca.pem\n"
                          f"sslcrtd_program {self.root}/certgen -s {self.dirs['lib']}/ssl_db -M 4MB\n"
                          "ssl_bump bump all\n")

    def make_ca(self, name: str = "tls", encrypted: bool = False) -> None:
        command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-days", "2", "-subj", "/CN=t",
                   "-keyout", f"{self.tls}/{name}.key", "-out", f"{self.tls}/{name}.crt"]
        command += ["-passout", "pass:secret"] if encrypted else ["-nodes"]
        subprocess.run(command, check=True, capture_output=True)

    def validate(self, env: dict | None = None) -> subprocess.CompletedProcess:
        return run_cli(["validate"], {**self.env, **(env or {})})

    def start(self, env: dict | None = None) -> subprocess.CompletedProcess:
        """`run`, for what only a real start does (a dry run initialises no
        cache); it must fail in its validators, or the test times out."""
        return run_cli(["run"], {**self.env, **(env or {})}, timeout=20)


@pytest.fixture
def layout(tmp_path):
    return Layout(tmp_path)


def one_error(result: subprocess.CompletedProcess) -> str:
    """The single ERROR line (on stderr), after checking exit 1 and no traceback."""
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 1, (out, err)
    assert "Traceback" not in out + err
    assert "[ERROR]" not in out
    lines = err.splitlines()
    assert len(lines) == 1, lines
    match = re.fullmatch(rf"{STAMP} \[ERROR\] (.*)", lines[0])
    assert match, lines[0]
    return match.group(1)


def fix(path: str) -> str:
    return (f"make it group 0 and group-writable (chgrp 0 {path} && chmod g+rwx {path}) "
            f"or mount a writable volume there")


def test_valid_layout_passes(layout):
    result = layout.validate()
    assert result.returncode == 0, result.stderr.decode()


def test_config_1_default_template_missing(layout):
    os.unlink(layout.config)
    message = one_error(layout.validate({"SQUID_DEFAULT_CONFIG": "/nonexistent/squid.conf"}))
    assert message == ("Cannot read the default Squid configuration /nonexistent/squid.conf: "
                       f"No such file or directory; mount a squid.conf at {layout.config}")


def test_config_1_dangling_symlink(layout):
    os.unlink(layout.config)
    os.symlink("/nonexistent/target.conf", layout.config)
    message = one_error(layout.validate())
    assert message == (f"Cannot read Squid configuration {layout.config}: No such file or directory; "
                       f"make it readable by UID {UID} (GID {GID})")


def test_config_1_a_directory(layout):
    os.unlink(layout.config)
    os.mkdir(layout.config)
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is a directory, not a regular file; "
                       "mount a squid.conf file there")


def test_config_1_includes_nested_too_deep(layout):
    layout.write_config(f"http_port 3128\ninclude {layout.config}\n")
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is invalid: {layout.config}: "
                       "includes nested more than 16 deep")


def test_config_1_default_cannot_be_rendered_into_the_run_directory(layout):
    os.unlink(layout.config)
    blocker = f"{layout.root}/not-a-dir"
    open(blocker, "w").close()
    run_dir = f"{blocker}/run"
    message = one_error(layout.start({"SQUID_RUN_DIR": run_dir}))
    assert message == (f"Cannot write {run_dir}/squid.conf: Not a directory; the run directory "
                       f"{run_dir} must be writable by UID {UID} (GID {GID}): make it group 0 "
                       "and group-writable")
    # validate's scratch directory would go there too
    message = one_error(layout.validate({"SQUID_RUN_DIR": run_dir}))
    assert message == (f"Cannot create a scratch directory in {run_dir}: Not a directory; the run "
                       f"directory {run_dir} must be writable by UID {UID} (GID {GID}): make it "
                       "group 0 and group-writable")


needs_openssl = pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")


# -- files that are not regular files, and other inputs that once gave tracebacks -------
def test_config_1_a_fifo_is_refused_without_blocking(layout):
    os.unlink(layout.config)
    os.mkfifo(layout.config)
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is a FIFO, not a regular file; "
                       "mount a squid.conf file there")


def test_config_1_dev_zero_is_refused_without_reading_it(layout):
    os.unlink(layout.config)
    os.symlink("/dev/zero", layout.config)
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is a character device, not a regular "
                       "file; mount a squid.conf file there")


def test_config_1_an_included_fifo_is_refused(layout):
    fifo = f"{layout.root}/extra.conf"
    os.mkfifo(fifo)
    layout.write_config(f"http_port 3128\ninclude {fifo}\n")
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is invalid: {layout.config} line 2: "
                       f"cannot include {fifo}: {fifo} is a FIFO, not a regular file")


@needs_openssl
def test_config_1_an_included_private_key_is_refused_and_never_shown(layout):
    layout.make_ca()
    layout.write_config(f"http_port 3128\ninclude {layout.tls}/*\n")
    result = layout.validate()
    message = one_error(result)
    assert message == (f"Squid configuration {layout.config} is invalid: {layout.tls}/tls.key holds "
                       "a private key, not Squid configuration; include only configuration files "
                       "(the CA belongs in TLS_DIR)")
    key_lines = open(f"{layout.tls}/tls.key").read().splitlines()[1:-1]
    output = (result.stdout + result.stderr).decode()
    assert not any(line in output for line in key_lines)


def test_config_1_the_default_template_not_utf8(layout):
    os.unlink(layout.config)
    template = f"{layout.root}/template.conf"
    with open(template, "wb") as file:
        file.write(b"http_port 3128\n\xff\xfe\n")
    message = one_error(layout.validate({"SQUID_DEFAULT_CONFIG": template}))
    assert message == (f"Cannot read the default Squid configuration {template}: not UTF-8 text "
                       f"(byte 15); mount a squid.conf at {layout.config}")


def test_config_1_a_relative_pid_filename(layout):
    layout.write_config("http_port 3128\npid_filename squid.pid\n")
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is invalid: {layout.config} line 2: "
                       "pid_filename squid.pid is not an absolute path; write it in full, e.g. "
                       "/var/run/squid/squid.pid")


def test_directories_2_pid_filename_names_a_directory(layout):
    run = layout.dirs["run"]
    os.makedirs(run)
    layout.write_config(f"http_port 3128\npid_filename {run}\n")
    message = one_error(layout.validate())
    assert message == (f"pid_filename {run} in the Squid configuration is a directory; name a file "
                       f"in it, e.g. {run}/squid.pid")


def test_config_1_a_nul_byte_in_the_config(layout):
    layout.write_config(f"http_port 3128\ncache_dir ufs {layout.root}/a\0b 100 16 256\n")
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is invalid: {layout.config} holds NUL "
                       "bytes: it is not a text configuration file")


@needs_openssl
def test_tls_3_a_key_that_is_a_fifo_is_refused_without_blocking(layout):
    layout.bump()
    layout.make_ca()
    os.unlink(f"{layout.tls}/tls.key")
    os.mkfifo(f"{layout.tls}/tls.key")
    message = one_error(layout.validate())
    assert message == (f"The CA private key {layout.tls}/tls.key is a FIFO, not a regular file; "
                       "mount the PEM file itself")


def test_programs_a_red_hat_helper_path_names_the_images_equivalent(layout):
    certgen = f"{layout.root}/security_file_certgen"  # the layout's helper directory
    with open(certgen, "w") as file:
        file.write("#!/bin/sh\n")
    os.chmod(certgen, 0o755)
    layout.write_config("http_port 3128\n"
                        "sslcrtd_program /usr/lib64/squid/ssl_crtd -s /var/lib/ssl_db -M 4MB\n")
    message = one_error(layout.validate())
    assert message == (f"sslcrtd_program in {layout.config} line 2 names /usr/lib64/squid/ssl_crtd, "
                       f"which does not exist in this image; use {certgen}")


def test_programs_a_helper_that_is_not_executable(layout):
    helper = f"{layout.root}/rewriter"
    open(helper, "w").close()
    layout.write_config(f"http_port 3128\nurl_rewrite_program {helper} --fast\n")
    message = one_error(layout.validate())
    assert message == (f"url_rewrite_program in {layout.config} line 2 names {helper}, which is not "
                       f"executable; the image's helpers are in {layout.root}")


def test_programs_an_auth_helper_is_checked(layout):
    layout.write_config("http_port 3128\nauth_param basic program /usr/lib64/squid/basic_ncsa_auth "
                        "/etc/squid/passwd\n")
    message = one_error(layout.validate())
    assert message.startswith(f"auth_param in {layout.config} line 2 names "
                              "/usr/lib64/squid/basic_ncsa_auth, which does not exist in this image")


def test_directories_2_cannot_be_created(layout):
    blocker = f"{layout.root}/not-a-dir"
    open(blocker, "w").close()
    path = f"{blocker}/log"
    message = one_error(layout.validate({"SQUID_LOG_DIR": path}))
    assert message == (f"Cannot create directory {path} as UID {UID} (GID {GID}): Not a directory; "
                       f"{fix(path)}")


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs /sys")
def test_directories_2_not_writable(layout):
    message = one_error(layout.validate({"SQUID_CACHE_DIR": "/sys"}))
    assert message == (f"Directory /sys is not writable by UID {UID} (GID {GID}): Permission denied; "
                       f"{fix('/sys')}")


def test_directories_2_a_cache_dir_under_a_file(layout):
    blocker = f"{layout.root}/not-a-dir"
    open(blocker, "w").close()
    layout.write_config(f"http_port 3128\ncache_dir ufs {blocker}/cache 100 16 256\n")
    message = one_error(layout.validate())
    assert message.startswith(f"Cannot create directory {blocker}/cache (cache_dir, {layout.config} "
                              f"line 2) as UID {UID}")




def test_tls_3_certificate_missing(layout):
    layout.bump()
    message = one_error(layout.validate())
    assert message == (f"ssl-bump is configured but the CA certificate {layout.tls}/tls.crt is missing; "
                       f"mount it (TLS_DIR={layout.tls})")


@needs_openssl
def test_tls_3_key_missing(layout):
    layout.bump()
    layout.make_ca()
    os.unlink(f"{layout.tls}/tls.key")
    message = one_error(layout.validate())
    assert message == (f"ssl-bump is configured but the CA private key {layout.tls}/tls.key is missing; "
                       f"mount it (TLS_DIR={layout.tls})")


def test_tls_3_certificate_unreadable(layout):
    layout.bump()
    os.mkdir(f"{layout.tls}/tls.crt")
    message = one_error(layout.validate())
    assert message == (f"The CA certificate {layout.tls}/tls.crt is a directory, not a regular file; "
                       "mount the PEM file itself")


def test_tls_3_certificate_not_pem(layout):
    layout.bump()
    with open(f"{layout.tls}/tls.crt", "wb") as file:
        file.write(b"\x30\x82\x01\x0a binary DER")
    message = one_error(layout.validate())
    assert message == (f"The CA certificate {layout.tls}/tls.crt is not in PEM format "
                       "(no -----BEGIN CERTIFICATE----- block)")


@needs_openssl
def test_tls_3_key_not_pem(layout):
    layout.bump()
    layout.make_ca()
    with open(f"{layout.tls}/tls.key", "w") as file:
        file.write("not a key\n")
    message = one_error(layout.validate())
    assert message == (f"The CA private key {layout.tls}/tls.key is not in PEM format "
                       "(no -----BEGIN PRIVATE KEY----- block)")


@needs_openssl
def test_tls_3_mismatched_pair_never_shows_the_key(layout):
    layout.bump()
    layout.make_ca()
    layout.make_ca("other")
    os.replace(f"{layout.tls}/other.key", f"{layout.tls}/tls.key")
    result = layout.validate()
    message = one_error(result)
    assert message == (f"The CA certificate {layout.tls}/tls.crt and private key {layout.tls}/tls.key "
                       "cannot be used together: they do not match; mount a matching, unencrypted pair")
    with open(f"{layout.tls}/tls.key") as file:
        body = [line for line in file.read().splitlines() if "-----" not in line]
    output = (result.stdout + result.stderr).decode()
    assert not any(line in output for line in body)


@needs_openssl
def test_tls_3_encrypted_key_says_so(layout):
    layout.bump()
    layout.make_ca(encrypted=True)
    message = one_error(layout.validate())
    assert "None" not in message
    assert "encrypted" in message.split("; mount")[0]


@needs_openssl
def test_tls_3_merge_cannot_be_put_in_place(layout):
    layout.bump()
    layout.make_ca()
    lib = layout.dirs["lib"]
    os.makedirs(f"{lib}/squid-ca.pem/occupied")  # a directory where the file must go
    message = one_error(layout.validate())
    assert message == (f"Cannot write {lib}/squid-ca.pem: Is a directory; {lib} needs free space "
                       "and must be writable")


@needs_openssl
def test_tls_3_a_failed_merge_leaves_no_copy_of_the_key_behind(layout):
    layout.bump()
    layout.make_ca()
    lib = layout.dirs["lib"]
    os.makedirs(f"{lib}/squid-ca.pem/occupied")
    one_error(layout.validate())
    assert sorted(os.listdir(lib)) == ["squid-ca.pem"]  # no squid-ca.pem.*.tmp (holding the key)


@needs_openssl
def test_tls_3_certgen_fails_quoting_its_output(layout):
    layout.bump()
    layout.make_ca()
    layout.write_certgen('echo "security_file_certgen: Cannot create ssl_db: boom" >&2; exit 1')
    message = one_error(layout.validate())
    assert message == (f"Cannot initialise the certificate database {layout.dirs['lib']}/ssl_db: "
                       "security_file_certgen: Cannot create ssl_db: boom")


@needs_openssl
def test_tls_3_certgen_missing(layout):
    layout.bump()
    layout.make_ca()
    message = one_error(layout.validate({"SQUID_CERTGEN": "/nonexistent/certgen"}))
    assert message == "Cannot run Squid's certgen helper (/nonexistent/certgen): No such file or directory"


def test_parse_4_squid_rejects_the_config_with_its_problem_lines(layout):
    layout.write_config("http_port 3128\nno_such_directive on\n")
    message = one_error(layout.validate())
    assert message == (f"Squid configuration {layout.config} is invalid: 2026/01/01 00:00:00| FATAL: "
                       "Bungled squid.conf line 2: no_such_directive on | Squid Cache (Version 5.7): "
                       "Terminated abnormally.")
    assert "Processing:" not in message  # only the lines that explain the failure


def test_parse_4_squid_binary_missing(layout):
    message = one_error(layout.validate({"SQUID_BINARY": "/nonexistent/squid"}))
    assert message == "Cannot run squid -k parse (/nonexistent/squid): No such file or directory"


def test_parse_4_squid_binary_not_executable(layout):
    os.chmod(layout.squid, 0o644)
    message = one_error(layout.validate())
    assert message == f"Cannot run squid -k parse ({layout.squid}): Permission denied"


def test_cache_5_squid_z_fails(layout):
    cache = f"{layout.root}/swap"
    layout.write_config(f"http_port 3128\ncache_dir ufs {cache} 100 16 256\n")
    assert layout.validate().returncode == 0  # a dry run leaves swap directories alone
    message = one_error(layout.start())
    assert message == (f"Cannot initialise the cache directories {cache}: 2026/01/01 00:00:00| "
                       "FATAL: cannot create swap directories")


# -- the command line ---------------------------------------------------------------------------
@pytest.mark.parametrize("args, expected", [
    (["frobnicate"], "cephaloinit: unknown command 'frobnicate'; run 'cephaloinit --help' for the list"),
    (["exec"], "cephaloinit exec: no command given; usage: cephaloinit exec [OPTIONS] -- CMD [ARG...]"),
    (["exec", "--"], "cephaloinit exec: no command given; usage: cephaloinit exec [OPTIONS] -- CMD [ARG...]"),
])
def test_command_line_mistakes_are_one_error_line_and_exit_1(args, expected, tmp_path):
    result = run_cli(args, {"SQUID_RUN_DIR": str(tmp_path)})
    assert one_error(result) == expected


def test_status_without_a_published_state_is_one_error_line(tmp_path):
    result = run_cli(["status"], {"SQUID_RUN_DIR": str(tmp_path)})
    assert one_error(result) == (f"No state published at {tmp_path}/cephaloinit.state: is cephaloinit "
                                 "running with this SQUID_RUN_DIR?")


@pytest.mark.parametrize("args, expected", [
    (["--timeout", "soon"], "cephaloinit check: --timeout 'soon': expected a number of seconds > 0"),
    (["--url", "http://a..b/"], "cephaloinit check: --url 'http://a..b/': 'a..b' is not a valid host name"),
])
def test_check_argument_mistakes_are_one_line_exit_1(args, expected):
    result = run_cli(["check", *args], {})
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [expected]
    assert b"Traceback" not in result.stderr


def test_timing_sanity():
    """The matrix above runs a subprocess per case; keep it fast (no helper waits)."""
    started = time.monotonic()
    run_cli(["--version"], {})
    assert time.monotonic() - started < 5


def test_the_upstream_images_numeric_log_level_says_what_to_use_instead():
    settings, warnings = load({"LOG_LEVEL": "2"})
    assert settings.log_level == "INFO"
    assert warnings == ["Invalid LOG_LEVEL='2': expected DEBUG, INFO, WARNING, WARN or ERROR (a number "
                        "is Squid's debug level, which squid.conf sets: debug_options ALL,2); using "
                        "the default INFO"]


def test_the_upstream_images_cache_size_says_what_to_use_instead():
    _, warnings = load({"CACHE_SIZE_MB": "500"})
    assert warnings == ["CACHE_SIZE_MB is not used by this image; a disk cache is a cache_dir line in "
                        "squid.conf, e.g. cache_dir ufs /var/cache/squid 250 16 256 "
                        "(examples/disk-cache.conf)"]


def test_references_a_quoted_acl_file_that_is_missing(layout):
    layout.write_config(f'http_port 3128\nacl blocked dstdomain "{layout.root}/blocked.acl"\n')
    message = one_error(layout.validate())
    assert message == (f"acl in {layout.config} line 2 reads the file {layout.root}/blocked.acl: No such "
                       "file or directory; mount it, readable by the container's UID")
    with open(f"{layout.root}/blocked.acl", "w") as file:
        file.write(".example.com\n")
    assert layout.validate().returncode == 0


@needs_openssl
def test_references_a_key_named_as_an_acl_file_is_refused(layout):
    """Squid would quote its lines in warnings once running (`Ignoring unknown protocol '...'`)."""
    layout.make_ca()
    layout.write_config(f'http_port 3128\nacl k proto "{layout.tls}/tls.key"\n')
    message = one_error(layout.validate())
    assert message == (f"acl in {layout.config} line 2 reads the file {layout.tls}/tls.key, which holds "
                       "a private key; name a file of ACL values")


def test_references_a_quoted_value_that_is_not_an_acl_file_is_left_alone(layout):
    layout.write_config('http_port 3128\nrequest_header_add X-Client-CA "CA=%ssl::>cert_issuer" all\n')
    assert layout.validate().returncode == 0


def test_references_a_large_blocklist_is_fine(layout):
    blocklist = f"{layout.root}/big.acl"
    with open(blocklist, "w") as file:
        file.write(".example.com\n" * 1_400_000)  # about 18 MB
    layout.write_config(f'http_port 3128\nacl big dstdomain "{blocklist}"\n')
    assert layout.validate().returncode == 0


def test_validate_interrupted_by_a_stop_gives_no_verdict_and_128_plus_n(layout):
    with open(layout.squid, "w") as file:
        file.write("#!/bin/sh\necho started > \"$0.started\"\nexec sleep 30\n")
    process = subprocess.Popen([sys.executable, "-m", "cephaloinit", "validate"],
                               env={"PATH": os.environ["PATH"], "PYTHONPATH": REPO, **layout.env},
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(f"{layout.squid}.started"):  # squid -k parse is running
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    assert b"Validation interrupted by SIGTERM: no verdict" in out
    assert b"Traceback" not in out + err
