"""The workers' claims: blocks of CLAIM_BLOCK instances, each run by whichever worker asks for it first.

The number of the next free block lives in a file every worker inherits, read and moved on under a POSIX
lock (per process, unlike flock on a shared descriptor). Every worker asks for every block in order, so
when one asks for block b, all blocks below b are taken: the counter is b (free: take it) or above (another
worker took it). Where POSIX locks are missing (Windows) the workers fall back to fixed shards.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

try:
    import fcntl
except ImportError:  # Windows: fixed shards
    fcntl = None  # type: ignore[assignment]

CLAIM_BLOCK = 32  # instances per claim: a few milliseconds of work


class FileClaims:
    """The counter of the next free block, in an inherited file descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def take(self, block: int) -> bool:
        """Claim `block`, asked for in order: True if it is this process's to run."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            if int.from_bytes(os.pread(self.fd, 8, 0), "little") != block:
                return False
            os.pwrite(self.fd, (block + 1).to_bytes(8, "little"), 0)
            return True
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)


def claimed(claims: FileClaims) -> Callable[[int], bool]:
    """Ownership of the arrivals in the blocks this process claims first (asked for every number, in order)."""
    last = [-1, False]  # the last block asked for, and whether it is ours

    def owns(rank: int) -> bool:
        block = rank // CLAIM_BLOCK
        if block != last[0]:
            last[0], last[1] = block, claims.take(block)
        return bool(last[1])

    return owns


def claims_file() -> int | None:
    """A new counter at 0 in an unlinked file (nothing to clean up); None where POSIX locks are missing."""
    if fcntl is None:
        return None
    fd, path = tempfile.mkstemp(prefix="chainsim-claims-")
    os.unlink(path)
    os.write(fd, bytes(8))
    return fd
