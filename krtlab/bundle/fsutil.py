"""Small filesystem helpers that never leave half-written files behind.

Every write goes to a temporary name in the destination's own directory (so the final
``os.replace`` is a rename on one filesystem, atomic on POSIX) and is removed again if anything
fails. Readers of the destination therefore see either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["DEFAULT_FILE_MODE", "atomic_write", "atomic_writer", "staged_dir"]

#: Permission bits of a file krtlab creates (an existing destination keeps its own).
DEFAULT_FILE_MODE = 0o644


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable. Not every platform lets a directory be opened (Windows),
    # and losing this only weakens crash safety, never correctness, so failures are ignored.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without error.

    The temporary file lives next to ``path`` (missing parent directories are created). On
    success it is flushed, fsynced and moved over ``path`` with :func:`os.replace`; if the block
    raises, the temporary file is deleted and ``path`` is left exactly as it was.

    Args:
        path: the destination file.
        mode: permission bits for the result. By default an existing destination keeps its mode
            and a new one gets :data:`DEFAULT_FILE_MODE` (``0o644``).

    Yields:
        A binary file object to write the new content to.

    Raises:
        OSError: the temporary file cannot be created, written or moved into place.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = dest.stat().st_mode & 0o7777
        except OSError:
            mode = DEFAULT_FILE_MODE
    # A dot prefix keeps the temporary file out of globs such as ``*.krt`` while it exists.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0o600; set the intended bits explicitly before the file becomes visible.
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(dest.parent)


def atomic_write(path: str | Path, data: bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, rename.

    Args:
        path: the destination file (parent directories are created).
        data: the complete new content.
        mode: permission bits; see :func:`atomic_writer` for the default.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OSError: the file cannot be written; ``path`` is then unchanged and no temp file remains.
    """
    with atomic_writer(path, mode=mode) as handle:
        handle.write(data)
    return Path(path)


@contextlib.contextmanager
def staged_dir(dest: str | Path) -> Iterator[Path]:
    """Yield a fresh, empty temporary directory next to ``dest`` for staging its new content.

    Build everything inside the staging directory, then move the results into ``dest`` (with
    :func:`os.replace`, atomic because both are on the same filesystem) *before the block ends*.
    The staging directory and whatever is left in it are removed when the block exits, whether it
    succeeded or raised, so a failed build never leaves partial output behind.

    Args:
        dest: the file or directory the staged content is meant for; it need not exist yet (its
            parent directory is created).

    Yields:
        The staging directory.
    """
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent)
    )
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
