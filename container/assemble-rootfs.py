#!/usr/bin/env python3
"""Assemble the distroless root filesystem of the CephaloProxy image.

Runs in the builder stage of container/Dockerfile, as root, with the builder's
own python3. Debian's packages are installed there (the interpreter that goes
into the image is that python3), or, for another architecture's image, unpacked
into SYSROOT by cross-sysroot.py (the same Python for that architecture); this
script copies out of them only what the runtime needs, into ROOTFS, which the
final `FROM scratch` stage copies whole:

  * python3 and the part of its standard library that cephaloinit imports,
    found by scanning cephaloinit's code (every import statement, including the
    ones inside functions), plus what the interpreter itself loads at start-up;
  * cephaloinit, with bytecode compiled here so the runtime never writes any;
  * Squid, its data, its ELF helpers (not the setuid pinger), CA certificates;
  * the shared-library closure of every ELF file above, read from their ELF
    headers (not ldd, which would run another architecture's loader);
  * /etc/passwd, /etc/group, /etc/nsswitch.conf and the writable directories;
  * a distroless-style package record (/var/lib/dpkg/status.d/PACKAGE) for
    every Debian package that owns a copied file, so scanners see versions.

It then checks the result from inside: chrooted into ROOTFS, every ELF file
resolves its libraries and every cephaloinit module imports with the pruned
standard library, without writing a single file (for another architecture,
under emulation). docs/image.md explains why.
"""

from __future__ import annotations

import argparse
import ast
import compileall
import glob
import modulefinder
import os
import py_compile
import shutil
import struct
import subprocess
import sys
import sysconfig

# -I leaves this script's directory off sys.path: the promises' reader lives there.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_promises  # noqa: E402

ELF_MAGIC = b"\x7fELF"

# The runtime identity, the writable directories, the forbidden programs:
# container/image-promises.toml (docs/image.md, "Users and writable paths").
PROMISES = image_promises.load()

# Squid: the daemon, the data it reads, and its helpers. The ICMP pinger is
# setuid root in Debian and cannot work without privileges: it stays out
# (the default config says `pinger_enable off`).
SQUID_BINARY = "/usr/sbin/squid"
SQUID_HELPER_DIR = "/usr/lib/squid"
SQUID_HELPERS_LEFT_OUT = {"pinger"}
# conf.d/debian.conf too: Debian's stock squid.conf includes conf.d/*.conf,
# and Squid refuses an include that matches no file, so a user who mounts the
# stock file unchanged needs it (it only sets logfile_rotate 0).
SQUID_DATA = ("/usr/share/squid", "/etc/squid/errorpage.css", "/etc/squid/conf.d/debian.conf")

# Files other than ELF closures and Python that the runtime reads.
SYSTEM_FILES = (
    "/etc/os-release",  # scanners identify the distribution with these two
    "/etc/debian_version",
    "/etc/ssl/certs/ca-certificates.crt",
    "/usr/lib/ssl/cert.pem",  # OpenSSL's default CA file -> the bundle above
    "/usr/lib/ssl/certs",  # OpenSSL's default CA directory -> /etc/ssl/certs
    "/usr/lib/ssl/openssl.cnf",  # Debian's OpenSSL policy, as Squid has it on Debian
)

# Files the builder generated rather than unpacked, and the package they come from.
GENERATED_BY = {"/etc/ssl/certs/ca-certificates.crt": "ca-certificates"}

# Standard-library modules loaded by name at run time, which no import
# statement shows: codecs are looked up by encoding name (str.encode("idna"),
# the locale's encoding), so the encodings package is kept whole; runpy runs
# `-m cephaloinit`; site serves a plain `python3` without -S.
DYNAMIC_MODULES = ("encodings", "runpy", "site")

# Never followed, though some standard-library module imports them somewhere
# (mostly inside functions the supervisor never calls). The build fails if
# cephaloinit itself imports one of them (docs/image.md, "Python").
PRUNED = {
    "test suites": (
        "test", "unittest", "doctest", "_testcapi", "_testinternalcapi",
        "_testlimitedcapi", "_testbuffer", "_testclinic", "_testmultiphase",
        "_testsinglephase", "_testimportmultiple", "_xxtestfuzz", "idlelib.idle_test",
    ),
    "interactive tools: REPL, debugger, help": (
        "pdb", "bdb", "pydoc", "pydoc_data", "code", "codeop", "_pyrepl",
        "rlcompleter", "readline", "cmd", "curses", "_curses", "_curses_panel",
    ),
    "GUI": ("idlelib", "tkinter", "_tkinter", "turtle", "turtledemo"),
    "packaging and code migration": ("ensurepip", "venv", "lib2to3", "distutils", "setuptools", "pip"),
    "concurrency the supervisor does not use (it has one selectors loop)": (
        "asyncio", "_asyncio", "multiprocessing", "_multiprocessing", "_posixshmem",
        "concurrent",
    ),
    "databases, compression": (
        "sqlite3", "_sqlite3", "dbm", "_dbm", "_gdbm",
        "bz2", "_bz2", "lzma", "_lzma",
    ),
    "clients nothing here is": ("webbrowser", "xmlrpc", "ftplib", "smtplib", "imaplib", "poplib"),
    "CJK codecs (their encodings.* modules stay; the image has only C.UTF-8)": (
        "_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp", "_codecs_kr",
        "_codecs_tw", "_multibytecodec",
    ),
    "other platforms; Debian's apport hook": (
        "_aix_support", "_osx_support", "_ios_support", "sitecustomize",
    ),
}

PASSWD = f"""\
root:x:0:0:root:/root:/usr/sbin/nologin
nonroot:x:{PROMISES.uid}:{PROMISES.gid}:CephaloProxy:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
nogroup:x:65534:
"""
# glibc >= 2.34 has the files and dns modules built in: no libnss_* is needed.
NSSWITCH = """\
passwd: files
group: files
shadow: files
hosts: files dns
"""

LAUNCHER = """\
#!/usr/bin/python3 -IS
# cephaloinit: the image's ENTRYPOINT (as `python3 -I -S /usr/bin/cephaloinit`),
# and `podman exec CONTAINER cephaloinit status` and the like. It imports the
# entry module directly: `-m` would first load runpy and its imports, a few
# milliseconds during which PID 1 has no signal handler yet.
import cephaloinit.__main__  # noqa: F401
"""


class Rootfs:
    """A root filesystem being filled from the builder's own files, or from
    SYSROOT's: another architecture's packages, unpacked (cross-sysroot.py).
    Paths are the image's; self.source(path) is where the builder has one."""

    def __init__(self, root: str, sysroot: str = "/") -> None:
        self.root = root.rstrip("/")
        self.sysroot = sysroot.rstrip("/")
        self.copied: set[str] = set()  # image paths of copied files and symlinks

    def path(self, path: str) -> str:
        return self.root + path

    def source(self, path: str) -> str:
        return self.sysroot + path

    def realpath(self, path: str) -> str:
        """os.path.realpath of PATH inside the sysroot (links are the image's)."""
        for _ in range(40):
            parts = path.strip("/").split("/")
            for index in range(len(parts)):
                current = "/" + "/".join(parts[:index + 1])
                if os.path.islink(self.source(current)):
                    link = os.readlink(self.source(current))
                    path = os.path.normpath(os.path.join(os.path.dirname(current), link, *parts[index + 1:]))
                    break
            else:
                return path
        raise SystemExit(f"assemble-rootfs: {path}: too many levels of symbolic links")

    def ensure_dir(self, path: str, mode: int | None = None) -> None:
        """Create directory PATH (builder's mode unless given), parents first."""
        target = self.path(path)
        if os.path.lexists(target):
            return
        parent = os.path.dirname(path)
        if parent != path:
            self.add(parent)
        if mode is None:
            source = self.source(path)
            mode = os.stat(source).st_mode & 0o1777 if os.path.isdir(source) else 0o755
        os.mkdir(target)
        os.chmod(target, mode)

    def mkdirs(self, path: str, mode: int = 0o755) -> None:
        """Create the image's own directory PATH, whatever the builder has there."""
        parent = os.path.dirname(path)
        if parent != path and not os.path.lexists(self.path(parent)):
            self.mkdirs(parent)
        if not os.path.lexists(self.path(path)):
            os.mkdir(self.path(path))
        os.chmod(self.path(path), mode)

    def add(self, path: str) -> str:
        """Copy PATH from the builder, recreating every symlink met on the way
        (merged /usr, libfoo.so.1 -> libfoo.so.1.2.3, errors -> ../squid-langpack).
        Returns the resolved builder path. Directories are created, not filled."""
        path = os.path.normpath(path)
        parts = path.strip("/").split("/") if path != "/" else []
        current = ""
        for index, part in enumerate(parts):
            current += "/" + part
            if os.path.islink(self.source(current)):
                link = os.readlink(self.source(current))
                resolved = os.path.normpath(os.path.join(os.path.dirname(current), link))
                if resolved.startswith("/etc/alternatives/"):
                    # The image has one choice: link straight to it (squid -> squid-openssl).
                    resolved = self.realpath(current)
                    link = os.path.relpath(resolved, os.path.dirname(current))
                else:
                    self.copied.add(current)
                if not os.path.lexists(self.path(current)):
                    self.ensure_dir(os.path.dirname(current))
                    os.symlink(link, self.path(current))
                return self.add(os.path.join(resolved, *parts[index + 1:]))
            if index < len(parts) - 1 or os.path.isdir(self.source(current)):
                self.ensure_dir(current)
            else:
                self._copy_file(current)
        return path

    def add_tree(self, path: str, skip=lambda path: False) -> None:
        """Copy a directory tree, following symlinked directories into their targets."""
        seen: set[str] = set()
        pending = [path]
        while pending:
            top = pending.pop()
            real = self.add(top)
            if real in seen:
                continue
            seen.add(real)
            for source_dir, dirs, files in os.walk(self.source(real)):
                directory = source_dir[len(self.sysroot):] or "/"
                self.ensure_dir(directory)
                for name in sorted(dirs + files):
                    entry = os.path.join(directory, name)
                    if skip(entry):
                        continue
                    source = self.source(entry)
                    if os.path.islink(source) and os.path.isdir(source):
                        pending.append(entry)
                    elif not os.path.isdir(source) or os.path.islink(source):
                        self.add(entry)

    def _copy_file(self, path: str) -> None:
        target = self.path(path)
        if os.path.lexists(target):
            return
        # copyfile, not copy2: no extended attributes (file capabilities) and
        # no setuid/setgid/sticky bit survive; the owner is root.
        shutil.copyfile(self.source(path), target)
        os.chmod(target, os.stat(self.source(path)).st_mode & 0o777)
        self.copied.add(path)

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        self.ensure_dir(os.path.dirname(path))
        with open(self.path(path), "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(self.path(path), mode)


def is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == ELF_MAGIC
    except OSError:
        return False


# --- Shared libraries, from the ELF headers ----------------------------------
# Read, not run: ldd runs the dynamic loader, which for another architecture's
# files would run under emulation. The image's own loader checks the result
# afterwards (check(), below).

PT_DYNAMIC, PT_INTERP, PT_LOAD = 2, 3, 1
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RPATH, DT_RUNPATH = 0, 1, 5, 15, 29


class ElfFile:
    """What the dynamic loader reads from a 64-bit little-endian ELF file
    (amd64, arm64): its interpreter, DT_NEEDED names and search paths."""

    def __init__(self, path: str, origin: str) -> None:
        """``path``: where to read it; ``origin``: its directory in the image ($ORIGIN)."""
        with open(path, "rb") as stream:
            data = stream.read()
        if data[:4] != ELF_MAGIC or data[4] != 2 or data[5] != 1:
            raise SystemExit(f"assemble-rootfs: {path}: not a 64-bit little-endian ELF file")
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        segments = [struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize) for i in range(phnum)]
        self.interpreter = ""
        self.needed: list[str] = []
        self.search_paths: list[str] = []
        dynamic = None
        for kind, _flags, offset, vaddr, _paddr, size in segments:
            if kind == PT_INTERP:
                self.interpreter = data[offset:offset + size].split(b"\0")[0].decode()
            elif kind == PT_DYNAMIC:
                dynamic = (offset, size)
        if dynamic is None:
            return  # statically linked
        entries = []
        for at in range(dynamic[0], dynamic[0] + dynamic[1], 16):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == DT_NULL:
                break
            entries.append((tag, value))
        strtab_vaddr = next(value for tag, value in entries if tag == DT_STRTAB)
        strtab = next(offset + strtab_vaddr - vaddr for kind, _f, offset, vaddr, _p, size in segments
                      if kind == PT_LOAD and vaddr <= strtab_vaddr < vaddr + size)

        def string(at: int) -> str:
            return data[strtab + at:data.index(b"\0", strtab + at)].decode()

        runpath = [string(v) for t, v in entries if t == DT_RUNPATH]
        rpath = [] if runpath else [string(v) for t, v in entries if t == DT_RPATH]
        for entry in rpath + runpath:
            self.search_paths += [p.replace("$ORIGIN", origin) for p in entry.split(":") if p]
        self.needed = [string(v) for t, v in entries if t == DT_NEEDED]


def library_dirs(sysroot: str) -> list[str]:
    """The loader's default directories: /etc/ld.so.conf.d's (what ldconfig
    caches), then the multiarch and plain library directories."""
    dirs = []
    for conf in sorted(glob.glob(os.path.join(sysroot, "etc/ld.so.conf.d/*.conf"))):
        with open(conf, encoding="utf-8") as stream:
            dirs += [line.strip() for line in stream if line.strip().startswith("/")]
    for path in sorted(glob.glob(os.path.join(sysroot, "usr/lib/*-linux-gnu*/libc.so.6"))):
        triplet = os.path.basename(os.path.dirname(path))
        dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
    return dirs + ["/lib", "/usr/lib"]


def shared_libraries(rootfs: "Rootfs", *paths: str) -> list[str]:
    """The shared-library closure of ELF files, dynamic loader included, as
    paths to copy (the loader's own names for them: symlinks are kept). Each
    library is read once, however many of the files need it."""
    dirs = library_dirs(rootfs.sysroot or "/")
    found: list[str] = []
    pending = list(paths)
    seen = set(paths)
    while pending:
        current = pending.pop(0)
        elf = ElfFile(rootfs.source(current), origin=os.path.dirname(current))
        if elf.interpreter and elf.interpreter not in found:
            found.append(elf.interpreter)
        for name in elf.needed:
            candidates = [name] if "/" in name else [os.path.join(d, name) for d in elf.search_paths + dirs]
            library = next((c for c in candidates if os.path.exists(rootfs.source(c))), None)
            if library is None:
                raise SystemExit(f"assemble-rootfs: {current}: {name} => not found")
            if library not in seen:
                seen.add(library)
                found.append(library)
                pending.append(library)
    return found


# --- Python ---------------------------------------------------------------

def direct_imports(package_dir: str) -> set[str]:
    """Every absolute module name (and its parents) cephaloinit's code imports."""
    names: set[str] = set()
    for directory, dirs, files in os.walk(package_dir):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if not name.endswith(".py"):
                continue
            with open(os.path.join(directory, name), encoding="utf-8") as stream:
                tree = ast.parse(stream.read(), name)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imported = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    imported = [node.module]
                else:
                    continue
                for module in imported:
                    parts = module.split(".")
                    names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


def stdlib_modules(package_dir: str, stdlib: str, sysroot: str = "") -> dict[str, str]:
    """name -> file (the image's path) of every standard-library module
    cephaloinit can import, from SYSROOT's standard library."""
    dynload = os.path.join(stdlib, "lib-dynload")
    source = os.path.dirname(package_dir)
    package = os.path.basename(package_dir)
    excludes = [name for names in PRUNED.values() for name in names]
    pruned_imports = sorted(set(direct_imports(package_dir)) & set(excludes))
    if pruned_imports:
        raise SystemExit(
            f"assemble-rootfs: cephaloinit imports {', '.join(pruned_imports)}, which the "
            "image prunes: take it out of PRUNED in container/assemble-rootfs.py"
        )
    path = [source, sysroot + stdlib, sysroot + dynload]
    if sysroot:
        # Another architecture's extension modules have another suffix
        # (.cpython-313-aarch64-linux-gnu.so), which this interpreter does not
        # look for: the builder's own, of the same Python, stand in for them.
        path.append(dynload)
    finder = modulefinder.ModuleFinder(path=path, excludes=excludes)
    for directory, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                relative = os.path.relpath(os.path.join(directory, name), source)[:-3]
                module = relative.replace(os.sep, ".").removesuffix(".__init__")
                finder.import_hook(module)
    # What the interpreter itself imports before running anything.
    startup = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import sys; print(*sys.modules)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    encodings = [
        "encodings." + name[:-3]
        for name in sorted(os.listdir(os.path.join(sysroot + stdlib, "encodings")))
        if name.endswith(".py") and name != "__init__.py"
    ]
    for name in [*DYNAMIC_MODULES, *encodings, *startup]:
        try:
            finder.import_hook(name)
        except ImportError:
            pass  # built in, frozen, or __main__: nothing to copy
    modules = {}
    for name, module in finder.modules.items():
        filename = module.__file__
        if filename and filename.startswith(sysroot + stdlib + os.sep):
            modules[name] = filename[len(sysroot):]
        elif filename and sysroot and filename.startswith(dynload + os.sep):
            stem = os.path.basename(filename).split(".")[0]
            target = glob.glob(f"{sysroot}{dynload}/{glob.escape(stem)}.*.so")
            if len(target) != 1:
                raise SystemExit(f"assemble-rootfs: {name}: no one extension module in {sysroot}{dynload}: {target}")
            modules[name] = target[0][len(sysroot):]
    return modules


def add_python(rootfs: Rootfs, source: str) -> tuple[str, list[str]]:
    """Interpreter, pruned standard library and cephaloinit. Returns the
    stdlib directory and the extension modules (ELF) that went in."""
    stdlib = sysconfig.get_path("stdlib")
    if not os.path.isdir(rootfs.source(stdlib)):
        raise SystemExit(f"assemble-rootfs: {rootfs.sysroot} has no {stdlib}: the builder's Python "
                         "must be the target's (the same Debian release)")
    rootfs.add("/usr/bin/python3")
    package_dir = os.path.join(source, "cephaloinit")
    modules = stdlib_modules(package_dir, stdlib, rootfs.sysroot)
    for filename in sorted(set(modules.values())):
        rootfs.add(filename)
    extensions = [f for f in modules.values() if f.endswith(".so")]
    # The list of what was kept goes into the image, for audits (docs/image.md).
    rootfs.write(
        "/usr/share/cephaloproxy/python-modules.txt",
        "".join(f"{name}\n" for name in sorted(modules)),
    )
    # cephaloinit goes into the stdlib directory: with -I -S, sys.path holds only
    # python3X.zip, the stdlib directory and lib-dynload (docs/image.md).
    for directory, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        relative = os.path.relpath(directory, source)
        target = os.path.join(stdlib, relative)
        rootfs.ensure_dir(target, 0o755)
        for name in sorted(files):
            if name.endswith(".py"):
                shutil.copyfile(os.path.join(directory, name), rootfs.path(os.path.join(target, name)))
                os.chmod(rootfs.path(os.path.join(target, name)), 0o644)
    rootfs.write("/usr/bin/cephaloinit", LAUNCHER, 0o755)
    # Bytecode for everything kept, checked against nothing at run time
    # (unchecked-hash): a read-only, non-root runtime never tries to rewrite it,
    # and the recorded file names are the image's, not the builder's.
    ok = compileall.compile_dir(
        rootfs.path(stdlib), quiet=1, stripdir=rootfs.root, prependdir="/",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        workers=1,
    )
    if not ok:
        raise SystemExit("assemble-rootfs: byte-compiling the standard library failed")
    return stdlib, extensions


# --- Package records --------------------------------------------------------

MERGED_USR = ("/bin", "/sbin", "/lib", "/lib64")


def aliases(path: str) -> list[str]:
    """PATH and its other name under merged /usr, as a package may list it."""
    names = [path]
    for top in MERGED_USR:
        if path.startswith("/usr" + top + "/"):
            names.append(path[len("/usr"):])
        elif path.startswith(top + "/"):
            names.append("/usr" + path)
    return names


def dpkg_query(rootfs: Rootfs) -> list[str]:
    """dpkg-query on the database of the packages the files come from."""
    return ["dpkg-query", "--admindir", rootfs.source("/var/lib/dpkg")]


def owners(rootfs: Rootfs, paths: set[str]) -> dict[str, set[str]]:
    """package -> the packaged paths among PATHS (dpkg-query -S), as dpkg knows them."""
    queries = sorted({alias for path in paths for alias in aliases(path)})
    found: dict[str, set[str]] = {}
    for start in range(0, len(queries), 500):
        result = subprocess.run(
            [*dpkg_query(rootfs), "-S", *queries[start:start + 500]],
            capture_output=True, text=True,
        )
        for line in result.stdout.splitlines():
            if line.startswith("diversion "):
                continue
            packages, _, path = line.partition(": ")
            for package in packages.split(", "):
                found.setdefault(package, set()).add(path)
    return found


def write_package_records(rootfs: Rootfs) -> list[str]:
    """/var/lib/dpkg/status.d/PACKAGE (+ .md5sums) for each package with files in."""
    # Not the symlinks to directories (/lib -> usr/lib): dpkg lists directories
    # under every package that puts a file in them.
    files = {p for p in rootfs.copied if not os.path.isdir(rootfs.source(p))}
    found = owners(rootfs, files)
    owned = {p for paths in found.values() for p in paths}
    unowned = sorted(p for p in files if not owned.intersection(aliases(p)) and p not in GENERATED_BY)
    if unowned:
        print(f"assemble-rootfs: owned by no package: {' '.join(unowned)}")
    for path, package in GENERATED_BY.items():
        if path in rootfs.copied:
            found.setdefault(package, set())
    records = "/var/lib/dpkg/status.d"
    rootfs.ensure_dir(records, 0o755)
    names = []
    for package in sorted(found):
        name = package.split(":")[0]
        status = subprocess.run(
            [*dpkg_query(rootfs), "-s", package], capture_output=True, text=True, check=True,
        ).stdout
        rootfs.write(f"{records}/{name}", status.rstrip("\n") + "\n")
        md5sums = rootfs.source(f"/var/lib/dpkg/info/{package}.md5sums")
        if not os.path.exists(md5sums):
            md5sums = rootfs.source(f"/var/lib/dpkg/info/{name}.md5sums")
        if os.path.exists(md5sums):
            wanted = {p.lstrip("/") for p in found[package]}
            with open(md5sums, encoding="utf-8") as stream:
                lines = [l for l in stream if l.rstrip("\n").split("  ", 1)[-1] in wanted]
            if lines:
                rootfs.write(f"{records}/{name}.md5sums", "".join(lines))
        names.append(name)
    return names


# --- Checks -----------------------------------------------------------------

def snapshot(root: str) -> set[str]:
    return {os.path.join(d, n) for d, dirs, files in os.walk(root) for n in dirs + files}


def in_chroot(root: str, argv: list[str]) -> None:
    """Run ARGV chrooted into ROOT; fail the build, with its output, if it fails."""
    result = subprocess.run(
        argv, preexec_fn=lambda: (os.chroot(root), os.chdir("/")),
        capture_output=True, text=True, env={"LANG": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin"},
    )
    if result.returncode != 0:
        raise SystemExit(
            f"assemble-rootfs: in the image, {' '.join(argv)} failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )


def check(rootfs: Rootfs, elf_files: list[str], stdlib: str, source: str) -> None:
    before = snapshot(rootfs.root)
    loader = next(p for p in elf_files if os.path.basename(p).startswith("ld-linux"))
    for path in elf_files:
        if path != loader:
            in_chroot(rootfs.root, [loader, "--list", path])
    package_dir = os.path.join(source, "cephaloinit")
    modules = []
    for directory, dirs, files in os.walk(package_dir):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py") and name != "__main__.py":
                relative = os.path.relpath(os.path.join(directory, name), source)[:-3]
                modules.append(relative.replace(os.sep, ".").removesuffix(".__init__"))
    python = ["/usr/bin/python3", "-I", "-S"]
    in_chroot(rootfs.root, python + ["-c", f"import importlib\nfor m in {sorted(modules)!r}: importlib.import_module(m)"])
    in_chroot(rootfs.root, python + ["-m", "cephaloinit", "--version"])
    in_chroot(rootfs.root, ["/usr/bin/cephaloinit", "--version"])
    in_chroot(rootfs.root, [SQUID_BINARY, "-v"])
    written = snapshot(rootfs.root) - before
    if written:
        raise SystemExit(f"assemble-rootfs: running in the image wrote files: {sorted(written)[:10]}")


def forbidden(rootfs: Rootfs) -> list[str]:
    """Shells, package managers, compilers, setuid/setgid files that went in anyway."""
    banned = PROMISES.forbidden_names
    found = []
    for directory, dirs, files in os.walk(rootfs.root):
        for name in files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if name in banned or (not os.path.islink(path) and mode & 0o6000):
                found.append(path[len(rootfs.root):])
    return found


# --- Main ---------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="holds cephaloinit/ and container/")
    parser.add_argument("--rootfs", required=True, help="the directory to fill (must not exist)")
    parser.add_argument("--sysroot", default="/",
                        help="where the packages are installed: / (the builder's own), or another "
                        "architecture's, unpacked by container/cross-sysroot.py")
    args = parser.parse_args()
    rootfs = Rootfs(args.rootfs, args.sysroot)
    os.makedirs(rootfs.root, mode=0o755)

    # Merged /usr: /bin, /lib, ... are symlinks, as in the builder.
    for top in MERGED_USR:
        if os.path.islink(rootfs.source(top)):
            rootfs.add(top)

    stdlib, extensions = add_python(rootfs, args.source)

    elf_roots = ["/usr/bin/python3", SQUID_BINARY, *extensions]
    rootfs.add(SQUID_BINARY)
    for name in sorted(os.listdir(rootfs.source(SQUID_HELPER_DIR))):
        path = os.path.join(SQUID_HELPER_DIR, name)
        if name in SQUID_HELPERS_LEFT_OUT or os.stat(rootfs.source(path)).st_mode & 0o6000:
            continue
        if is_elf(rootfs.source(path)):  # the Perl and shell helpers have no interpreter here
            rootfs.add(path)
            elf_roots.append(path)
    for path in SQUID_DATA:
        rootfs.add_tree(path) if os.path.isdir(rootfs.source(path)) else rootfs.add(path)
    for path in SYSTEM_FILES:
        rootfs.add(path)

    elf_files = set(rootfs.realpath(p) for p in elf_roots)
    for library in shared_libraries(rootfs, *sorted(elf_files)):
        rootfs.add(library)
        elf_files.add(rootfs.realpath(library))

    # The image's own files.
    rootfs.write("/etc/passwd", PASSWD)
    rootfs.write("/etc/group", GROUP)
    rootfs.write("/etc/nsswitch.conf", NSSWITCH)
    rootfs.mkdirs("/etc/squid/conf.d")
    with open(os.path.join(args.source, "container", "squid.conf.default"), encoding="utf-8") as stream:
        rootfs.write("/usr/share/cephaloproxy/squid.conf", stream.read())
    rootfs.mkdirs("/tmp", PROMISES.tmp_mode)
    # Real directories, not Debian's /var/run -> /run link: an engine's tmpfs
    # on /run (podman --read-only) must not hide /var/run/squid.
    for directory in PROMISES.writable_dirs:
        rootfs.mkdirs(directory, PROMISES.writable_mode)
        os.chown(rootfs.path(directory), PROMISES.uid, PROMISES.gid)

    packages = write_package_records(rootfs)
    check(rootfs, sorted(elf_files), stdlib, args.source)
    bad = forbidden(rootfs)
    if bad:
        raise SystemExit(f"assemble-rootfs: must not be in the image: {bad}")

    size = sum(os.lstat(os.path.join(d, n)).st_size
               for d, dirs, files in os.walk(rootfs.root) for n in files)
    print(f"assemble-rootfs: {len(rootfs.copied)} files from {len(packages)} packages, "
          f"{size / 1e6:.1f} MB; packages: {' '.join(packages)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
