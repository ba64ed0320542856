"""The last few requests of local runs, per rpc: what ``v.check()`` replays when given none.

``v.run`` already serializes each request into a ``google.protobuf.Any``; :func:`remember`
keeps those bytes in memory on the version (a list append, no I/O, so ``v.run`` stays as fast
as it was). They are written as JSON to ``<data dir>/requests.json`` (see
:func:`krtlab.runtime.store.data_dir`) at interpreter exit and whenever a check asks, merged
with what earlier sessions wrote, so ``krtlab check`` in a shell finds the examples a notebook
or a script ran.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["KEEP", "paused", "remember", "remembered"]

#: requests kept per rpc (the most recent ones)
KEEP = 5
_FILE = "requests.json"
_DIRTY: dict[int, _Book] = {}  # books with requests not written yet
_LOCK = threading.Lock()
_PAUSED = False


class _Book:
    __slots__ = ("by_rpc", "path", "version")

    def __init__(self, version: Any) -> None:
        from .store import data_dir

        self.version = version.name
        self.path = data_dir(version.name) / _FILE
        self.by_rpc: dict[str, list[tuple[bytes, type]]] = {}


def remember(version: Any, rpc: str, cls: type, data: bytes) -> None:
    """Keep a run's request (``data``: the request packed in an Any, serialized)."""
    if _PAUSED:
        return
    book = version.__dict__.get("_krt_recent")
    if book is None:
        book = version.__dict__["_krt_recent"] = _Book(version)
    entries = book.by_rpc.setdefault(rpc, [])
    if entries and entries[-1][0] == data:
        return  # the same cell run again
    for i, (old, _) in enumerate(entries):
        if old == data:
            del entries[i]
            break
    entries.append((data, cls))
    del entries[:-KEEP]
    _DIRTY[id(book)] = book


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Runs made inside (a check's own) are not remembered."""
    global _PAUSED
    before, _PAUSED = _PAUSED, True
    try:
        yield
    finally:
        _PAUSED = before


def remembered(version: Any) -> tuple[dict[str, list[dict[str, Any]]], Path]:
    """{rpc: [request as JSON-able dict, ...]} of the version's recent local runs (this
    session's and earlier ones', most recent last), and the file they are kept in."""
    book = version.__dict__.get("_krt_recent")
    if book is not None:
        _write(book)
        path = book.path
    else:
        from .store import data_dir

        path = data_dir(version.name) / _FILE
    return _read(path).get("requests", {}), path


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _as_dict(data: bytes, cls: type) -> dict[str, Any] | None:
    from google.protobuf import any_pb2, json_format

    msg = cls()
    if not any_pb2.Any.FromString(data).Unpack(msg):
        return None
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _write(book: _Book) -> None:
    from krtlab.bundle.fsutil import atomic_write

    with _LOCK:
        _DIRTY.pop(id(book), None)
        stored = _read(book.path)
        before = stored.get("requests")
        requests = dict(before) if isinstance(before, dict) else {}  # a copy: compared below
        for rpc, entries in book.by_rpc.items():
            merged = [r for r in requests.get(rpc, []) if isinstance(r, dict)]
            for data, cls in entries:
                request = _as_dict(data, cls)
                if request is None:
                    continue
                merged = [r for r in merged if r != request] + [request]
            requests[rpc] = merged[-KEEP:]
        out = {"version": book.version, "requests": requests}
        if out != stored:
            book.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(book.path, (json.dumps(out, indent=1) + "\n").encode())


@atexit.register
def _flush() -> None:
    for book in list(_DIRTY.values()):
        with contextlib.suppress(Exception):  # never fail an interpreter's exit
            _write(book)
