"""Reading input files within bounds, and finding them in directories.

Every file Levelset reads from disk (scorecards, catalog entities and Location targets, facts
files, the settings file) is read here, with the limits of its kind: only regular files (no
device files or FIFOs), at most ``max_bytes`` (checked with ``stat`` before reading, and never
more than one byte past the limit read), at most ``max_documents`` YAML documents, nesting at
most ``max_depth`` levels deep, and YAML aliases adding at most ``max_alias_nodes`` nodes.
The parsers (``engine.yamlsource``, ``engine.jsonsource``) enforce the last three.

The size limits can be raised per kind by an environment variable (``LEVELSET_MAX_FACTS_FILE_BYTES``
and so on): a platform team with a large generated facts file needs that, and the settings file
itself cannot carry a limit for the settings file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError, Problem

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class ReadLimits:
    """How much of one file of a kind is read and parsed before it is refused."""

    kind: str
    max_bytes: int
    size_variable: str | None = None  # the environment variable that overrides max_bytes
    max_documents: int = 16
    max_depth: int = 64
    max_alias_nodes: int = 10_000

    def bytes_allowed(self, environ: Mapping[str, str] | None = None) -> int:
        """``max_bytes``, or the value of ``size_variable`` when it is set."""
        if self.size_variable is None:
            return self.max_bytes
        value = (os.environ if environ is None else environ).get(self.size_variable)
        if value is None or not value.strip():
            return self.max_bytes
        try:
            allowed = int(value.strip().replace("_", ""))
        except ValueError:
            allowed = 0
        if allowed < 1:
            raise InputError.single(self.size_variable, None,
                                    f"{value!r} is not a positive number of bytes")
        return allowed


SCORECARD_FILE = ReadLimits("scorecard", 1 * MIB, "LEVELSET_MAX_SCORECARD_FILE_BYTES")
SETTINGS_FILE = ReadLimits("settings", 1 * MIB, "LEVELSET_MAX_SETTINGS_FILE_BYTES")
# Thousands of entities fit in one file; YAML is parsed at about 3 s per MiB, so this also
# keeps one catalog file under a minute or so.
CATALOG_FILE = ReadLimits("catalog", 16 * MIB, "LEVELSET_MAX_CATALOG_FILE_BYTES",
                          max_documents=100_000)
# A generated facts file for every service of a large organisation: as JSON about 10 MiB/s,
# as YAML 30 times slower.
FACTS_FILE = ReadLimits("facts", 64 * MIB, "LEVELSET_MAX_FACTS_FILE_BYTES")
SECRET_FILE = ReadLimits("secret", 64 * KIB)


def size_text(size: int) -> str:
    """``52428800`` -> ``50 MiB (52,428,800 bytes)``; small sizes in bytes only."""
    if size >= MIB:
        return f"{size / MIB:.4g} MiB ({size:,} bytes)"
    if size >= KIB:
        return f"{size / KIB:.4g} KiB ({size:,} bytes)"
    return f"{size:,} bytes"


def _file_type(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def check_regular(path: Path, mode: int) -> Problem | None:
    if stat.S_ISREG(mode):
        return None
    return Problem(str(path), None, f"{_file_type(mode)}, not a regular file: only regular "
                   "files are read")


def _too_large(path: Path, size: int, allowed: int, limits: ReadLimits, more: bool = False) -> Problem:
    hint = f" (set {limits.size_variable} to raise it)" if limits.size_variable else ""
    return Problem(str(path), None, f"{limits.kind} file is {'over ' if more else ''}"
                   f"{size_text(size)}, larger than the limit of {size_text(allowed)}{hint}")


def read_bytes(path: Path, limits: ReadLimits) -> bytes:
    """The content of a regular file no larger than the limit; InputError otherwise."""
    allowed = limits.bytes_allowed()
    try:
        # stat before open: a FIFO would block the open, a device file has no size.
        info = path.stat()
        problem = check_regular(path, info.st_mode)
        if problem is None and info.st_size > allowed:
            problem = _too_large(path, info.st_size, allowed, limits)
        if problem is not None:
            raise InputError([problem])
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            # The file may have been replaced between stat and open.
            problem = check_regular(path, os.fstat(handle.fileno()).st_mode)
            if problem is not None:
                raise InputError([problem])
            data = handle.read(allowed + 1)
    except OSError as error:
        raise InputError([Problem(str(path), None, f"cannot read file: {describe_os_error(error)}")]) from None
    if len(data) > allowed:  # it grew after the stat
        raise InputError([_too_large(path, allowed, allowed, limits, more=True)])
    return data


def read_text(path: Path, limits: ReadLimits) -> str:
    """The file's UTF-8 text, within ``limits``; InputError naming the file otherwise."""
    data = read_bytes(path, limits)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError.single(path, None, f"cannot read file: not UTF-8 text ({error.reason} "
                                f"at byte {error.start})") from None


def check_size(text: str, origin: str, limits: ReadLimits) -> None:
    """Raise InputError when text read elsewhere (a fetched file) is over the size limit."""
    allowed = limits.bytes_allowed()
    if len(text) > allowed or len(text.encode("utf-8")) > allowed:
        raise InputError([_too_large(Path(origin), len(text.encode("utf-8")), allowed, limits)])


def describe_os_error(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    return error.strerror or str(error)


@dataclass
class FileWalk:
    """The files found under some paths, and what was wrong on the way (broken links, loops)."""

    files: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def walk_files(paths: Sequence[Path], suffixes: tuple[str, ...] = (".yaml", ".yml")) -> FileWalk:
    """Files named by ``paths``: files as given, directories searched recursively, sorted.

    Symbolic links are followed; a dangling one, a loop, or a directory link that leads back
    to a folder being searched is a problem naming the link, never skipped silently. Names
    starting with a dot are not searched (``.git``, and Kubernetes' ``..data`` copies of a
    mounted ConfigMap, which would otherwise be read twice).
    """
    walk = FileWalk()
    for path in paths:
        if path.is_dir():
            _walk_directory(path, suffixes, frozenset({os.path.realpath(path)}), walk)
        else:
            walk.files.append(path)
    return walk


def _walk_directory(directory: Path, suffixes: tuple[str, ...], ancestors: frozenset[str],
                    walk: FileWalk) -> None:
    try:
        names = sorted(entry.name for entry in os.scandir(directory))
    except OSError as error:
        walk.problems.append(Problem(str(directory), None,
                                     f"cannot read directory: {describe_os_error(error)}"))
        return
    for name in names:
        if name.startswith("."):
            continue
        path = directory / name
        wanted = path.suffix in suffixes
        try:
            mode = path.stat().st_mode  # follows links
        except OSError as error:
            if path.is_symlink() and (wanted or not path.suffix):
                walk.problems.append(_broken_link(path, error))
            elif wanted:
                walk.problems.append(Problem(str(path), None,
                                             f"cannot read file: {describe_os_error(error)}"))
            continue
        if stat.S_ISDIR(mode):
            real = os.path.realpath(path)
            if real in ancestors:
                walk.problems.append(Problem(str(path), None, "symbolic link loop: leads back to "
                                             f"{real}, a folder that holds it; not searched"))
            else:
                _walk_directory(path, suffixes, ancestors | {real}, walk)
        elif wanted:
            walk.files.append(path)  # a device file or FIFO is refused when it is read


def _broken_link(path: Path, error: OSError) -> Problem:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    if error.errno == errno.ELOOP:
        return Problem(str(path), None, f"symbolic link loop (-> {target}); not read")
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return Problem(str(path), None, f"dangling symbolic link (-> {target}, which does not "
                       "exist); not read")
    return Problem(str(path), None, f"symbolic link (-> {target}) cannot be followed: "
                   f"{describe_os_error(error)}")
