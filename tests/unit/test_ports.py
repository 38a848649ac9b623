"""The tests' port picker: below the ephemeral range, never a held port."""

import socket

from tests import ports


def test_the_ephemeral_range_is_read_from_the_kernels_file(tmp_path):
    path = tmp_path / "ip_local_port_range"
    path.write_text("40000\t50000\n")
    assert ports.ephemeral_range(str(path)) == (40000, 50000)


def test_an_unreadable_range_file_gives_linuxs_default(tmp_path):
    assert ports.ephemeral_range(str(tmp_path / "missing")) == (32768, 60999)
    (tmp_path / "bad").write_text("many\n")
    assert ports.ephemeral_range(str(tmp_path / "bad")) == (32768, 60999)


def test_a_free_port_lies_outside_the_ephemeral_range_and_is_not_repeated():
    low, high = ports.ephemeral_range()
    chosen = [ports.free_port() for _ in range(20)]
    assert len(set(chosen)) == 20
    assert all(ports.LOWEST <= port and not low <= port <= high for port in chosen)


def test_the_larger_run_of_ports_outside_the_ephemeral_range_is_used():
    assert ports.outside_ephemeral(32768, 60999) == range(ports.LOWEST, 32768)  # Linux's default
    assert ports.outside_ephemeral(1024, 40000) == range(40001, 65536)  # a range that starts low
    assert len(ports.outside_ephemeral(1024, 65535)) == 0  # nothing left: free_port refuses


def test_a_port_held_on_the_loopback_address_is_not_bindable():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        assert not ports.bindable(held.getsockname()[1])
