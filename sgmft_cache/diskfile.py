"""Writing an HDF5 file whole: built in memory, then written to disk by plain Python I/O.

HDF5 that meets a full disk (or a file-size limit) mid-write raises from deep inside its cache
and can crash the interpreter later when the half-written file is closed. Built in memory, the
file never meets the disk; the one write that does fails as a single OSError naming the file,
and removes what it wrote.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from pathlib import Path

import h5py


@contextlib.contextmanager
def built_in_memory(path: Path):
    """An h5py.File to fill inside the `with`; on a clean exit it is written to `path` (complete, synced)."""
    f = h5py.File(f"sgmft-{uuid.uuid4().hex}.h5", "w", driver="core", backing_store=False)
    try:
        yield f
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    write_whole(Path(path), image)


def write_whole(path: Path, data: bytes) -> None:
    """`data` into `path`, synced; on failure the partial file is removed and the OSError names `path`."""
    try:
        with open(path, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except OSError as e:
        with contextlib.suppress(OSError):
            path.unlink()
        if e.filename:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


@contextlib.contextmanager
def written_by_hdf5(path: Path):
    """For a file too large to build in memory (a features segment), written by HDF5 in place: a failed write —
    h5py raises OSError or RuntimeError with the errno inside its message — becomes one OSError naming `path`,
    and the partial file is removed."""
    try:
        yield
    except (OSError, RuntimeError) as e:
        with contextlib.suppress(OSError):
            Path(path).unlink()
        if isinstance(e, OSError) and e.filename:
            raise
        found = re.search(r"errno = (\d+)", str(e))
        code = int(found.group(1)) if found else errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from None
