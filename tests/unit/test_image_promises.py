"""container/image-promises.toml: the one statement of what the image
promises, which the build (assemble-rootfs.py) and verify-image both read."""

import os
import subprocess
import sys

import pytest

from cephaloinit.settings import Settings

from .test_image_build import CONTAINER, load


@pytest.fixture(scope="module")
def promises():
    return load("image_promises.py").load()


def test_writable_directories_are_the_supervisors_runtime_directories(promises):
    defaults = Settings()
    assert set(promises.writable_dirs) == {
        defaults.run_dir, defaults.log_dir, defaults.lib_dir, defaults.spool_dir, defaults.cache_dir,
    }
    assert promises.writable_mode == 0o775
    assert promises.tmp_mode == 0o1777


def test_the_user_is_the_dockerfiles_user_in_group_0(promises):
    with open(os.path.join(CONTAINER, "Dockerfile"), encoding="utf-8") as stream:
        users = [line.split()[1] for line in stream if line.startswith("USER ")]
    assert users == [promises.user]
    assert (promises.uid, promises.gid) == (1000, 0)


def test_every_program_the_build_ever_banned_is_forbidden_perl_included(promises):
    banned_at_build_time = {"sh", "bash", "dash", "busybox", "zsh", "ash", "ksh", "apt", "apt-get",
                            "dpkg", "pip", "pip3", "gcc", "cc", "g++", "c++", "ld", "as", "perl"}
    verified_before = {"mksh", "csh", "tcsh", "fish", "apt-cache", "dpkg-deb", "dpkg-query", "apk",
                       "yum", "dnf", "rpm", "microdnf", "clang", "ld.bfd", "ld.gold", "tcc", "cpp"}
    assert banned_at_build_time | verified_before <= promises.forbidden_names
    assert "python3" not in promises.forbidden_names


def test_the_shell_gets_the_writable_directories_one_a_line(promises):
    result = subprocess.run([sys.executable, os.path.join(CONTAINER, "image_promises.py"), "writable"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert tuple(result.stdout.splitlines()) == promises.writable_dirs
