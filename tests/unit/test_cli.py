"""The command line as a user meets it: one clear line and exit 1 on bad input."""

import json
import os
import subprocess
import sys

from cephaloinit import __version__

from ..statefiles import write_state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cephaloinit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cephaloinit", *args], capture_output=True,
                          text=True, timeout=30, cwd=REPO,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": REPO, **(env or {})})


def test_version():
    result = cephaloinit("--version")
    assert (result.returncode, result.stdout) == (0, f"cephaloinit {__version__}\n")


def test_help_lists_the_subcommands():
    result = cephaloinit("--help")
    assert result.returncode == 0
    for command in ("run", "validate", "status", "exec", "check"):
        assert f"cephaloinit {command}" in result.stdout or f"cephaloinit [{command}]" in result.stdout


def test_an_unknown_command_is_one_line_and_exit_1():
    result = cephaloinit("frobnicate")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "[ERROR] cephaloinit: unknown command 'frobnicate'; run 'cephaloinit --help'" in result.stderr


def test_exec_without_a_command_is_one_line_and_exit_1():
    result = cephaloinit("exec", "--")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no command given" in result.stderr


def test_status_prints_the_published_state(tmp_path):
    write_state(f"{tmp_path}/cephaloinit.state", {"state": "RUNNING", "squid_pid": 7, "extra": "x"})
    result = cephaloinit("status", env={"SQUID_RUN_DIR": str(tmp_path)})
    assert result.returncode == 0
    # What /status shows, read through the same parser: what the file lacks is null.
    assert json.loads(result.stdout) == {
        "state": "RUNNING", "ready": False, "reason": "", "supervisor_pid": None, "squid_pid": 7,
        "health_pid": None, "health_restarts": None, "squid_kid_restarts": None, "started_at": None,
        "state_since": None,
        "uptime_seconds": None, "version": None, "squid_version": None, "config": None,
        "squid_port": None, "ports": []}


def test_status_without_a_state_names_the_file(tmp_path):
    result = cephaloinit("status", env={"SQUID_RUN_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert f"No state published at {tmp_path}/cephaloinit.state" in result.stderr


def test_an_invalid_setting_warns_once_and_the_command_still_runs():
    result = cephaloinit("--version", env={"LOG_LEVEL": "chatty"})
    assert result.returncode == 0
    assert result.stdout.count("[WARNING] Invalid LOG_LEVEL='chatty'") == 1
