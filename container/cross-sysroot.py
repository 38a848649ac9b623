#!/usr/bin/env python3
"""Install another architecture's Debian packages into a directory, running none of their code.

usage: cross-sysroot.py --arch ARCH --sysroot DIR PACKAGE...

Runs in the builder stage of container/Dockerfile when the image is for
another architecture than the machine's (make image PLATFORM=linux/arm64), on
the machine's own architecture, after the builder installed the same packages
for itself. What would need emulation is not done, and what the image takes
from a package's maintainer scripts comes from the builder's own run of them:

  * apt, the builder's own, resolves PACKAGE... and their dependencies for
    ARCH from the builder's sources (the release, -updates, -security) and
    downloads them into DIR/var/cache/apt/archives;
  * each package is unpacked into DIR (dpkg-deb | tar), and recorded in
    DIR/var/lib/dpkg as dpkg records an installed package (status paragraph,
    PACKAGE.list, PACKAGE.md5sums), so that dpkg-query --admindir answers for
    it as for the builder's own packages (assemble-rootfs.py's package records);
  * no maintainer script runs: of what they make, the image takes the CA
    bundle (update-ca-certificates) and the alternatives links (squid ->
    squid-openssl), copied from the builder, which ran them for the same
    packages of the same release.

assemble-rootfs.py --sysroot DIR then builds the image's root filesystem from
DIR, and checks it by running it (under emulation: the only step that needs it).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile

# Merged /usr, as debootstrap makes it where base-files does not ship the
# links itself (bookworm); the loader of amd64 lives in /lib64.
MERGED_USR = ("bin", "sbin", "lib")
MERGED_USR_BY_ARCH = {"amd64": ("lib64",)}

# Made by maintainer scripts, independent of the architecture: taken from the builder.
GENERATED = {"/etc/ssl/certs/ca-certificates.crt": "ca-certificates"}


def say(text: str) -> None:
    print(f"cross-sysroot: {text}", flush=True)


def run(argv: list[str], **options) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, capture_output=True, **options)
    if result.returncode != 0:
        error = result.stderr if isinstance(result.stderr, str) else result.stderr.decode(errors="replace")
        raise SystemExit(f"cross-sysroot: {' '.join(argv[:4])} ... failed ({result.returncode}):\n{error}")
    return result


def apt_options(arch: str, sysroot: str) -> list[str]:
    """apt-get for ARCH, with its state and cache in SYSROOT, not the builder's."""
    return [
        "-o", f"APT::Architecture={arch}",
        "-o", f"APT::Architectures={arch}",
        "-o", f"Dir::State={sysroot}/var/lib/apt",
        "-o", f"Dir::State::status={sysroot}/var/lib/dpkg/status",
        "-o", f"Dir::Cache={sysroot}/var/cache/apt",
        "-o", "Acquire::Languages=none",
        "-o", "APT::Sandbox::User=root",
    ]


def download(arch: str, sysroot: str, packages: list[str]) -> list[str]:
    for directory in ("var/lib/dpkg/info", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
        os.makedirs(os.path.join(sysroot, directory), exist_ok=True)
    open(os.path.join(sysroot, "var/lib/dpkg/status"), "a").close()
    # The multiarch layout of info/ (PACKAGE:ARCH.list for Multi-Arch: same), as dpkg's own.
    with open(os.path.join(sysroot, "var/lib/dpkg/info/format"), "w", encoding="utf-8") as stream:
        stream.write("1\n")
    options = apt_options(arch, sysroot)
    run(["apt-get", *options, "update", "-qq"], text=True)
    run(["apt-get", *options, "install", "-y", "-qq", "--download-only", "--no-install-recommends", *packages],
        text=True)
    archives = os.path.join(sysroot, "var/cache/apt/archives")
    return sorted(os.path.join(archives, name) for name in os.listdir(archives) if name.endswith(".deb"))


def control(deb: str) -> tuple[str, dict[str, str]]:
    """The control paragraph and the other control members (md5sums, conffiles) of DEB."""
    fields = run(["dpkg-deb", "--field", deb], text=True).stdout
    members = {}
    tar = run(["dpkg-deb", "--ctrl-tarfile", deb]).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        for member in archive:
            name = os.path.basename(member.name)
            if member.isfile() and name in ("md5sums", "conffiles"):
                members[name] = archive.extractfile(member).read().decode("utf-8")
    return fields, members


def field(paragraph: str, name: str) -> str:
    for line in paragraph.splitlines():
        if line.startswith(name + ":"):
            return line.partition(":")[2].strip()
    return ""


def archive_overrides(arch: str, sysroot: str, packages: list[str]) -> dict[tuple[str, str], dict[str, str]]:
    """(package, version) -> Priority and Section as the archive's index has
    them. They may differ from the .deb's own (zlib1g: required in the .deb,
    optional in the index), and the index's are what dpkg's records of the
    base's packages say, as debootstrap installed them."""
    output = run(["apt-cache", *apt_options(arch, sysroot), "show", *packages], text=True).stdout
    overrides = {}
    for paragraph in output.split("\n\n"):
        key = (field(paragraph, "Package"), field(paragraph, "Version"))
        overrides[key] = {name: field(paragraph, name) for name in ("Priority", "Section") if field(paragraph, name)}
    return overrides


def unpack(deb: str, sysroot: str, overrides: dict[tuple[str, str], dict[str, str]]) -> None:
    """Unpack DEB into SYSROOT and record it in SYSROOT's dpkg database."""
    paragraph, members = control(deb)
    package, arch = field(paragraph, "Package"), field(paragraph, "Architecture")
    data = run(["dpkg-deb", "--fsys-tarfile", deb]).stdout
    # --keep-directory-symlink: /lib is usr/lib, and stays so.
    run(["tar", "-x", "--keep-directory-symlink", "-C", sysroot], input=data)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        paths = ["/" + member.name.removeprefix("./").rstrip("/") for member in archive]
    paths = ["/." if path == "/" else path for path in paths]

    # dpkg names the files of a Multi-Arch: same package PACKAGE:ARCH.
    info = package + (f":{arch}" if field(paragraph, "Multi-Arch") == "same" else "")
    info_dir = os.path.join(sysroot, "var/lib/dpkg/info")
    with open(os.path.join(info_dir, f"{info}.list"), "w", encoding="utf-8") as stream:
        stream.write("".join(f"{path}\n" for path in paths))
    if "md5sums" in members:
        with open(os.path.join(info_dir, f"{info}.md5sums"), "w", encoding="utf-8") as stream:
            stream.write(members["md5sums"])

    lines = paragraph.rstrip("\n").split("\n")
    for name, value in overrides.get((package, field(paragraph, "Version")), {}).items():
        lines = [f"{name}: {value}" if line.startswith(name + ":") else line for line in lines]
    lines.insert(1, "Status: install ok installed")
    conffiles = [line.strip() for line in members.get("conffiles", "").splitlines() if line.strip()]
    if conffiles:
        lines.append("Conffiles:")
        for path in conffiles:
            with open(sysroot + path, "rb") as stream:
                lines.append(f" {path} {hashlib.md5(stream.read()).hexdigest()}")
    with open(os.path.join(sysroot, "var/lib/dpkg/status"), "a", encoding="utf-8") as stream:
        stream.write("\n".join(lines) + "\n\n")


def builder_version(package: str, admindir: str = "/var/lib/dpkg") -> str:
    return subprocess.run(
        ["dpkg-query", "--admindir", admindir, "-W", "-f", "${Version}", package],
        capture_output=True, text=True,
    ).stdout


def take_from_builder(sysroot: str) -> None:
    """What the builder's maintainer scripts made that the image uses."""
    # update-alternatives' links: LINK -> /etc/alternatives/NAME -> the choice,
    # for each alternative whose choice the target has too.
    alternatives = "/etc/alternatives"
    os.makedirs(sysroot + alternatives, exist_ok=True)
    for name in sorted(os.listdir("/var/lib/dpkg/alternatives")):
        with open(os.path.join("/var/lib/dpkg/alternatives", name), encoding="utf-8") as stream:
            link = stream.read().split("\n")[1]  # the administrative file: mode, then the link
        choice = os.readlink(os.path.join(alternatives, name))
        if not os.path.lexists(sysroot + choice) or os.path.lexists(sysroot + link):
            continue
        os.symlink(choice, f"{sysroot}{alternatives}/{name}")
        os.symlink(f"{alternatives}/{name}", sysroot + link)
    for path, package in GENERATED.items():
        ours, theirs = builder_version(package), builder_version(package, f"{sysroot}/var/lib/dpkg")
        if not theirs:
            continue
        if ours != theirs:
            raise SystemExit(f"cross-sysroot: {path}: the builder has {package} {ours}, the target {theirs}")
        with open(path, "rb") as source, open(sysroot + path, "wb") as target:
            target.write(source.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="Debian architecture: arm64, amd64, ...")
    parser.add_argument("--sysroot", required=True, help="the directory to fill (must not exist)")
    parser.add_argument("packages", nargs="+")
    args = parser.parse_args()
    sysroot = os.path.abspath(args.sysroot)
    os.makedirs(sysroot)

    debs = download(args.arch, sysroot, args.packages)
    say(f"{len(debs)} packages for {args.arch} downloaded")
    names = sorted({os.path.basename(deb).split("_")[0] for deb in debs})
    overrides = archive_overrides(args.arch, sysroot, names)
    # base-files first: on trixie it ships the merged-/usr links.
    debs.sort(key=lambda deb: not os.path.basename(deb).startswith("base-files_"))
    unpack(debs[0], sysroot, overrides)
    for top in MERGED_USR + MERGED_USR_BY_ARCH.get(args.arch, ()):
        if not os.path.lexists(os.path.join(sysroot, top)):
            os.makedirs(os.path.join(sysroot, "usr", top), exist_ok=True)
            os.symlink(f"usr/{top}", os.path.join(sysroot, top))
    for deb in debs[1:]:
        unpack(deb, sysroot, overrides)
    take_from_builder(sysroot)
    for directory in ("var/cache/apt/archives", "var/lib/apt/lists"):
        run(["rm", "-rf", os.path.join(sysroot, directory)])
    say(f"unpacked into {sysroot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
