import os

from cephaloinit import procfs

from .. import proctree

STAT = "1234 (odd) name (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5 1000 50\n"


def test_stat_with_spaces_and_parentheses_in_the_command_name():
    assert procfs.parse_stat(STAT) == procfs.Stat(pid=1234, comm="odd) name (x)", state="S", ppid=1)


def test_status_fields():
    fields = procfs.parse_status("Name:\tsquid\nState:\tZ (zombie)\nPPid:\t1\n"
                                 "voluntary_ctxt_switches:\t42\n")
    assert fields["State"] == "Z (zombie)"
    assert fields["voluntary_ctxt_switches"] == "42"


def fake_proc(tmp_path, processes):
    for pid, comm, state, ppid in processes:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({comm}) {state} {ppid} 0 0\n")
    (tmp_path / "self").mkdir()  # non-numeric entries are ignored
    return str(tmp_path)


def test_children_zombies_and_descendants(tmp_path):
    proc = fake_proc(tmp_path, [
        (1, "init", "S", 0), (10, "squid", "S", 1), (11, "dead", "Z", 1),
        (20, "helper", "S", 10), (30, "deep", "R", 20), (40, "elsewhere", "S", 2),
    ])
    assert sorted(s.pid for s in procfs.children(1, proc)) == [10, 11]
    assert [s.pid for s in proctree.zombie_children(1, proc)] == [11]
    assert sorted(procfs.descendants(1, proc)) == [10, 11, 20, 30]
    assert procfs.descendants(30, proc) == []


def test_alive_means_present_and_not_a_zombie(tmp_path):
    proc = fake_proc(tmp_path, [(5, "live", "S", 1), (6, "zombie", "Z", 1)])
    assert proctree.is_alive(5, proc)
    assert not proctree.is_alive(6, proc)
    assert not proctree.is_alive(7, proc)


def test_the_real_proc_knows_this_process():
    me = procfs.stat(os.getpid())
    assert me.ppid == os.getppid()
    assert proctree.is_alive(os.getpid())
    assert "voluntary_ctxt_switches" in procfs.status(os.getpid())
