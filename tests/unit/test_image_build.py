"""The image build's own logic (container/assemble-rootfs.py,
container/cross-sysroot.py), on this machine's files and on made-up ones."""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

CONTAINER = os.path.join(os.path.dirname(__file__), "..", "..", "container")


def load(filename: str):
    name = filename.replace("-", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, os.path.join(CONTAINER, filename))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses looks its module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.fixture(scope="module")
def assemble():
    return load("assemble-rootfs.py")


@pytest.fixture(scope="module")
def cross():
    return load("cross-sysroot.py")


def ldd(path: str) -> set[str]:
    output = subprocess.run(["ldd", path], capture_output=True, text=True, check=True, timeout=30).stdout
    return {os.path.realpath(word) for line in output.splitlines() for word in line.split() if word.startswith("/")}


@pytest.mark.skipif(not shutil.which("ldd"), reason="needs ldd")
def test_the_library_closure_read_from_elf_headers_is_what_ldd_resolves(assemble, tmp_path):
    python = os.path.realpath(sys.executable)
    rootfs = assemble.Rootfs(str(tmp_path / "rootfs"))
    found = assemble.shared_libraries(rootfs, python)
    assert {os.path.realpath(path) for path in found} == ldd(python)
    assert any(os.path.basename(path).startswith("ld-linux") for path in found)  # the loader too


def test_a_library_missing_from_the_sysroot_fails_the_build_naming_it(assemble, tmp_path):
    sysroot = tmp_path / "sysroot"
    (sysroot / "usr/bin").mkdir(parents=True)
    shutil.copy(os.path.realpath(sys.executable), sysroot / "usr/bin/python3")
    rootfs = assemble.Rootfs(str(tmp_path / "rootfs"), str(sysroot))
    with pytest.raises(SystemExit, match=r"/usr/bin/python3: lib\S+ => not found"):
        assemble.shared_libraries(rootfs, "/usr/bin/python3")


@pytest.mark.skipif(not shutil.which("gcc") or not shutil.which("ldd"), reason="needs gcc and ldd")
def test_an_origin_runpath_is_read_inside_the_sysroot(assemble, tmp_path):
    # $ORIGIN is the directory of the file in the image, not of its copy in
    # the sysroot: expanded from the latter, the sysroot came in twice.
    sysroot = tmp_path / "sysroot"
    (sysroot / "opt/app/bin").mkdir(parents=True)
    (sysroot / "opt/app/lib").mkdir(parents=True)
    (tmp_path / "demo.c").write_text("int demo(void) { return 0; }\n")
    (tmp_path / "main.c").write_text("int demo(void);\nint main(void) { return demo(); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", sysroot / "opt/app/lib/libdemo.so",
                    tmp_path / "demo.c"], check=True, timeout=60)
    subprocess.run(["gcc", "-o", sysroot / "opt/app/bin/demo", tmp_path / "main.c",
                    f"-L{sysroot}/opt/app/lib", "-ldemo", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"],
                   check=True, timeout=60)
    for library in ldd(sys.executable):  # libc and the loader, where the loader looks
        if os.path.basename(library).startswith(("libc.so", "ld-linux")):
            target = sysroot / os.path.relpath(os.path.dirname(library), "/")
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(library, target)
    rootfs = assemble.Rootfs(str(tmp_path / "rootfs"), str(sysroot))
    assert "/opt/app/bin/../lib/libdemo.so" in assemble.shared_libraries(rootfs, "/opt/app/bin/demo")


def test_a_sysroots_links_resolve_inside_it_and_alternatives_are_resolved(assemble, tmp_path):
    sysroot = tmp_path / "sysroot"
    (sysroot / "usr/sbin").mkdir(parents=True)
    (sysroot / "etc/alternatives").mkdir(parents=True)
    (sysroot / "usr/sbin/squid-openssl").write_text("the real one")
    os.symlink("/usr/sbin/squid-openssl", sysroot / "etc/alternatives/squid")
    os.symlink("/etc/alternatives/squid", sysroot / "usr/sbin/squid")
    rootfs = assemble.Rootfs(str(tmp_path / "rootfs"), str(sysroot))
    os.makedirs(rootfs.root)
    assert rootfs.realpath("/usr/sbin/squid") == "/usr/sbin/squid-openssl"
    assert rootfs.add("/usr/sbin/squid") == "/usr/sbin/squid-openssl"
    assert os.readlink(tmp_path / "rootfs/usr/sbin/squid") == "squid-openssl"
    assert (tmp_path / "rootfs/usr/sbin/squid-openssl").read_text() == "the real one"
    assert rootfs.copied == {"/usr/sbin/squid-openssl"}


def make_deb(directory, arch="arm64", multi_arch="same"):
    root = directory / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/lib").mkdir(parents=True)
    (root / "etc/demo.conf").write_text("setting = 1\n")
    (root / "usr/lib/libdemo.so.1").write_text("not really a library\n")
    (root / "DEBIAN/control").write_text(
        f"Package: demo\nVersion: 1.2-3\nArchitecture: {arch}\nMulti-Arch: {multi_arch}\n"
        "Maintainer: Nobody <nobody@example.org>\nSection: libs\nPriority: optional\n"
        "Description: a package for the test\n made up\n")
    (root / "DEBIAN/conffiles").write_text("/etc/demo.conf\n")
    (root / "DEBIAN/md5sums").write_text(
        "0123456789abcdef0123456789abcdef  usr/lib/libdemo.so.1\n")
    deb = directory / "demo.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   capture_output=True, check=True, timeout=60)
    return str(deb)


@pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="needs dpkg-deb (Debian)")
def test_an_unpacked_foreign_package_is_one_dpkg_query_knows_as_installed(cross, tmp_path):
    sysroot = tmp_path / "sysroot"
    (sysroot / "var/lib/dpkg/info").mkdir(parents=True)
    (sysroot / "var/lib/dpkg/info/format").write_text("1\n")
    (sysroot / "var/lib/dpkg/status").write_text("")
    cross.unpack(make_deb(tmp_path), str(sysroot), {("demo", "1.2-3"): {"Priority": "extra"}})

    assert (sysroot / "usr/lib/libdemo.so.1").read_text() == "not really a library\n"
    query = ["dpkg-query", "--admindir", str(sysroot / "var/lib/dpkg")]
    owner = subprocess.run([*query, "-S", "/usr/lib/libdemo.so.1"], capture_output=True, text=True, timeout=30)
    assert owner.stdout == "demo:arm64: /usr/lib/libdemo.so.1\n", owner.stderr
    status = subprocess.run([*query, "-s", "demo:arm64"], capture_output=True, text=True, timeout=30).stdout
    assert "Status: install ok installed\n" in status
    assert "Architecture: arm64\n" in status
    assert "Priority: extra\n" in status  # the archive's, not the .deb's
    conffile_md5 = hashlib.md5(b"setting = 1\n").hexdigest()
    assert f"Conffiles:\n /etc/demo.conf {conffile_md5}\n" in status
    assert (sysroot / "var/lib/dpkg/info/demo:arm64.md5sums").read_text().endswith("usr/lib/libdemo.so.1\n")
