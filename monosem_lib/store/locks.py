"""One writer at a time per stored target, through an advisory lock file beside it.

The lock of ``dir/NAME`` (a run directory, or a summary's stem ``dir/LR1``) is the file
``dir/.NAME.lock``, held with ``flock`` while the target is written (the command line holds it
from its checks before training until the result is written). The kernel drops the lock when
its holder dies, so a crash never leaves a stale lock; the file records who holds it (process,
host, command, time), which a refused writer names. A process may take a lock it already
holds again (nested writes), and the file is removed when the outermost holder lets go.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: exclusive creation instead of flock
    fcntl = None  # type: ignore[assignment]

__all__ = ["TargetLocked", "holding", "lock_path", "holder_of"]


class TargetLocked(RuntimeError):
    """Another writer holds the target's lock. ``target``, ``lock`` and ``holder`` (what the
    lock file says about its holder, or None) say which."""

    def __init__(self, target: Path, lock: Path, holder: dict | None):
        self.target, self.lock, self.holder = target, lock, holder
        who = "another writer"
        if holder:
            who = (
                f"process {holder.get('pid')} on {holder.get('host')} since "
                f"{holder.get('since')} ({holder.get('command')})"
            )
        super().__init__(
            f"{target} is being written by {who}; wait for it to finish or write elsewhere "
            f"(lock file {lock})"
        )


# Locks this process holds: lock path -> [file descriptor, depth, thread id].
_HELD: dict[Path, list] = {}
_GUARD = threading.Lock()


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of ``target``: ``.NAME.lock`` in the target's directory."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


def holder_of(lock: Path) -> dict | None:
    """What a lock file says about its holder, or None when it says nothing readable."""
    try:
        info = json.loads(lock.read_text() or "null")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _describe_self() -> bytes:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else "",
        "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return json.dumps(info).encode()


def _acquire(target: Path, lock: Path) -> int:
    """Open and lock ``lock`` without waiting; the descriptor, or TargetLocked."""
    while True:
        if fcntl is None:  # pragma: no cover
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise TargetLocked(target, lock, holder_of(lock)) from None
            return fd
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise TargetLocked(target, lock, holder_of(lock)) from None
        # The previous holder may have removed the file between our open and our lock: only
        # a lock on the file that is still at the path counts.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextmanager
def holding(target: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of ``target`` for the ``with`` block; raise TargetLocked naming the
    holder if another process (or thread) holds it. The target's directory is created."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(target.parent.resolve() / target.name)  # one key per file, via any path
    me = threading.get_ident()
    with _GUARD:
        held = _HELD.get(lock)
        if held is not None and held[2] != me:
            raise TargetLocked(target, lock, holder_of(lock))
        if held is None:
            fd = _acquire(target, lock)
            os.ftruncate(fd, 0)
            os.write(fd, _describe_self())
            held = _HELD[lock] = [fd, 0, me]
        held[1] += 1
    try:
        yield lock
    finally:
        with _GUARD:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[lock]
                try:
                    os.unlink(lock)
                except OSError:
                    pass
                os.close(held[0])
