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


def test_facts_leave_out_what_squid_itself_would_name_and_keep_the_last_value(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", """\
http_port
http_port 127.0.0.1:proxy
https_port 3443 ssl-bump tls-cert=/x.pem
pid_filename
pid_filename /run/a.pid
pid_filename /run/b.pid
cache_dir ufs
sslcrtd_program /usr/lib/squid/security_file_certgen -M 4MB -s
sslcrtd_program /usr/lib/squid/security_file_certgen -s /db/one
sslcrtd_program /usr/lib/squid/security_file_certgen -s /db/two -s /db/three
"""))
    assert config.ports == (3443,)
    assert config.ssl_bump is True
    assert config.pid_file == "/run/b.pid"
    assert config.cache_dirs == ()
    assert config.certificate_db == "/db/two"


def test_an_ssl_bump_rule_alone_means_bumping(tmp_path):
    assert squidconf.read_config(write(tmp_path / "c", "ssl_bump\n")).ssl_bump is True
    assert squidconf.read_config(write(tmp_path / "d", "http_port 3128 ssl-bumpy\n")).ssl_bump is False


def test_a_relative_pid_filename_is_refused_even_when_a_later_one_is_absolute(tmp_path):
    with pytest.raises(squidconf.ConfigError) as raised:
        squidconf.read_config(write(tmp_path / "c", "pid_filename none\npid_filename run/squid.pid\n"
                                    "pid_filename /run/squid.pid\n"))
    assert str(raised.value) == (f"{tmp_path}/c line 2: pid_filename run/squid.pid is not an absolute "
                                 "path; write it in full, e.g. /var/run/squid/squid.pid")


def test_facts_of_directives_already_read_are_taken_from_them_alone(tmp_path):
    every = (squidconf.Directive("http_port", ("3128",), "/x.conf", 1),)
    config = squidconf.read_config(str(tmp_path / "absent.conf"), every)
    assert config.ports == (3128,)
    assert config.directives == every
    assert (config.path, config.run_path) == (str(tmp_path / "absent.conf"),) * 2


def test_only_the_innermost_condition_selects_a_line_as_in_squid(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", """\
if false
if true
http_port 1
endif
http_port 2
else
http_port 3
if 1 = 2
http_port 4
else # a comment after else
http_port 5
endif
endif
"""))
    assert config.ports == (1, 3, 5)


def test_a_condition_inside_an_unselected_block_is_still_evaluated(tmp_path):
    with pytest.raises(squidconf.ConfigError) as raised:
        squidconf.read_config(write(tmp_path / "c", "if false\nif maybe\nendif\nendif\n"))
    assert str(raised.value) == (f"{tmp_path}/c line 2: cannot evaluate 'if maybe': Squid accepts "
                                 "true, false or INTEGER = INTEGER")


@pytest.mark.parametrize("text, message", [
    ("endif extra\n", "line 1: 'endif' without 'if'"),
    ("http_port 1\nelse\tx\n", "line 2: 'else' without 'if'"),
    ("if true\nendif\nendif\n", "line 3: 'endif' without 'if'"),
])
def test_else_and_endif_without_an_open_if_name_the_word_and_line(tmp_path, text, message):
    with pytest.raises(squidconf.ConfigError) as raised:
        squidconf.read_config(write(tmp_path / "c", text))
    assert str(raised.value) == f"{tmp_path}/c {message}"


def test_words_that_only_begin_like_a_statement_are_directives(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", "iffy 1\nelsewhere\nendif_x 2 # why\n"
                                         "include\ninclude # nothing to include\n"))
    assert [(d.name, d.args, d.line) for d in config.directives] == [
        ("iffy", ("1",), 1), ("elsewhere", (), 2), ("endif_x", ("2",), 3),
        ("include", (), 4), ("include", (), 5)]


def test_included_directives_name_their_own_file_and_line_in_order(tmp_path):
    write(tmp_path / "a.conf", "\nhttp_port 2\n")
    write(tmp_path / "b.conf", "http_port 3\n")
    main = write(tmp_path / "c", f"http_port 1\ninclude {tmp_path}/b.conf {tmp_path}/a.conf\n"
                                 "http_port 4 # the last\n")
    config = squidconf.read_config(main)
    assert [(d.args, d.file, d.line) for d in config.directives] == [
        (("1",), main, 1), (("3",), f"{tmp_path}/b.conf", 1), (("2",), f"{tmp_path}/a.conf", 2),
        (("4",), main, 3)]


def test_an_include_inside_an_unselected_block_is_not_read(tmp_path):
    config = squidconf.read_config(write(tmp_path / "c", "if false\ninclude /nonexistent.conf\n"
                                         "endif\nhttp_port 1\n"))
    assert config.ports == (1,)
