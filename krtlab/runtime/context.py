"""``ctx``: the kre-py 1.x handler context, backed by the local store.

The same :class:`Context` serves in-process runs (``v.run``) and the served runtime's worker
processes, so a node sees one behaviour in both. It follows kre-py 1.29's ``context*.py``:
argument checks, error texts and document shapes are KRE's; what KRE sends to MongoDB, InfluxDB
and the mongo-writer goes to a :class:`~krtlab.runtime.store.LocalStore` instead.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import RunError
from .query import compile_query
from .store import LocalStore, utc_iso

if TYPE_CHECKING:
    from krtlab.spec.runners import Runner

__all__ = [
    "KRE_LOG_FORMAT",
    "CaptureHandler",
    "Context",
    "KreFormatter",
    "capture_handler",
    "context_class",
    "drive",
    "node_logger",
]

#: kre-py's log line (``logging.basicConfig`` in its ``kre_runner.py``), in UTC.
KRE_LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s"
_KRE_DATEFMT = "%Y-%m-%dT%H:%M:%S"
_KRE_LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR"}  # kre-py renames these two


class KreFormatter(logging.Formatter):
    """KRE's log format: ``2026-11-25T10:00:00.123Z INFO message`` (UTC, ``WARN`` not
    ``WARNING``) without renaming levels process-wide as kre-py does."""

    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__(KRE_LOG_FORMAT, _KRE_DATEFMT)

    def format(self, record: logging.LogRecord) -> str:
        name = record.levelname
        record.levelname = _KRE_LEVELS.get(name, name)
        try:
            return super().format(record)
        finally:
            record.levelname = name


class CaptureHandler(logging.Handler):
    """Appends formatted records to ``sink`` while a node runs (the runtime sets it per call)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(KreFormatter())
        self.sink: list[str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        sink = self.sink
        if sink is not None:
            try:
                sink.append(self.format(record))
            except Exception:
                self.handleError(record)


_LOGGER_LOCK = threading.Lock()


def capture_handler(logger: logging.Logger) -> CaptureHandler:
    """The logger's :class:`CaptureHandler`, attached once (two versions of the same name share
    the logger, never duplicate handlers)."""
    with _LOGGER_LOCK:
        for h in logger.handlers:
            if isinstance(h, CaptureHandler):
                return h
        h = CaptureHandler()
        logger.addHandler(h)
        return h


def node_logger(version: str, node: str, *, stream: Any = None) -> logging.Logger:
    """A node's logger, named like kre-py's (``<version>-<node>``), at INFO like the runner.

    Args:
        stream: also write KRE-formatted lines there (``sys.stderr`` in worker processes); the
            records then stop propagating, so nothing is printed twice.
    """
    logger = logging.getLogger(f"{version}-{node}")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    capture_handler(logger)
    if stream is not None:
        with _LOGGER_LOCK:
            if not any(getattr(h, "_krtlab_stream", False) for h in logger.handlers):
                h = logging.StreamHandler(stream)
                h.setFormatter(KreFormatter())
                h._krtlab_stream = True  # type: ignore[attr-defined]
                logger.addHandler(h)
            logger.propagate = False
    return logger


class _Request:
    """Per-request state shared by the nodes handling one request (KRE's envelope flags).

    A context made by the constructor has an untracked one: its ``reply`` callable keeps the
    per-request state itself (e.g. a worker checking its envelope); :meth:`Context.for_request`
    makes tracked ones.
    """

    __slots__ = ("exited", "replied", "reply", "tracked")

    def __init__(
        self,
        replied: bool,
        reply: Callable[[Any], Awaitable[None]] | None,
        tracked: bool = True,
    ) -> None:
        self.replied, self.reply, self.tracked = replied, reply, tracked
        self.exited = False  # ctx.early_exit(): this node's result ends the workflow


class _Common:
    """What ``ctx.db``, ``ctx.measurement`` and ``ctx.prediction`` need to know."""

    __slots__ = ("logger", "node", "store", "version", "workflow")

    def __init__(self, store: LocalStore, version: str, node: str, workflow: str, logger: Any):
        self.store, self.version, self.node, self.workflow = store, version, node, workflow
        self.logger = logger


class Context:
    """The ``ctx`` a node receives (kre-py 1.x API).

    Args:
        base_path: the bundle root; ``ctx.path(rel)`` is relative to it.
        version: version name (tags measurements, names predictions and the logger).
        node_name: this node's name.
        store: where documents, measurements and predictions go.
        workflow: the workflow name, recorded with predictions.
        reply: the early-reply channel: ``await reply(message)``.
        logger: defaults to :func:`node_logger`; a capture handler is attached either way.

    One context lives as long as its node (``init`` state from ``ctx.set`` stays); per request
    the runtime uses :meth:`for_request`, as kre-py copies its context per message, and the
    copy refuses a second ``ctx.reply``. Used directly for every request, the context leaves
    that check to its ``reply`` callable. ``capture`` is the :class:`CaptureHandler` whose
    ``sink`` collects the node's log lines.
    """

    def __init__(
        self,
        *,
        base_path: str,
        version: str,
        node_name: str,
        store: LocalStore,
        workflow: str = "",
        reply: Callable[[Any], Awaitable[None]] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        if logger is None:
            logger = node_logger(version, node_name)
        self.logger = logger
        self.capture = capture_handler(logger)
        self.base_path = str(base_path)
        self.version, self.node_name, self.workflow = version, node_name, workflow
        self._data: dict[str, Any] = {}
        self._req = _Request(False, reply, tracked=False)
        common = _Common(store, version, node_name, workflow, logger)
        self.db = ContextData(common)
        self.measurement = ContextMeasurement(common)
        self.prediction = ContextPrediction(common)

    def __repr__(self) -> str:
        return f"<ctx of node {self.node_name!r} ({self.version}), base path {self.base_path}>"

    def for_request(
        self, *, replied: bool = False, reply: Callable[[Any], Awaitable[None]] | None = None
    ) -> Context:
        """A copy for one request, sharing ``set``/``get`` data, logger and store.

        Args:
            replied: the request was already answered early by a previous node (the envelope's
                ``replied`` flag); ``ctx.reply`` then raises, as in KRE.
            reply: this request's early-reply channel (defaults to the constructor's).
        """
        return self._bind(_Request(replied, reply if reply is not None else self._req.reply))

    def _bind(self, request: _Request) -> Context:
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._req = request
        return new

    @property
    def replied(self) -> bool:
        """Whether this request was answered early (by this node or a previous one)."""
        return self._req.replied

    def path(self, relative_path: str) -> str:
        """``os.path.join(base_path, relative_path)``, as kre-py."""
        return os.path.join(self.base_path, relative_path)

    def set(self, key: str, value: Any) -> None:
        """Keep a value for later requests (e.g. a model loaded in ``init``)."""
        self._data[key] = value

    def get(self, key: str) -> Any:
        """A value stored with :meth:`set`.

        Raises:
            AttributeError: the key was never set (kre-py stores values as attributes).
        """
        try:
            return self._data[key]
        except KeyError:
            known = ", ".join(map(repr, self._data)) or "none"
            raise AttributeError(
                f"ctx.get({key!r}): nothing was stored under {key!r} with ctx.set (keys: {known})"
            ) from None

    async def reply(self, response: Any) -> None:
        """Answer the request now; later nodes still run and the last one's result is ignored.

        Raises:
            Exception: ``error the message was replied previously`` on a second reply.
        """
        await self._reply_now(response)

    async def _reply_now(self, response: Any) -> None:
        req = self._req
        if req.replied:
            raise Exception("error the message was replied previously")
        if req.reply is None:
            raise RunError(f"ctx.reply: node {self.node_name!r} has no reply channel here")
        if req.tracked:
            req.replied = True
        await req.reply(response)

    async def early_reply(self, response: Any) -> None:
        """kre-py 2.1's name for :meth:`reply` (``ctx.reply`` is gone there)."""
        await self._reply_now(response)

    def early_exit(self) -> None:
        """kre-py 2.1.2+: end the workflow after this node; its result is the answer."""
        self._req.exited = True

    @classmethod
    def for_runner(cls, runner: Runner | None, **kwargs: Any) -> Context:
        """A context like the one ``runner``'s kre-py gives (``ctx.reply`` only from 1.25.0,
        ``ctx.early_reply`` from 2.1.0, ``ctx.early_exit`` from 2.1.2); every member when the
        runner is unknown."""
        return context_class(runner.ctx if runner is not None else None)(**kwargs)


#: members only some kre-py tags have
_OPTIONAL = ("reply", "early_reply", "early_exit")


class _Absent:
    """A member the runner's context lacks: reading it fails as on that runner."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        raise AttributeError(f"'HandlerContext' object has no attribute '{self.name}'")


@functools.lru_cache(maxsize=16)
def context_class(members: frozenset[str] | None) -> type[Context]:
    """The :class:`Context` subclass with just the optional members in ``members`` (named
    ``HandlerContext``, like kre-py's); :class:`Context` itself for None."""
    if members is None:
        return Context
    absent = {name: _Absent(name) for name in _OPTIONAL if name not in members}
    return type("HandlerContext", (Context,), {"__module__": __name__, **absent})


class ContextData:
    """``ctx.db``: KRE's MongoDB ``data`` database, here the local store's documents."""

    def __init__(self, common: _Common) -> None:
        self._c = common

    async def save(self, coll: str, data: Any) -> None:
        """Insert ``data`` (JSON-able) into collection ``coll``."""
        if not isinstance(coll, str) or coll == "":
            raise Exception(
                f"[ctx.db.save] invalid 'collection'='{coll}', must be a nonempty string"
            )
        self._c.store.save(coll, data)

    async def find(self, coll: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Documents of ``coll`` matching ``query`` (see :meth:`LocalStore.find`)."""
        if not isinstance(coll, str) or coll == "":
            # kre-py's own text, which says save here too
            raise Exception(
                f"[ctx.db.save] invalid 'collection'='{coll}', must be a nonempty string"
            )
        if not isinstance(query, dict) or not query:
            raise Exception(f"[ctx.db.find] invalid 'query'='{query}', must be a nonempty dict")
        try:
            compile_query(query)
            return self._c.store.find(coll, query)
        except Exception as err:
            raise Exception(f"[ctx.db.find] error getting data from MongoDB: {err}") from err


class ContextMeasurement:
    """``ctx.measurement``: KRE's InfluxDB (bucket ``kre``), here the local store."""

    PRECISION_S = "s"
    PRECISION_MS = "ms"
    PRECISION_US = "us"
    PRECISION_NS = "ns"

    def __init__(self, common: _Common) -> None:
        self._c = common

    def save(
        self,
        measurement: str,
        fields: dict[str, Any],
        tags: dict[str, Any],
        time: datetime | None = None,
        precision: str = PRECISION_NS,
    ) -> None:
        """Record a point; the ``version`` tag is added as kre-py does."""
        c = self._c
        tags = {**tags, "version": c.version}
        c.store.save_measurement(measurement, dict(fields), tags, time, precision, node=c.node)


class ContextPrediction:
    """``ctx.prediction``: KRE's ``classificationMetrics`` (the Admin UI's metrics)."""

    ERR_MISSING_VALUES = "missing_values"
    ERR_NEW_LABELS = "new_labels"

    def __init__(self, common: _Common) -> None:
        self._c = common
        self.PREDICTION_ERRORS = [self.ERR_MISSING_VALUES, self.ERR_NEW_LABELS]

    async def save(
        self,
        predicted_value: str = "",
        true_value: str = "",
        extra: dict[str, Any] | None = None,
        utcdate: datetime | None = None,
        error: str = "",
    ) -> None:
        """Record a prediction, checked exactly as kre-py checks it."""
        if error != "":
            if error not in self.PREDICTION_ERRORS:
                raise Exception(
                    f"[ctx.prediction.save] invalid value for metric error {error} "
                    f"should be one of '{','.join(self.PREDICTION_ERRORS)}'"
                )
        else:
            if not isinstance(predicted_value, str) or predicted_value == "":
                raise Exception(
                    f"[ctx.prediction.save] invalid 'predicted_value'='{predicted_value}', "
                    "must be a nonempty string"
                )
            if not isinstance(true_value, str) or true_value == "":
                raise Exception(
                    f"[ctx.prediction.save] invalid 'true_value'='{true_value}', must be a "
                    "nonempty string"
                )
        if utcdate is None:
            utcdate = datetime.now(timezone.utc).replace(tzinfo=None)
        offset = utcdate.utcoffset()
        if offset and offset.total_seconds() != 0:
            raise Exception("Input date must be a UTC datetime")
        c = self._c
        json.dumps(extra)  # the runner sends it as JSON: fail the same way on odd values
        c.store.save_prediction(
            predicted_value,
            true_value,
            extra=extra,
            date=utc_iso(utcdate),
            error=error,
            node=c.node,
            version=c.version,
            workflow=c.workflow,
        )


# -- driving node coroutines -------------------------------------------------------------------

_LOCAL = threading.local()


def _idle_loop() -> asyncio.AbstractEventLoop:
    loop = getattr(_LOCAL, "loop", None)
    if loop is None or loop.is_closed():
        loop = _LOCAL.loop = asyncio.new_event_loop()
    return loop


def drive(coro: Any) -> Any:
    """Run a coroutine to completion from synchronous code, even inside a running event loop
    (a Jupyter cell), and fast when it never really waits.

    The coroutine becomes a task of a private, idle event loop owned by this thread, and its
    ready steps run right here (so ``asyncio.current_task()`` and timeouts work). Most node
    coroutines finish in that first step. One that waits for a timer or I/O is finished by the
    same loop on a helper thread while this thread waits; Ctrl-C cancels it.
    """
    loop = _idle_loop()
    task = loop.create_task(coro)
    ready = getattr(loop, "_ready", None)
    if ready is not None:  # asyncio's own loop: run the ready callbacks here (no thread hop)
        previous = asyncio._get_running_loop()
        asyncio._set_running_loop(loop)
        try:
            while ready and not task.done():
                handle = ready.popleft()
                if not handle._cancelled:
                    handle._run()
        finally:
            asyncio._set_running_loop(previous)
    if not task.done():
        _finish_elsewhere(loop, task)
    return task.result()


def _finish_elsewhere(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    def run() -> None:
        try:
            loop.run_until_complete(task)
        except BaseException:  # the task keeps its own exception for result()
            pass
        finally:
            own = getattr(_LOCAL, "loop", None)  # a nested run on this helper thread
            if own is not None:
                own.close()

    helper = threading.Thread(target=run, name="krtlab-node-async", daemon=True)
    helper.start()
    try:
        helper.join()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(task.cancel)
        helper.join()
        raise
