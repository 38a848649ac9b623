"""``cephaloinit exec``'s command line: options, usage, errors (docs/exec.md)."""

import os
import signal
import subprocess
import sys

import pytest

from cephaloinit import __version__, execinit
from cephaloinit.errors import Fatal
from cephaloinit.execinit import Options, parse
from cephaloinit.settings import Settings, load

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cephaloinit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cephaloinit", *args], capture_output=True,
                          text=True, timeout=30, cwd=REPO,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": REPO, **(env or {})})


def request(*args, env=None):
    settings, warnings = load(env or {})
    assert warnings == []
    return parse(list(args), settings)


# -- parsing ----------------------------------------------------------------------------

def test_without_options_everything_after_double_dash_is_the_command():
    assert request("--", "ls", "-l", "--", "x") == (Options(), ["ls", "-l", "--", "x"], None)


def test_options_end_at_the_first_word_that_is_not_one():
    assert request("sh", "-c", "exit 3").command == ["sh", "-c", "exit 3"]
    assert request("-g", "sh", "-g").command == ["sh", "-g"]


def test_after_double_dash_an_option_like_word_is_the_command():
    assert request("--", "--yolo").command == ["--yolo"]


@pytest.mark.parametrize("args, options", [
    (["-g"], Options(signal_group=True)),
    (["--process-group"], Options(signal_group=True)),
    (["--relay-output"], Options(relay_output=True)),
    (["-w"], Options(warn_on_reap=True)),
    (["--warn-on-reap"], Options(warn_on_reap=True)),
    (["-p", "SIGTERM"], Options(parent_death_signal=signal.SIGTERM)),
    (["-p", "kill"], Options(parent_death_signal=signal.SIGKILL)),
    (["--parent-death-signal=15"], Options(parent_death_signal=signal.SIGTERM)),
    (["-e", "3", "--success-exit-code", "143", "-e", "3"], Options(success_codes=frozenset({3, 143}))),
])
def test_each_option_sets_what_it_names(args, options):
    assert request(*args, "--", "true") == (options, ["true"], None)


@pytest.mark.parametrize("variable, options", [
    ("EXEC_SIGNAL_GROUP", Options(signal_group=True)),
    ("EXEC_RELAY_OUTPUT", Options(relay_output=True)),
])
def test_the_environment_switches_options_on(variable, options):
    assert request("true", env={variable: "1"}).options == options
    assert request("true", env={variable: "0"}).options == Options()


def test_an_invalid_environment_value_is_one_warning_and_the_default():
    settings, warnings = load({"EXEC_SIGNAL_GROUP": "maybe"})
    found = parse(["true"], settings)
    assert found.options == Options()
    assert warnings == ["Invalid EXEC_SIGNAL_GROUP='maybe': expected 1 or 0; using the default 0"]


@pytest.mark.parametrize("args, message", [
    (["--yolo", "true"], "cephaloinit exec: unknown option '--yolo'; run 'cephaloinit exec --help' "
                         "for the options, or put '--' before CMD"),
    (["-g=1", "true"], "cephaloinit exec: unknown option '-g=1'; run 'cephaloinit exec --help' "
                       "for the options, or put '--' before CMD"),
    (["-p", "SIGNOPE", "true"], "cephaloinit exec: -p 'SIGNOPE': expected a signal name such as "
                                "SIGTERM, or its number"),
    (["-p"], "cephaloinit exec: -p needs a value: a signal name such as SIGTERM, or its number"),
    (["-e", "256", "true"], "cephaloinit exec: -e '256': expected an exit code 0-255"),
    (["-e", "\u0661", "true"], "cephaloinit exec: -e '\u0661': expected an exit code 0-255"),
    (["-p", "\u0661\u0665", "true"], "cephaloinit exec: -p '\u0661\u0665': expected a signal "
                                     "name such as SIGTERM, or its number"),
    (["--success-exit-code=-1", "true"], "cephaloinit exec: --success-exit-code '-1': expected an "
                                         "exit code 0-255"),
    (["-g"], "cephaloinit exec: no command given; usage: cephaloinit exec [OPTIONS] -- CMD [ARG...]"),
])
def test_a_bad_command_line_is_fatal_with_a_message_naming_it(args, message):
    with pytest.raises(Fatal) as raised:
        parse(args, Settings())
    assert str(raised.value) == message and raised.value.code == 1


def test_help_and_version_are_requests_to_print():
    assert request("-h", "--yolo").say == execinit.USAGE
    assert request("--help").say == execinit.USAGE
    assert request("--version").say == f"cephaloinit {__version__}\n"


# -- as a user meets it -----------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_goes_to_stdout_and_exits_0(flag):
    result = cephaloinit("exec", flag)
    assert (result.returncode, result.stdout, result.stderr) == (0, execinit.USAGE, "")
    for option in ("--process-group", "--relay-output", "--parent-death-signal",
                   "--warn-on-reap", "--success-exit-code", "EXEC_SIGNAL_GROUP", "EXEC_RELAY_OUTPUT"):
        assert option in result.stdout


def test_version_goes_to_stdout_and_exits_0():
    result = cephaloinit("exec", "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"cephaloinit {__version__}\n", "")


def test_an_unknown_option_is_one_line_on_stderr_exit_1_and_nothing_is_run():
    result = cephaloinit("exec", "--yolo", "echo", "ran")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "unknown option '--yolo'" in result.stderr


def test_a_command_not_found_exits_127_with_one_line_on_stderr():
    result = cephaloinit("exec", "--", "/nonexistent/cmd")
    assert result.returncode == execinit.EXIT_NOT_FOUND == 127
    assert result.stderr.count("\n") == 1
    assert result.stderr.endswith(
        "[ERROR] cephaloinit exec: cannot run '/nonexistent/cmd': No such file or directory\n")


def test_a_directory_as_the_command_exits_126():
    result = cephaloinit("exec", "--", "/")
    assert result.returncode == execinit.EXIT_NOT_EXECUTABLE == 126
    assert "cannot run '/'" in result.stderr and "Traceback" not in result.stderr


def test_the_command_s_arguments_are_its_own_even_when_they_look_like_ours():
    result = cephaloinit("exec", "sh", "-c", "echo $0 $1", "-g", "--help")
    assert (result.returncode, result.stdout) == (0, "-g --help\n")
