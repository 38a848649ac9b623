import os
import shutil
import subprocess

import pytest

from cephaloinit import squidconf, validators
from cephaloinit.errors import Fatal
from cephaloinit.logs import Logger
from cephaloinit.settings import Settings
from cephaloinit.validators import HelperResult, cache, config, directories, tls

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Helpers:
    """A stand-in for the supervisor's run_helper that records the calls."""

    def __init__(self, exit_code=0, output=()):
        self.calls = []
        self.result = HelperResult(exit_code, list(output))

    def __call__(self, name, argv, timeout):
        self.calls.append((name, argv))
        return self.result


def context(tmp_path, helpers=None, **overrides):
    paths = {name: str(tmp_path / name) for name in ("run_dir", "log_dir", "lib_dir", "spool_dir",
                                                     "cache_dir", "tls_dir")}
    fields = {"squid_config": str(tmp_path / "etc" / "squid.conf"),
              "squid_default_config": f"{REPO}/container/squid.conf.default", **paths}
    settings = Settings(**{**fields, **overrides})
    return validators.Context(settings, helpers or Helpers(), Logger("ERROR"), uid=4321, gid=0)


def facts(tmp_path, **fields):
    defaults = dict(path=str(tmp_path / "squid.conf"), ports=(3128,), pid_file=None,
                    cache_dirs=(), ssl_bump=False, certificate_db=None,
                    run_path=str(tmp_path / "squid.conf"))
    return squidconf.SquidConfig(**{**defaults, **fields})


# -- config ------------------------------------------------------------------------
def layer_for(tmp_path, text=None, **settings):
    """Render the container layer around a mounted config ``text`` (None: the
    default), with these settings; return (facts, the rendered text)."""
    if text is not None:
        (tmp_path / "etc").mkdir(exist_ok=True)
        (tmp_path / "etc" / "squid.conf").write_text(text)
    ctx = context(tmp_path, **settings)
    found = config.render(ctx, config.locate(ctx))
    with open(found.run_path) as file:
        return found, file.read()


def test_without_a_mounted_config_the_default_runs_inside_the_layer_beside_the_old(tmp_path):
    ctx = context(tmp_path)
    found = config.render(ctx, config.locate(ctx))
    assert found.run_path == f"{tmp_path}/run_dir/squid.conf.new"
    assert found.path == f"{REPO}/container/squid.conf.default"
    parsed = config.put_in_place(config.parse(ctx, found))
    assert parsed.run_path == f"{tmp_path}/run_dir/squid.conf"
    assert os.path.exists(parsed.run_path) and not os.path.exists(found.run_path)
    assert ctx.run_helper.calls[0][1][-4:] == ["-k", "parse", "-f", found.run_path]
    assert parsed.ports == (3128,) and parsed.pid_file == f"{tmp_path}/run_dir/squid.pid"


def test_a_mounted_config_is_included_by_the_layer_and_named_as_itself(tmp_path):
    found, text = layer_for(tmp_path, "http_port 3999\n")
    assert found.path == f"{tmp_path}/etc/squid.conf"
    assert f"include {tmp_path}/etc/squid.conf\n" in text
    assert found.ports == (3999,)


def test_a_config_that_sets_nothing_gets_every_container_default(tmp_path):
    found, text = layer_for(tmp_path, "http_port 3128\nhttp_access allow localhost\n"
                                      "http_access deny all\n")
    assert found.pid_file == f"{tmp_path}/run_dir/squid.pid"
    settings = {d.name: d.args for d in found.directives}
    assert settings["cache_log"] == ("/dev/stderr",)
    assert settings["pinger_enable"] == ("off",)
    assert settings["max_filedescriptors"] == ("1024",)
    assert settings["shutdown_lifetime"] == ("23", "seconds")  # SHUTDOWN_TIMEOUT 30
    assert settings["coredump_dir"] == (f"{tmp_path}/spool_dir",)
    assert text.rstrip().endswith("access_log stdio:/dev/stdout")


def test_with_log_format_json_the_layer_logs_requests_in_the_relay_s_format(tmp_path):
    from cephaloinit import squidlog

    _, text = layer_for(tmp_path, "http_port 3128\n", log_format="json")
    assert text.rstrip().endswith(f"{squidlog.ACCESS_LOGFORMAT}\n"
                                  f"access_log stdio:/dev/stdout {squidlog.ACCESS_LOGFORMAT_NAME}")
    assert "access_log stdio:/dev/stdout\n" not in text


def test_with_log_format_json_a_users_access_log_is_left_alone(tmp_path):
    found, text = layer_for(tmp_path, "http_port 3128\nlogformat mine %ts %ru\n"
                            "access_log stdio:/dev/stdout mine\n", log_format="json")
    assert "cephaloproxy" not in text.replace("cephaloinit", "")
    assert [d.args for d in found.named("access_log")] == [("stdio:/dev/stdout", "mine")]


def test_a_config_that_sets_everything_keeps_its_own_values(tmp_path):
    found, text = layer_for(tmp_path, """\
http_port 3128
pid_filename /srv/squid.pid
cache_log /srv/cache.log
access_log daemon:/srv/access.log squid
max_filedescriptors 8192
shutdown_lifetime 3 seconds
coredump_dir /srv
pinger_enable on
""")
    assert found.pid_file == "/srv/squid.pid"
    last = {d.name: d.args for d in found.directives}  # the last value, as Squid keeps it
    assert last["cache_log"] == ("/srv/cache.log",)
    assert last["max_filedescriptors"] == ("8192",)
    assert last["shutdown_lifetime"] == ("3", "seconds")
    assert last["pinger_enable"] == ("on",)
    assert "access_log stdio:/dev/stdout" not in text  # theirs only, not twice


def test_a_config_that_sets_some_keeps_those_and_gets_the_rest(tmp_path):
    found, text = layer_for(tmp_path, "http_port 3128\naccess_log none\nmax_filedescriptors 4096\n")
    last = {d.name: d.args for d in found.directives}
    assert last["max_filedescriptors"] == ("4096",)
    assert last["cache_log"] == ("/dev/stderr",)
    assert found.pid_file == f"{tmp_path}/run_dir/squid.pid"
    assert "access_log stdio:/dev/stdout" not in text


def test_a_missing_default_template_names_it_and_the_fix(tmp_path):
    ctx = context(tmp_path, squid_default_config=str(tmp_path / "nope.conf"))
    with pytest.raises(Fatal, match=f"Cannot read the default Squid configuration {tmp_path}/nope.conf: "
                                    "No such file or directory; mount a squid.conf at"):
        config.locate(ctx)


def test_an_unreadable_config_names_the_path(tmp_path):
    (tmp_path / "etc").mkdir()
    os.symlink(tmp_path / "missing-target", tmp_path / "etc" / "squid.conf")
    with pytest.raises(Fatal, match=r"Cannot read Squid configuration .*/etc/squid.conf: No such file"):
        config.locate(context(tmp_path))


def test_a_rejected_config_quotes_squids_problem_lines_only(tmp_path):
    output = ["2026/11/27| Processing: http_port 3128", "2026/11/27| Processing: acl x src all",
              "2026/11/27| FATAL: Bungled squid.conf line 3: bogus", "2026/11/27| Squid Cache: Terminated abnormally."]
    ctx = context(tmp_path, Helpers(1, output))
    with pytest.raises(Fatal) as raised:
        config.parse(ctx, config.render(ctx, config.locate(ctx)))
    message = str(raised.value)
    assert "is invalid: 2026/11/27| FATAL: Bungled squid.conf line 3: bogus | " in message
    assert "Processing" not in message


def test_problem_lines_fall_back_to_the_last_lines():
    assert config.problem_lines(["a", "b", "c", "d", "e", "f"]) == ["b", "c", "d", "e", "f"]


# -- directories ---------------------------------------------------------------------
def test_directories_are_created_and_a_stale_pid_file_removed(tmp_path):
    pid_file = tmp_path / "pids" / "squid.pid"
    pid_file.parent.mkdir()
    pid_file.write_text("12\n")
    ctx = context(tmp_path)
    named = (squidconf.Directive("pid_filename", (str(pid_file),), "/etc/squid.conf", 1),
             squidconf.Directive("cache_dir", ("ufs", str(tmp_path / "c1"), "100", "16", "256"),
                                 "/etc/squid.conf", 2))
    directories.check(ctx, facts(tmp_path, pid_file=str(pid_file), directives=named))
    for name in ("run_dir", "log_dir", "lib_dir", "spool_dir", "cache_dir", "c1"):
        assert (tmp_path / name).is_dir()
    assert not pid_file.exists()


def test_a_directory_that_cannot_be_created_names_path_uid_and_fix(tmp_path):
    (tmp_path / "lib_dir").write_text("a file, not a directory")
    with pytest.raises(Fatal) as raised:
        directories.check(context(tmp_path), facts(tmp_path))
    assert str(raised.value).startswith(f"Cannot create directory {tmp_path}/lib_dir as UID 4321 (GID 0): ")
    assert "group 0 and group-writable" in str(raised.value)


def test_runtime_directories_are_ours_then_each_directory_the_config_names_once(tmp_path):
    ctx = context(tmp_path)
    run_path = str(tmp_path / "run.conf")

    def named(name, *args, file="/etc/squid/squid.conf", line=1):
        return squidconf.Directive(name, args, file, line)

    every = (
        named("cache_log", "/first/cache.log", line=1),  # its place is that of the first one
        named("pid_filename", "/first/squid.pid", line=1),
        named("pid_filename", "/pids/squid.pid", line=2),  # Squid keeps the last one
        named("access_log", "stdio:/logs/a/access.log", line=3),
        named("access_log", "daemon:/logs/b/access.log", line=4),
        named("access_log", "/logs/c/access.log", "squid", line=5),
        named("access_log", "none", line=6),
        named("access_log", "/dev/stdout", line=7),
        named("access_log", "syslog:local4", line=8),
        named("access_log", "tcp://10.0.0.1:514", line=9),
        named("access_log", "logs/relative.log", line=10),
        named("access_log", "stdio:/logs/a/other.log", line=11),  # a directory named twice
        named("access_log"),
        named("cache_dir", "ufs"),
        named("cache_dir", "rock", "/cache/rock", "100", line=12),
        named("cache_dir", "ufs", str(tmp_path / "log_dir"), "100", "16", "256", line=13),
        named("cache_log", "/logs/cache/cache.log", line=14),
        named("cache_store_log", "none", line=15),
        named("cache_store_log", "stdio:/logs/store/store.log", file=run_path, line=16),
        named("coredump_dir", "/somewhere/else", line=17),
    )
    wanted = directories.runtime_directories(ctx, facts(tmp_path, directives=every, run_path=run_path))
    assert wanted == [
        *[(str(tmp_path / name), "") for name in ("run_dir", "log_dir", "lib_dir", "spool_dir",
                                                  "cache_dir")],
        ("/logs/a", "access_log, /etc/squid/squid.conf line 3"),
        ("/logs/b", "access_log, /etc/squid/squid.conf line 4"),
        ("/logs/c", "access_log, /etc/squid/squid.conf line 5"),
        ("/cache/rock", "cache_dir, /etc/squid/squid.conf line 12"),
        ("/logs/cache", "cache_log, /etc/squid/squid.conf line 14"),
        ("/pids", "pid_filename, /etc/squid/squid.conf line 2"),
        ("/logs/store", ""),  # named by the container layer, not by the user
    ]


def test_runtime_directories_leave_out_a_pid_file_or_log_set_to_none(tmp_path):
    every = tuple(squidconf.Directive(name, ("none",), "/etc/squid/squid.conf", line)
                  for line, name in enumerate(("pid_filename", "cache_log", "cache_store_log"), 1))
    wanted = directories.runtime_directories(context(tmp_path), facts(tmp_path, directives=every))
    assert [named_by for _, named_by in wanted] == [""] * 5


# -- tls -------------------------------------------------------------------------------
needs_openssl = pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")


def make_pair(directory, name="tls"):
    directory.mkdir(exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=test", "-keyout", f"{directory}/{name}.key",
                    "-out", f"{directory}/{name}.crt"], check=True, capture_output=True)


def test_without_ssl_bump_no_certificate_is_needed(tmp_path):
    assert tls.check(context(tmp_path), facts(tmp_path)) is None


def test_a_missing_certificate_names_the_path(tmp_path):
    with pytest.raises(Fatal, match=f"the CA certificate {tmp_path}/tls_dir/tls.crt is missing"):
        tls.check(context(tmp_path), facts(tmp_path, ssl_bump=True))


@needs_openssl
def test_a_certificate_that_is_not_pem_is_refused(tmp_path):
    make_pair(tmp_path / "tls_dir")
    (tmp_path / "tls_dir" / "tls.crt").write_bytes(b"\x30\x82binary DER")
    with pytest.raises(Fatal, match="is not in PEM format"):
        tls.check(context(tmp_path), facts(tmp_path, ssl_bump=True))


@needs_openssl
def test_a_valid_pair_is_merged_0600_and_the_database_initialised(tmp_path):
    make_pair(tmp_path / "tls_dir")
    (tmp_path / "lib_dir").mkdir()
    helpers = Helpers()
    merged = tls.check(context(tmp_path, helpers), facts(tmp_path, ssl_bump=True))
    assert merged == f"{tmp_path}/lib_dir/squid-ca.pem"
    assert os.stat(merged).st_mode & 0o777 == 0o600
    content = open(merged, "rb").read()
    assert content.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE KEY-----" in content
    assert helpers.calls[0][1][-4:] == ["-s", f"{tmp_path}/lib_dir/ssl_db", "-M", "4MB"]
    assert os.listdir(tmp_path / "lib_dir") == ["squid-ca.pem"]  # no temporary left behind


@needs_openssl
def test_a_mismatched_key_is_refused_without_its_content(tmp_path):
    make_pair(tmp_path / "tls_dir")
    make_pair(tmp_path / "tls_dir", "other")
    os.replace(tmp_path / "tls_dir" / "other.key", tmp_path / "tls_dir" / "tls.key")
    key = (tmp_path / "tls_dir" / "tls.key").read_text()
    (tmp_path / "lib_dir").mkdir()
    with pytest.raises(Fatal) as raised:
        tls.check(context(tmp_path), facts(tmp_path, ssl_bump=True))
    assert "cannot be used together: they do not match" in str(raised.value)
    assert os.listdir(tmp_path / "lib_dir") == []  # the refused pair was never put in place
    body = "".join(line for line in key.splitlines() if "-----" not in line)
    assert body[:20] not in str(raised.value)


@needs_openssl
def test_a_failing_certgen_is_reported(tmp_path):
    make_pair(tmp_path / "tls_dir")
    (tmp_path / "lib_dir").mkdir()
    with pytest.raises(Fatal, match="Cannot initialise the certificate database .*: boom"):
        tls.check(context(tmp_path, Helpers(1, ["boom"])), facts(tmp_path, ssl_bump=True))


def test_merge_failure_leaves_no_temporary_and_names_the_file(tmp_path):
    with pytest.raises(Fatal, match=f"Cannot write {tmp_path}/absent/squid-ca.pem"):
        tls.merge(str(tmp_path / "absent"), b"cert", b"key")


# -- cache ------------------------------------------------------------------------------
def test_cache_dirs_are_initialised_only_when_missing(tmp_path):
    ufs = squidconf.CacheDir("ufs", str(tmp_path / "ufs"))
    rock = squidconf.CacheDir("rock", str(tmp_path / "rock"))
    helpers = Helpers()
    (tmp_path / "run_dir").mkdir()
    cache.check(context(tmp_path, helpers), facts(tmp_path, cache_dirs=(ufs, rock)))
    assert [name for name, _ in helpers.calls] == ["squid -z"]
    # without the pid file, so that it also runs beside a live Squid (a reload)
    swap_config = helpers.calls[0][1][-1]
    assert open(swap_config).read() == f"include {tmp_path}/squid.conf\npid_filename none\n"
    (tmp_path / "ufs" / "00").mkdir(parents=True)
    (tmp_path / "rock").mkdir()
    (tmp_path / "rock" / "rock").write_text("")
    helpers.calls.clear()
    cache.check(context(tmp_path, helpers), facts(tmp_path, cache_dirs=(ufs, rock)))
    assert helpers.calls == []


def test_a_dry_run_initialises_no_cache_dir(tmp_path):
    ufs = squidconf.CacheDir("ufs", str(tmp_path / "ufs"))
    helpers = Helpers()
    ctx = context(tmp_path, helpers)._replace(scratch_dir=str(tmp_path / "scratch"))
    cache.check(ctx, facts(tmp_path, cache_dirs=(ufs,)))
    assert helpers.calls == []


def test_a_failing_squid_z_is_reported(tmp_path):
    ufs = squidconf.CacheDir("ufs", str(tmp_path / "ufs"))
    (tmp_path / "run_dir").mkdir()
    with pytest.raises(Fatal, match="Cannot initialise the cache directories .*: no space"):
        cache.check(context(tmp_path, Helpers(1, ["no space"])), facts(tmp_path, cache_dirs=(ufs,)))


def test_the_upstream_images_ssl_cert_mount_is_used_when_tls_dir_is_left_at_its_default(
        tmp_path, monkeypatch):
    upstream = tmp_path / "ssl_cert"
    upstream.mkdir()
    (upstream / "tls.crt").write_text("")
    monkeypatch.setattr(tls, "UPSTREAM_TLS_DIR", str(upstream))
    assert tls.tls_dir(Settings()) == str(upstream)
    # A TLS_DIR of one's own is used as it is.
    assert tls.tls_dir(Settings(tls_dir=str(tmp_path / "mine"))) == str(tmp_path / "mine")
