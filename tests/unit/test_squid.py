import os
import re

import pytest

from cephaloinit import squid
from cephaloinit.settings import Settings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(path, text):
    path.write_text(text)
    return str(path)


def test_the_default_config_renders_every_placeholder(tmp_path):
    with open(f"{REPO}/container/squid.conf.default") as file:
        template = file.read()
    settings = Settings(squid_port=4128, squid_config=f"{tmp_path}/squid.conf",
                        run_dir="/r", spool_dir="/s", shutdown_timeout=30)
    text = squid.render_default_config(template, settings)
    assert re.search(r"@[A-Z_]+@", text) is None
    assert "http_port 4128" in text
    assert "pid_filename" not in text  # the container layer's, as for a mounted config
    assert f"# no {tmp_path}/conf.d/*.conf files" in text
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "blocklist.conf").write_text("acl blocked dstdomain .x\n")
    text = squid.render_default_config(template, settings)
    assert f"\ninclude {tmp_path}/conf.d/*.conf\n" in text


@pytest.mark.parametrize("timeout, lifetime", [(30, 23), (10, 7), (2, 1), (0.5, 1)])
def test_squids_grace_stays_inside_our_deadline(timeout, lifetime):
    assert squid.shutdown_lifetime(timeout) == lifetime
    assert lifetime < timeout or timeout < 2


TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0C38 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 0100007F:0C38 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  1000        0 2 1
   2: 0100007F:A1B2 0100007F:0C38 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0100007F:0C38 0100007F:A1B3 06 00000000:00000000 00:00000000 00000000     0        0 4 1
   4: 0100007F:1F90 0100007F:A1B4 01 00000000:00000000 00:00000000 00000000     0        0 5 1
"""


def fake_net(tmp_path, tcp=TCP, tcp6=None):
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(tcp)
    if tcp6 is not None:
        (tmp_path / "net" / "tcp6").write_text(tcp6)
    return str(tmp_path)


TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000001000000:0C38 00000000000000000000000001000000:B000 01 00000000:00000000 00:00000000 00000000  1000 0 9 1
"""


def test_established_connections_count_only_the_proxy_side(tmp_path):
    # 0x0C38 = 3128: row 1 is Squid's side; row 2 is the client's side (remote
    # port 3128), row 3 is TIME_WAIT, row 4 another port; tcp6 adds one.
    proc = fake_net(tmp_path, tcp6=TCP6)
    assert squid.established_connections((3128,), proc) == 2
    assert squid.established_connections((3128, 8080), proc) == 3
    assert squid.established_connections((9999,), proc) == 0


def test_without_proc_net_there_are_no_connections_and_no_listener(tmp_path):
    assert squid.established_connections((3128,), str(tmp_path)) == 0
    assert not squid.listening(3128, proc=str(tmp_path))


def test_listening_reads_proc_net(tmp_path):
    proc = fake_net(tmp_path)
    assert squid.listening(3128, proc=proc)
    assert not squid.listening(8080, proc=proc)  # established only, not LISTEN


def test_listening_can_require_the_socket_to_be_held_by_squid(tmp_path):
    proc = fake_net(tmp_path)  # the listener on 3128 has inode 1
    (tmp_path / "42" / "fd").mkdir(parents=True)
    os.symlink("socket:[1]", tmp_path / "42" / "fd" / "7")
    (tmp_path / "43" / "fd").mkdir(parents=True)
    os.symlink("socket:[2]", tmp_path / "43" / "fd" / "7")
    os.symlink("/dev/null", tmp_path / "43" / "fd" / "0")
    assert squid.listening(3128, pid=42, proc=proc)
    assert not squid.listening(3128, pid=43, proc=proc)  # someone else's listener
    assert not squid.listening(3128, pid=44, proc=proc)  # no such process


def test_command_lines():
    settings = Settings(squid_binary="/sq", squid_certgen="/cg")
    assert squid.run_command(settings, "/c") == ["/sq", "-N", "-f", "/c"]
    assert squid.parse_command(settings, "/c") == ["/sq", "-k", "parse", "-f", "/c"]
    assert squid.init_cache_command(settings, "/c") == ["/sq", "-N", "-z", "-f", "/c"]
    assert squid.certgen_init_command(settings, "/db") == ["/cg", "-c", "-s", "/db", "-M", "4MB"]


# -- squid -v ---------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.warnings = []

    def warning(self, message):
        self.warnings.append(message)


def run_version(result=None, error=None):
    from cephaloinit.errors import Fatal
    from cephaloinit.validators import HelperResult

    calls = []

    def run_helper(name, argv, timeout):
        calls.append(argv)
        if error:
            raise Fatal(error)
        return HelperResult(*result)

    log = Recorder()
    found = squid.version(run_helper, Settings(), log)
    return found, log.warnings, calls


def test_the_version_is_read_from_squid_v():
    found, warnings, calls = run_version((0, ["Squid Cache: Version 6.13", "Service Name: squid",
                                               "configure options:  '--prefix=/usr'"]))
    assert (found, warnings) == ("6.13", [])
    assert calls == [["/usr/sbin/squid", "-v"]]


@pytest.mark.parametrize("result, error, why", [
    (None, "Cannot run squid -v (/usr/sbin/squid): No such file or directory", "No such file"),
    (None, "squid -v did not finish within 5s", "did not finish"),
    ((1, ["FATAL: something"]), None, "exited with code 1"),
    ((0, ["no version here"]), None, "printed no version"),
])
def test_an_unknown_version_is_empty_with_one_warning(result, error, why):
    found, warnings, _ = run_version(result, error)
    assert found == "" and len(warnings) == 1
    assert warnings[0].startswith("Squid's version is unknown") and why in warnings[0]


@pytest.mark.skipif(not os.path.exists("/usr/sbin/squid"), reason="needs Squid")
def test_the_real_squid_v_is_parsed():
    import subprocess

    output = subprocess.run(["/usr/sbin/squid", "-v"], capture_output=True, text=True, timeout=10).stdout
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?\S*", squid.parse_version(output.splitlines()))
