"""KRE's mongo-writer for a served version, hosted by the entrypoint process.

kre-py's ``ctx.db.save`` and ``ctx.prediction.save`` (kre-go's ``ctx.DB.Save`` and
``ctx.Prediction.Save`` too) send a NATS request to ``KRT_NATS_MONGO_WRITER`` with the JSON
``{"coll": coll, "doc": doc}`` (gzipped over 1 MiB) and wait for the answer. KRE's mongo-writer
(``kre@kre-3.0.0:engine/mongo-writer/internal/processor/data_processor.go``) inserts ``doc``
into ``data.<coll>`` and answers ``{"success":true}``; when the payload does not gunzip, is not
that JSON (decoded as Go does: numbers become float64, field names match case-insensitively)
or MongoDB refuses the insert, it logs ``Error: ...`` and answers ``{"success":false}``. An
empty payload makes it panic (``data[0]`` out of range): KRE's writer restarts and the request
times out; here it gets no answer either, and the log says why.

:func:`attach` does the same against the version's local store, where ``ctx.db.find``,
``v.metrics()`` and ``krtlab metrics`` read: documents in their collection, and
``classificationMetrics`` documents shaped like a prediction as predictions (other documents
stay documents of that collection). KRE's writer inserts one message at a time; here a thread
writes whatever arrived meanwhile in one transaction and then answers all of it, so concurrent
saves share a commit instead of queueing behind each other's.

The entrypoint hosts it (KRE runs it as a pod of its own): it is already a process apart from
the caller with a NATS connection, so serving costs no extra process to start. krtlab's own
workers write to the store directly (their ``ctx`` is the in-process one); the requests come
from kre-go nodes, and from kre-py runners or any client connected to the served nats-server.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import math
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .store import PREDICTIONS_COLLECTION, LocalStore

if TYPE_CHECKING:
    from .natsserver import NatsConnection

__all__ = ["FAILED", "OK", "WRITER_ID", "MongoWriter", "Senders", "WriteError", "attach", "decode"]

#: KRE's answers: Go's ``json.Marshal(DataMsgResponse{Success: ...})``.
OK = b'{"success":true}'
FAILED = b'{"success":false}'
#: What the entrypoint announces on the ready subject once the writer answers.
WRITER_ID = "mongo-writer"
_PREDICTION_KEYS = frozenset(
    ("date", "error", "predictedValue", "trueValue", "extra", "versionId", "versionName")
)
_LOOK_AGAIN = 5.0  # seconds before an unknown sender is looked up again
_GO_TYPES = {bool: "bool", float: "float64", str: "string", list: "[]interface {}"}


class WriteError(Exception):
    """KRE's writer answers ``{"success":false}``; the text is what it logs after ``Error: ``."""


class _Panic(Exception):
    """KRE's writer crashes on this payload: no answer."""


def decode(data: bytes) -> tuple[str, dict[str, Any]]:
    """``(coll, doc)`` of a request, checked as KRE's writer and MongoDB check them.

    Raises:
        WriteError: KRE answers ``{"success":false}`` (the message is its log text).
    """
    if not data or data == b"\x1f":
        raise _Panic(
            f"index out of range [{len(data)}] with length {len(data)}: KRE's mongo-writer "
            "panics on this payload and restarts, so the request gets no answer"
        )
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, ValueError) as exc:
            raise WriteError(f"error uncompressing: {exc}") from None
    try:
        value = json.loads(
            data.decode("utf-8", "replace"),  # Go puts U+FFFD for invalid UTF-8 in strings
            parse_int=float,  # into interface{}: every JSON number is a float64
            parse_float=_go_float,
            parse_constant=_no_constant,
        )
    except ValueError as exc:
        raise WriteError(f"error parsing: {exc}") from None
    except RecursionError:
        raise WriteError("error parsing: exceeded max depth") from None
    coll: Any = ""
    doc: Any = None
    if isinstance(value, dict):
        for key, item in value.items():  # Go matches struct fields case-insensitively
            folded = key.lower()
            if folded == "coll":
                coll = "" if item is None else item
            elif folded == "doc":
                doc = item
        if not isinstance(coll, str):
            raise WriteError(
                f"error parsing: json: cannot unmarshal {_json_kind(coll)} into Go struct "
                "field DataMsg.coll of type string"
            )
    elif value is not None:  # null leaves the struct empty
        raise WriteError(
            f"error parsing: json: cannot unmarshal {_json_kind(value)} into Go value of type "
            "processor.DataMsg"
        )
    _check_insert(coll, doc)
    return coll, doc


def _go_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"json: cannot unmarshal number {text} into Go value of type float64")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    names: dict[type, str] = {str: "string", list: "array"}
    return names.get(type(value), "value")


def _check_insert(coll: str, doc: Any) -> None:
    """What the Go driver and MongoDB (4.2, KRE's) refuse, in ``InsertOne``'s words."""
    failed = "error inserting in MongoDB: "
    if doc is None:
        raise WriteError(failed + "document is nil")
    if not isinstance(doc, dict):
        raise WriteError(
            f"{failed}cannot transform type {_GO_TYPES.get(type(doc), 'interface {}')} to a "
            "BSON Document"
        )
    if coll == "":
        raise WriteError(f"{failed}Invalid namespace specified 'data.'")
    if "$" in coll or "\0" in coll:
        raise WriteError(f"{failed}Invalid collection name: {coll}")
    if coll.startswith("system."):
        raise WriteError(f"{failed}Invalid system namespace: data.{coll}")
    for key in doc:
        if key.startswith("$"):
            raise WriteError(f"{failed}Document can't have $ prefixed field names: {key}")
    if isinstance(doc.get("_id"), list):
        raise WriteError(f"{failed}can't use an array for _id")


def _prediction(doc: dict[str, Any]) -> dict[str, Any] | None:
    """``LocalStore.save_prediction`` arguments for a document shaped like the one kre-py and
    kre-go send to ``classificationMetrics``, else None (it stays a document)."""
    if not doc.keys() <= _PREDICTION_KEYS:
        return None
    text = ("date", "error", "predictedValue", "trueValue")
    if any(not isinstance(doc.get(k), str) for k in text):
        return None
    if not isinstance(doc.get("versionName", ""), str):
        return None
    return {
        "predicted_value": doc["predictedValue"],
        "true_value": doc["trueValue"],
        "extra": doc.get("extra"),
        "date": doc["date"],
        "error": doc["error"],
        "version": doc.get("versionName", ""),
    }


class Senders:
    """Which node sent a request, from its reply subject.

    Clients (kre-py's, nats.go, nats-py) receive replies on one ``_INBOX.<id>.*`` subscription of
    the connection that also subscribes to the node's input subject; nats-server's ``connz``
    lists both. One lookup per client (an unknown one is looked up again after a few seconds: a
    node may save before it subscribes), none for other reply subjects.

    Args:
        monitor: ``host:port`` of nats-server's monitoring endpoint.
        inputs: input subject -> ``(node, workflow)``.
    """

    def __init__(self, monitor: str, inputs: dict[str, tuple[str, str]]) -> None:
        self.url = f"http://{monitor}/connz?subs=1&limit=4096"
        self.inputs = inputs
        self._known: dict[str, tuple[str, str]] = {}
        self._unknown: dict[str, float] = {}  # inbox -> when to look again

    def resolve(self, replies: list[str]) -> dict[str, tuple[str, str]]:
        """``(node, workflow)`` of each reply subject (``("", "")`` when unknown)."""
        out: dict[str, tuple[str, str]] = {}
        missing: list[str] = []
        now = time.monotonic()
        for reply in replies:
            inbox = _inbox(reply)
            if inbox in self._known:
                out[reply] = self._known[inbox]
            elif inbox is None or self._unknown.get(inbox, 0.0) > now:
                out[reply] = ("", "")
            else:
                missing.append(reply)
        if missing:
            import urllib.request

            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:  # loopback only
                    conns = json.load(resp).get("connections") or []
            except (OSError, ValueError):
                conns = []
            if len(self._known) + len(self._unknown) > 4096:
                self._known.clear()
                self._unknown.clear()
            for reply in missing:
                out[reply] = ("", "")
                for conn in conns:
                    subs = conn.get("subscriptions_list") or ()
                    if any(_matches(s, reply) for s in subs):
                        out[reply] = next(
                            (self.inputs[s] for s in subs if s in self.inputs), out[reply]
                        )
                        break
                inbox = _inbox(reply) or reply
                if out[reply][0]:
                    self._known[inbox] = out[reply]
                else:
                    self._unknown[inbox] = now + _LOOK_AGAIN
        return out


def _inbox(reply: str) -> str | None:
    """The wildcard subscription a mux inbox reply goes through (``_INBOX.<id>.*``)."""
    head, dot, _ = reply.rpartition(".")
    return f"{head}.*" if dot and "." in head else None


def _matches(sub: str, subject: str) -> bool:
    pattern, words = sub.split("."), subject.split(".")
    for i, token in enumerate(pattern):
        if token == ">":
            return len(words) > i
        if i >= len(words) or (token != "*" and token != words[i]):
            return False
    return len(words) == len(pattern)


Answer = tuple[str, bytes]


class MongoWriter:
    """Stores requests and answers them, as KRE's writer does (see the module docstring).

    :meth:`submit` is cheap and thread-safe; a thread writes what arrived meanwhile in one
    transaction, then calls ``answer`` with ``(reply subject, payload)`` pairs.

    Args:
        store: where documents and predictions go.
        answer: called from the writer thread with the answers of a batch.
        senders: finds which node saved a prediction (optional).
        logger: where errors are logged (KRE's ``Error: ...`` lines, after ``mongo-writer:``).
    """

    def __init__(
        self,
        store: LocalStore,
        answer: Callable[[list[Answer]], None],
        *,
        senders: Senders | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.answer = answer
        self.senders = senders
        self.log = logger or logging.getLogger("krtlab.mongowriter")
        self._queue: queue.SimpleQueue[tuple[str, bytes] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="krtlab-mongo-writer", daemon=True)
        self._thread.start()

    def submit(self, reply: str, data: bytes) -> None:
        """Queue one request (``reply`` is its NATS reply subject)."""
        self._queue.put((reply, data))

    def stop(self, timeout: float = 5.0) -> None:
        """Write and answer what was queued, then end the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[tuple[str, bytes]] = []
            stop = item is None
            while item is not None:
                batch.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                stop = item is None
            if batch:
                try:
                    self.answer(self.write(batch))
                except Exception:  # never lose the thread: the next batch must still be served
                    self.log.exception(f"{WRITER_ID}: Error: the batch could not be written")
            if stop:
                return

    def write(self, batch: list[tuple[str, bytes]]) -> list[Answer]:
        """Store a batch of requests in one transaction; return the answers, in order."""
        answers: list[list[Any]] = []  # [reply, payload], payload None until written
        docs: list[tuple[str, dict[str, Any]]] = []
        preds: list[tuple[str, dict[str, Any]]] = []
        for reply, data in batch:
            try:
                coll, doc = decode(data)
            except _Panic as exc:
                self.log.error(f"{WRITER_ID}: Error: {exc}")
                continue
            except Exception as exc:  # WriteError: KRE's refusals; anything else fails alike
                self.log.error(f"{WRITER_ID}: Error: {exc}")
                answers.append([reply, FAILED])
                continue
            row = _prediction(doc) if coll == PREDICTIONS_COLLECTION else None
            if row is not None:
                preds.append((reply, row))
            else:
                docs.append((coll, doc))
            answers.append([reply, None])
        if preds and self.senders is not None:
            who = self.senders.resolve([reply for reply, _ in preds])
            for reply, row in preds:
                row["node"], row["workflow"] = who[reply]
        if docs or preds:
            try:
                self.store.save_many(docs, [row for _, row in preds])
            except Exception as exc:  # the store failed as a whole: every save of the batch did
                self.log.error(f"{WRITER_ID}: Error: error inserting in MongoDB: {exc}")
                written = FAILED
            else:
                written = OK
            for answer in answers:
                if answer[1] is None:
                    answer[1] = written
        out = []
        for reply, payload in answers:
            if reply:
                out.append((reply, payload))
            else:  # Go's msg.Respond without a reply subject
                self.log.error(
                    f"{WRITER_ID}: Error replaying to the data msg: nats: message does not "
                    "have a reply"
                )
        return out


def attach(
    nc: NatsConnection,
    subject: str,
    store: LocalStore,
    *,
    monitor: str = "",
    inputs: dict[str, tuple[str, str]] | None = None,
    logger: logging.Logger | None = None,
) -> MongoWriter:
    """Answer ``subject`` on ``nc`` (on the running loop) as KRE's mongo-writer; call
    :meth:`MongoWriter.stop` when done.

    Args:
        nc: the process's NATS connection (the entrypoint's).
        subject: ``KRT_NATS_MONGO_WRITER``.
        store: the version's local store.
        monitor: ``host:port`` of nats-server's monitoring endpoint, to record which node saved
            a prediction (with ``inputs``: input subject -> ``(node, workflow)``).
        logger: where errors go (default: stderr, KRE's log format, ``mongo-writer:`` first).
    """
    loop = asyncio.get_running_loop()
    if logger is None:
        from .context import KreFormatter

        logger = logging.getLogger("krtlab.mongowriter")
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(KreFormatter())
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
    log = logger

    def publish(answers: list[Answer]) -> None:
        for reply, payload in answers:
            try:
                nc.publish(reply, payload)
            except (ConnectionError, ValueError) as exc:
                log.error(f"{WRITER_ID}: Error replaying to the data msg: {exc}")

    def answer(answers: list[tuple[str, bytes]]) -> None:
        loop.call_soon_threadsafe(publish, answers)

    senders = Senders(monitor, inputs) if monitor and inputs else None
    writer = MongoWriter(
        store,
        answer,
        senders=senders,
        logger=logger,
    )
    writer.start()
    nc.subscribe(subject, lambda _subject, reply, data, _status: writer.submit(reply, data))
    return writer
