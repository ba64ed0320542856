"""A real local store for what nodes save: documents, measurements and predictions.

KRE keeps ``ctx.db`` documents in MongoDB, ``ctx.measurement`` points in InfluxDB and
``ctx.prediction`` records in Mongo's ``classificationMetrics``. Locally all three live in one
SQLite file per version:

* ``$KRTLAB_DATA_DIR/<version>/store.sqlite`` when ``KRTLAB_DATA_DIR`` is set,
* else ``<cwd>/.krtlab-data/<version>/store.sqlite``: data persists per project, i.e. per
  version name under the working directory (the notebook's folder).

The file is in WAL mode with a busy timeout and short transactions, so threads and processes
(the served runtime's workers) write to it at once without losing anything. Measurements are
batched like KRE's Influx writer (flushed after 1 s, at 1,000 points, before any read and at
exit), so recording one costs microseconds, not a commit.

Queries (:meth:`LocalStore.find`) are the commonly used subset of MongoDB's (see there).
"""

from __future__ import annotations

import atexit
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from krtlab.runtime.query import compile_query

__all__ = [
    "PREDICTIONS_COLLECTION",
    "LocalStore",
    "data_dir",
    "shared_store",
    "store_path",
    "utc_iso",
]

#: The Mongo collection KRE's ``ctx.prediction.save`` writes to (``find`` reads it too).
PREDICTIONS_COLLECTION = "classificationMetrics"
_BATCH_SIZE = 1_000  # KRE's Influx write options: batch_size=1_000, flush_interval=1_000 ms
_FLUSH_INTERVAL_S = 1.0
_BUSY_TIMEOUT_MS = 30_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection TEXT NOT NULL,
    doc TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_collection ON documents (collection, id);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    measurement TEXT NOT NULL,
    fields TEXT NOT NULL,
    tags TEXT NOT NULL,
    time TEXT NOT NULL,
    precision TEXT NOT NULL,
    node TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    predicted_value TEXT NOT NULL,
    true_value TEXT NOT NULL,
    extra TEXT NOT NULL,
    date TEXT NOT NULL,
    error TEXT NOT NULL,
    node TEXT NOT NULL,
    version TEXT NOT NULL,
    workflow TEXT NOT NULL
);
"""


def data_dir(version_name: str, project_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of a version's local data (its store and the materialized bundle).

    ``$KRTLAB_DATA_DIR/<version>`` when set, else ``<project_dir or cwd>/.krtlab-data/<version>``.
    """
    root = os.environ.get("KRTLAB_DATA_DIR")
    if root:
        return Path(root).expanduser().absolute() / version_name
    base = Path(project_dir) if project_dir is not None else Path.cwd()
    return base.absolute() / ".krtlab-data" / version_name


def store_path(version_name: str, project_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a version's :class:`LocalStore` lives (see :func:`data_dir`)."""
    return data_dir(version_name, project_dir) / "store.sqlite"


def utc_iso(moment: datetime | None = None) -> str:
    """``2026-11-25T10:00:00.123456Z``: naive datetimes are taken as UTC, like KRE does."""
    if moment is None:
        moment = datetime.now(timezone.utc)
    elif moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LocalStore:
    """Documents, measurements and predictions of one version, in one SQLite file.

    Safe to share between threads, and between processes opening the same path.

    Args:
        path: the SQLite file (created with its folder on first write).

    Example:
        >>> import tempfile, pathlib
        >>> s = LocalStore(pathlib.Path(tempfile.mkdtemp()) / "store.sqlite")
        >>> s.save("people", {"name": "Ann", "age": 31})
        >>> [d["name"] for d in s.find("people", {"age": {"$gt": 30}})]
        ['Ann']
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pending: list[tuple[str, dict[str, Any], dict[str, Any], datetime, str, str]] = []
        self._timer: threading.Timer | None = None
        _OPEN.add(self)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.path)!r})"

    # -- connection ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction (BEGIN IMMEDIATE takes the write lock up front, so a busy
        database waits for the busy timeout instead of failing half-way)."""
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        _retry_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
        conn.execute("PRAGMA synchronous = NORMAL")
        _retry_busy(lambda: conn.executescript(_SCHEMA))
        self._conn = conn
        return conn

    def close(self) -> None:
        """Write pending measurements and close the file (it reopens on next use)."""
        self.flush()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    # -- documents (ctx.db) ----------------------------------------------------------------------

    def save(self, collection: str, doc: dict[str, Any]) -> None:
        """Insert a JSON document. Like KRE's mongo-writer it gets an ``_id`` (a 24-hex-digit
        string here, an ObjectId there) unless it has one."""
        row = _document_row(collection, doc)
        with self._tx() as conn:
            conn.execute(_INSERT_DOCUMENT, row)

    def save_many(
        self,
        documents: Sequence[tuple[str, dict[str, Any]]] = (),
        predictions: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Insert ``(collection, doc)`` documents and predictions (each the keyword arguments of
        :meth:`save_prediction`) in one transaction: all of them or, on error, none."""
        docs = [_document_row(c, d) for c, d in documents]
        preds = [_prediction_row(**p) for p in predictions]
        with self._tx() as conn:
            if docs:
                conn.executemany(_INSERT_DOCUMENT, docs)
            if preds:
                conn.executemany(_INSERT_PREDICTION, preds)

    def find(self, collection: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Documents of ``collection`` matching a MongoDB-style query, in insertion order.

        Supported: equality on top-level and dotted keys (``{"a.b": 1}``; arrays match an
        element), ``$eq $ne $gt $gte $lt $lte $in $nin $exists`` and top-level ``$and $or
        $nor``. Anything else raises :class:`~krtlab.errors.SpecError`. The
        ``classificationMetrics`` collection also holds the predictions, shaped like KRE's.
        """
        match = compile_query(query or {})
        docs = [json.loads(row[0]) for row in self._rows(collection)]
        if collection == PREDICTIONS_COLLECTION:
            docs = [_kre_prediction(p) for p in self.predictions()] + docs
        return [d for d in docs if match(d)]

    def _rows(self, collection: str) -> list[tuple[str]]:
        if not self.path.exists():
            return []
        with self._lock:
            cur = self._connect().execute(
                "SELECT doc FROM documents WHERE collection = ? ORDER BY id", (collection,)
            )
            return cur.fetchall()

    def collections(self) -> list[str]:
        """Names of the collections holding documents, in order of first use."""
        if not self.path.exists():
            return []
        with self._lock:
            rows = self._connect().execute(
                "SELECT collection, MIN(id) AS first FROM documents GROUP BY collection "
                "ORDER BY first"
            )
            return [r[0] for r in rows]

    # -- measurements (ctx.measurement) ----------------------------------------------------------

    def save_measurement(
        self,
        measurement: str,
        fields: dict[str, Any],
        tags: dict[str, Any],
        time: datetime | None = None,
        precision: str = "ns",
        *,
        node: str = "",
    ) -> None:
        """Record an Influx-style point (batched; see the module docstring)."""
        # serialized at flush time: recording stays cheap in the node's hot path
        when = time if time is not None else datetime.now(timezone.utc)
        row = (str(measurement), dict(fields), dict(tags), when, str(precision), node)
        with self._lock:
            self._pending.append(row)
            if len(self._pending) >= _BATCH_SIZE:
                self.flush()
            elif self._timer is None:
                self._timer = threading.Timer(_FLUSH_INTERVAL_S, self._timed_flush)
                self._timer.daemon = True
                self._timer.start()

    def _timed_flush(self) -> None:
        try:
            self.flush()
        except sqlite3.Error:  # a busy or vanished file: the next read or exit retries
            pass

    def flush(self) -> None:
        """Write the batched measurements now."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                encoded = [
                    (
                        m,
                        json.dumps(fields, default=str),
                        json.dumps({str(k): str(v) for k, v in tags.items()}),  # Influx: strings
                        utc_iso(when),
                        precision,
                        node,
                    )
                    for m, fields, tags, when, precision, node in rows
                ]
                with self._tx() as conn:
                    conn.executemany(
                        "INSERT INTO measurements (measurement, fields, tags, time, precision, "
                        "node) VALUES (?, ?, ?, ?, ?, ?)",
                        encoded,
                    )
            except BaseException:
                self._pending[:0] = rows  # keep them for the next attempt
                raise

    def measurements(self, measurement: str | None = None) -> list[dict[str, Any]]:
        """Recorded points, oldest first: ``measurement, fields, tags, time, precision, node``."""
        self.flush()
        if not self.path.exists():
            return []
        sql = "SELECT measurement, fields, tags, time, precision, node FROM measurements"
        args: tuple[Any, ...] = ()
        if measurement is not None:
            sql, args = sql + " WHERE measurement = ?", (measurement,)
        with self._lock:
            rows = self._connect().execute(sql + " ORDER BY id", args).fetchall()
        return [
            {
                "measurement": m,
                "fields": json.loads(f),
                "tags": json.loads(t),
                "time": when,
                "precision": p,
                "node": n,
            }
            for m, f, t, when, p, n in rows
        ]

    # -- predictions (ctx.prediction) ------------------------------------------------------------

    def save_prediction(
        self,
        predicted_value: str,
        true_value: str,
        *,
        extra: Any = None,
        date: str,
        error: str = "",
        node: str = "",
        version: str = "",
        workflow: str = "",
    ) -> None:
        """Record a classification metric (already validated by ``ctx.prediction.save``)."""
        row = _prediction_row(
            predicted_value,
            true_value,
            extra=extra,
            date=date,
            error=error,
            node=node,
            version=version,
            workflow=workflow,
        )
        with self._tx() as conn:
            conn.execute(_INSERT_PREDICTION, row)

    def predictions(self) -> list[dict[str, Any]]:
        """Recorded predictions, oldest first."""
        if not self.path.exists():
            return []
        with self._lock:
            rows = (
                self._connect()
                .execute(
                    "SELECT predicted_value, true_value, extra, date, error, node, version, "
                    "workflow FROM predictions ORDER BY id"
                )
                .fetchall()
            )
        keys = ("predicted_value", "true_value", "extra", "date", "error", "node", "version")
        out = []
        for row in rows:
            item = dict(zip(keys, row[:7], strict=True))
            item["extra"] = json.loads(item["extra"])
            item["workflow"] = row[7]
            out.append(item)
        return out

    # -- housekeeping ----------------------------------------------------------------------------

    def clear(self) -> None:
        """Delete everything recorded (the file stays)."""
        with self._lock:
            self._pending = []
            if not self.path.exists():
                return
            with self._tx() as conn:
                for table in ("documents", "measurements", "predictions"):
                    conn.execute(f"DELETE FROM {table}")


_INSERT_DOCUMENT = "INSERT INTO documents (collection, doc, created) VALUES (?, ?, ?)"
_INSERT_PREDICTION = (
    "INSERT INTO predictions (predicted_value, true_value, extra, date, error, node, version, "
    "workflow) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _document_row(collection: str, doc: dict[str, Any]) -> tuple[str, str, str]:
    if not isinstance(doc, dict):
        raise TypeError(f"a document is a dict, not {type(doc).__name__}")
    if "_id" not in doc:
        doc = {"_id": os.urandom(12).hex(), **doc}
    text = json.dumps(doc)  # kre-py json.dumps the document too: same TypeErrors
    return (collection, text, utc_iso())


def _prediction_row(
    predicted_value: str,
    true_value: str,
    *,
    extra: Any = None,
    date: str,
    error: str = "",
    node: str = "",
    version: str = "",
    workflow: str = "",
) -> tuple[str, ...]:
    extra_text = json.dumps(extra)
    return (predicted_value, true_value, extra_text, date, error, node, version, workflow)


def _kre_prediction(p: dict[str, Any]) -> dict[str, Any]:
    """A prediction shaped like the document KRE's runner stores in ``classificationMetrics``."""
    return {
        "date": p["date"],
        "error": p["error"],
        "predictedValue": p["predicted_value"],
        "trueValue": p["true_value"],
        "extra": p["extra"],
        "versionId": p["version"],
        "versionName": p["version"],
    }


def _retry_busy(step: Any) -> None:
    # schema and journal-mode changes can meet a lock the busy handler does not wait for
    for attempt in range(200):
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.01)


# -- one store object per file and process -----------------------------------------------------

_OPEN: weakref.WeakSet[LocalStore] = weakref.WeakSet()
_SHARED: dict[Path, LocalStore] = {}
_SHARED_LOCK = threading.Lock()


def shared_store(path: str | os.PathLike[str]) -> LocalStore:
    """The process-wide :class:`LocalStore` of a file (runs and ``v.metrics()`` share it, so
    batched measurements are seen at once)."""
    key = Path(path).absolute()
    with _SHARED_LOCK:
        store = _SHARED.get(key)
        if store is None:
            store = _SHARED[key] = LocalStore(key)
        return store


def _after_fork() -> None:
    # a child starts with its parent's stores: drop their connection, batch, timer and lock
    for store in list(_OPEN):
        store._lock = threading.RLock()
        store._conn, store._pending, store._timer = None, [], None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


@atexit.register
def _flush_all() -> None:
    for store in list(_OPEN):
        try:
            store.flush()
        except Exception:  # never fail interpreter exit over local metrics
            pass


# -- queries: the commonly used subset of MongoDB's ---------------------------------------------
