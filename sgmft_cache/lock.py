"""One writer at a time per cache file: a lock file beside it, `<cache>.lock`, naming who holds it.

The lock is an exclusive `flock` on that file, which the kernel drops when its process dies
(SIGKILL included), so a lock left by a dead process is taken over by the next writer, which
rewrites the file with its own pid, host and command. A process that finds the lock held is told
who holds it, in one line. Locks are reentrant within a process: `sgmft extract` holds its cache's
lock for the whole run, and the writers it uses (CacheWriter, write_split, merge_caches) take the
same lock again. Readers never lock: every write swaps a complete file into place.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from sgmft_cache.errors import CacheError

_held: dict[str, tuple[int, int, int]] = {}  # lock file -> (fd, depth, owner pid)
_guard = threading.Lock()


def _forget_in_child() -> None:
    """A forked child (a decoding worker) drops its copies of the lock descriptors: an flock lasts while any
    copy is open, and a worker orphaned by a SIGKILLed writer must not keep its cache locked."""
    global _guard
    for fd, _, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()
    _guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)


def lock_path(cache: str | Path) -> Path:
    cache = Path(cache)
    return cache.with_name(cache.name + ".lock")


def holder(cache: str | Path) -> dict:
    """What the lock file says about its (last) holder: pid, host, command, since; {} when there is none."""
    try:
        value = json.loads(lock_path(cache).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def acquire(cache: str | Path) -> None:
    """Take the cache's lock (again, if this process holds it), or raise CacheError naming its holder."""
    key = os.path.abspath(lock_path(cache))
    with _guard:
        fd, depth, pid = _held.get(key, (-1, 0, 0))
        if depth and pid == os.getpid():
            _held[key] = (fd, depth + 1, pid)
            return
        _held[key] = (_take(Path(cache), Path(key)), 1, os.getpid())


def release(cache: str | Path) -> None:
    """Undo one `acquire`; the last one deletes the lock file and drops the lock."""
    key = os.path.abspath(lock_path(cache))
    with _guard:
        fd, depth, pid = _held.get(key, (-1, 0, 0))
        if not depth or pid != os.getpid():
            return
        if depth > 1:
            _held[key] = (fd, depth - 1, pid)
            return
        del _held[key]
        with contextlib.suppress(OSError):
            os.unlink(key)  # while still locked, so nobody locks the file being deleted
        os.close(fd)


@contextlib.contextmanager
def cache_lock(cache: str | Path):
    """Hold the cache's lock for the duration of a `with` block."""
    acquire(cache)
    try:
        yield
    finally:
        release(cache)


def _take(cache: Path, path: Path) -> int:
    """Open, lock and sign the lock file; retried when the file was replaced between open and lock."""
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise CacheError(f"{cache}: cannot create its lock file {path} ({e.strerror or e}); make the folder "
                             "writable or write the cache elsewhere") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise CacheError(f"{cache}: another process is writing this cache ({_describe(holder(cache))}); wait "
                             f"for it to finish or stop it (a lock left by a process that died is taken over)") from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder deleted it as we opened it: lock the new one
    _sign(fd)
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _sign(fd: int) -> None:
    info = dict(pid=os.getpid(), host=socket.gethostname(), command=" ".join(sys.argv).replace("\n", " ")[:300],
                since=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)


def _describe(info: dict) -> str:
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}: {info.get('command', '')!s}"
