"""The entries of a folder of YAML files, and reading one of them with a bound.

A folder is untrusted too: an entry named `x.yaml` may be a FIFO (reading it would wait forever), a link to
`/dev/zero` (endless), a folder, or a file of gigabytes. Each is opened without blocking, looked at with
fstat, and read only when it is a regular file within MAX_BYTES; otherwise the entry is refused by name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..hints import hint

MAX_BYTES = 2_000_000
_NONBLOCK = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class FileProblem(ValueError):
    """An entry that cannot be read as a YAML file: what it is, and what to do."""

    def __init__(self, message: str, hint_text: str = "") -> None:
        super().__init__(message)
        self.message, self.hint = message, hint_text


def yaml_files(folder: Path) -> list[Path]:
    """The folder's `*.yaml` and `*.yml` entries, sorted (whatever they are: reading decides)."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def display(path: Path) -> str:
    """A path as the user gave it: relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_bytes(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; FileProblem for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    except OSError as error:
        raise FileProblem(f"cannot read: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            via = " (through a symbolic link)" if path.is_symlink() else ""
            raise FileProblem(f"not a regular file: {kind}{via}", hint("file", "not a file"))
        if info.st_size > limit:
            raise FileProblem(f"file is larger than {limit} bytes ({info.st_size:,})", hint("file", "too large",
                                                                                            limit=limit))
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew while we read
            raise FileProblem(f"file is larger than {limit} bytes", hint("file", "too large", limit=limit))
        return b"".join(chunks)
    except OSError as error:
        raise FileProblem(f"cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
