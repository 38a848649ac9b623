"""The squid.conf reader: Squid's own rules for comments, continuations,
macros, conditionals and includes, and the facts read from a config."""


import pytest

from cephaloinit import squidconf


def write(path, text):
    path.write_text(text)
    return str(path)


def test_facts_of_a_plain_config(tmp_path):
    config = squidconf.read_config(write(tmp_path / "squid.conf", """\
# http_port 9999 is a comment
http_port 3129
http_port 127.0.0.1:3130 name=second
http_port [::1]:3131
pid_filename /run/x/squid.pid
cache_dir ufs /cache/one 100 16 256
cache_dir rock /cache/two 100
"""))
    assert config.ports == (3129, 3130, 3131)
    assert config.pid_file == "/run/x/squid.pid"
    assert config.cache_dirs == (squidconf.CacheDir("ufs", "/cache/one"), squidconf.CacheDir("rock", "/cache/two"))
    assert config.ssl_bump is False
    assert config.certificate_db is None


def test_defaults_when_the_config_says_nothing(tmp_path):
    config = squidconf.read_config(write(tmp_path / "squid.conf", "http_access deny all\n"))
    assert config.ports == ()
    assert config.pid_file == squidconf.DEFAULT_PID_FILE
    assert config.cache_dirs == ()


def test_pid_filename_none(tmp_path):
    assert squidconf.read_config(write(tmp_path / "c", "pid_filename none\n")).pid_file is None


def test_ssl_bump_is_detected_from_directives_not_comments(tmp_path):
    commented = squidconf.read_config(write(tmp_path / "a", "# ssl_bump bump all\nhttp_port 3128\n"))
    assert commented.ssl_bump is False
    bumped = squidconf.read_config(write(tmp_path / "b", """\
http_port 3128 ssl-bump tls-cert=/x.pem
sslcrtd_program /usr/lib/squid/security_file_certgen -s /var/lib/squid/db -M 4MB
"""))
    assert bumped.ssl_bump is True
    assert bumped.certificate_db == "/var/lib/squid/db"


def test_includes_are_followed_and_continuations_joined(tmp_path):
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d" / "10-bump.conf", "ssl_bump bump all\n")
    write(tmp_path / "conf.d" / "20-port.conf", "http_port \\\n 4000\n")
    config = squidconf.read_config(write(tmp_path / "squid.conf",
                                     f"http_port 3128\ninclude {tmp_path}/conf.d/*.conf\n"))
    assert config.ports == (3128, 4000)
    assert config.ssl_bump is True


def test_include_loops_are_bounded(tmp_path):
    path = tmp_path / "loop.conf"
    write(path, f"include {path}\n")
    with pytest.raises(squidconf.ConfigError, match="nested more than"):
        squidconf.read_config(str(path))


def test_a_macro_in_pid_filename_is_expanded_as_squid_does(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", "pid_filename /run/${service_name}.pid\n"))
    assert config.pid_file == "/run/squid.pid"


def test_process_macros_are_those_of_a_single_non_smp_squid(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", "http_port 31${process_number}8\n"
                                         "cache_dir ufs /c/${process_name} 10 1 1\n"))
    assert config.ports == (3108,)
    assert config.cache_dirs == (squidconf.CacheDir("ufs", "/c/squid"),)


def test_conditionals_select_lines_like_squid(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", """\
if ${process_number} = 0
http_port 3001
else
http_port 3002
endif
if false
http_port 3003
endif
if 0x10 = 16
http_port 3004
endif
"""))
    assert config.ports == (3001, 3004)


@pytest.mark.parametrize("text, message", [
    ("if maybe\nendif\n", "line 1: cannot evaluate 'if maybe'"),
    ("endif\n", "line 1: 'endif' without 'if'"),
    ("else\n", "line 1: 'else' without 'if'"),
    ("if true\nhttp_port 1\n", "'if' without 'endif'"),
])
def test_broken_conditionals_are_named_with_their_line(tmp_path, text, message):
    with pytest.raises(squidconf.ConfigError, match=message):
        squidconf.read_config(write(tmp_path / "c", text))


def test_comments_inside_a_continued_line_are_skipped_and_indentation_dropped(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", "  http_port \\\n# a comment\n   3128\n"))
    assert config.ports == (3128,)
    assert config.directives[0].line == 1


def test_a_relative_include_is_refused(tmp_path, monkeypatch):
    """Squid resolves it from its working directory, which changes once it runs:
    valid at start-up, it would be missing at the next reload."""
    write(tmp_path / "extra.conf", "http_port 3999\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(squidconf.ConfigError, match="line 1: include extra.conf is a relative path"):
        squidconf.read_config(write(tmp_path / "c", "include extra.conf\n"))


def test_a_quoted_include_path_is_taken_as_squid_does(tmp_path):
    (tmp_path / "with space").mkdir()
    write(tmp_path / "with space" / "x.conf", "http_port 3999\n")
    config = squidconf.read_config(write(tmp_path / "c", f'include "{tmp_path}/with space/x.conf"\n'))
    assert config.ports == (3999,)


def test_octal_in_a_condition_is_read_as_strtol_reads_it(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", "if 010 = 8\nhttp_port 1\nendif\n"))
    assert config.ports == (1,)


def test_a_line_longer_than_squids_buffer_is_refused(tmp_path):
    """Squid would read its tail as a line of its own (an include behind a comment)."""
    with pytest.raises(squidconf.ConfigError, match="line 1 is longer than the 8191 bytes"):
        squidconf.read_config(write(tmp_path / "c", "#" + "x" * 8190 + "include /etc/x\n"))


def test_an_include_that_matches_nothing_is_named_with_its_line(tmp_path):
    with pytest.raises(squidconf.ConfigError, match="line 2: include /nonexistent/\\*.conf matches no file"):
        squidconf.read_config(write(tmp_path / "c", "http_port 1\ninclude /nonexistent/*.conf\n"))


def test_a_relative_pid_filename_is_refused(tmp_path):
    with pytest.raises(squidconf.ConfigError, match="pid_filename squid.pid is not an absolute path"):
        squidconf.read_config(write(tmp_path / "c", "pid_filename squid.pid\n"))
