"""A KRE node runner with the kre-py 1.x contract: ``python -m krtlab.runtime.worker``.

One process per workflow-node occurrence, configured only by KRE's environment variables
(``KRT_BASE_PATH``, ``KRT_HANDLER_PATH``, ``KRT_NATS_INPUT``/``KRT_NATS_OUTPUT``, ...). It does
what the kre-py runner was observed to do, step for step:

* every ``KRT_*`` variable is mandatory (``error reading config: the 'X' env var is missing``);
* the handler file is loaded as module ``worker`` with its folder *appended* to ``sys.path``;
* it subscribes to ``KRT_NATS_INPUT`` in queue group ``queue_<input>``, then builds ``ctx`` and
  runs ``init(ctx)`` (sync or async);
* per message: gunzip, parse (undecodable bytes are dropped silently), take the NATS reply
  subject into ``envelope.reply``, ``await handler(ctx, envelope.payload)``, append a tracking
  entry (naive UTC isoformat), pack the result, gzip over 1 MiB, plain PUB to
  ``KRT_NATS_OUTPUT`` (or to ``envelope.reply`` on the last node), then flush;
* any failure publishes ``KreNatsMessage(error="error in '<node>': <err>")`` straight to
  ``envelope.reply``.

Only ``ctx`` differs from KRE's: it is krtlab's local one (a SQLite store instead of Mongo and
InfluxDB), the same object :meth:`Version.run` gives handlers, so a node behaves the same in
process and served. Besides KRE's variables it reads ``KRTLAB_READY_SUBJECT`` (optional): once
``init`` is done it publishes its ``KRT_NODE_ID`` there, so krtlab knows it is ready.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import inspect
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from krtlab.runtime.context import _Request
from krtlab.runtime.envelope import (
    MessageTooLarge,
    compress,
    decode,
    envelope_class,
    utc_isoformat,
)

__all__ = ["REQUIRED_ENV", "NodeRunner", "main"]

# Everything kre-py 1.x reads with os.environ[...] (no defaults).
REQUIRED_ENV = (
    "KRT_VERSION_ID",
    "KRT_VERSION",
    "KRT_NODE_NAME",
    "KRT_NATS_SERVER",
    "KRT_NATS_INPUT",
    "KRT_NATS_OUTPUT",
    "KRT_NATS_MONGO_WRITER",
    "KRT_BASE_PATH",
    "KRT_HANDLER_PATH",
    "KRT_MONGO_URI",
    "KRT_INFLUX_URI",
)
FLUSH_TIMEOUT = 10  # seconds, hard-coded in kre-py


def read_config(env: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, str]:
    """KRE's variables, all mandatory, failing with kre-py's message."""
    config = {}
    for key in REQUIRED_ENV:
        if key not in env:
            raise Exception(f"error reading config: the '{key}' env var is missing")
        config[key] = env[key]
    return config


def make_logger(version: str, node: str) -> logging.Logger:
    """kre-py's logger: ``%(asctime)s.%(msecs)03dZ %(levelname)s %(message)s`` in UTC, to
    stderr (the same logger ``ctx.logger`` is, as in kre-py)."""
    from krtlab.runtime.context import node_logger

    return node_logger(version, node, stream=sys.stderr)


def load_handler(
    base_path: str, handler_path: str, logger: logging.Logger
) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """Load ``handler`` (and optional ``init``) as kre-py does; exit 1 when the file fails.

    protoc 3.x ``_pb2.py`` files of the bundle, which kre-py's protobuf 3.13 imports and current
    protobuf refuses, are replaced by compatible modules (:mod:`krtlab.runtime.legacy_pb2`).
    """
    from krtlab.runtime.legacy_pb2 import install

    path = os.path.join(base_path, handler_path)
    install(base_path)  # for the worker's life: a handler may import later
    sys.path.append(os.path.dirname(path))
    try:
        spec = importlib.util.spec_from_file_location("worker", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as err:
        logger.error(f"error loading handler script {path}: {err}")
        logger.error(traceback.format_exc())
        sys.exit(1)
    if not hasattr(module, "handler"):
        raise Exception(f"handler module '{path}' must implement a function 'handler(ctx, data)'")
    return module.handler, getattr(module, "init", None)


class NodeRunner:
    """Subscribes to the node's input subject and runs every envelope through the handler."""

    def __init__(self, config: dict[str, str], logger: logging.Logger) -> None:
        self.config = config
        self.logger = logger
        self.node = config["KRT_NODE_NAME"]
        self.input = config["KRT_NATS_INPUT"]
        self.output = config["KRT_NATS_OUTPUT"]
        self.is_last = self.output == ""
        self.handler, self.init = load_handler(
            config["KRT_BASE_PATH"], config["KRT_HANDLER_PATH"], logger
        )
        self.ctx: Any = None
        self.runner: Any = None  # the kre-py tag this worker behaves like (KRTLAB_RUNNER)
        self.nc: Any = None
        self.current: Any = None  # envelope being processed (messages run one at a time)
        self.closed = asyncio.Event()
        self.Envelope = envelope_class()
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect, subscribe, build ctx, run init, announce readiness (in kre-py's order)."""
        from krtlab.runtime.natsserver import NatsConnection

        self.nc = await NatsConnection.connect(
            self.config["KRT_NATS_SERVER"],
            name=f"{self.config['KRT_VERSION']}-{self.node}",
            on_close=lambda exc: self.closed.set(),
        )
        queue = f"queue_{self.input}"
        self.nc.subscribe(self.input, self._received, queue=queue)
        self.logger.info(f"listening to '{self.input}' subject with queue '{queue}'")
        self.ctx = self.make_context()
        if self.init is not None:
            result = self.init(self.ctx)
            if inspect.isawaitable(result):
                await result
        ready = os.environ.get("KRTLAB_READY_SUBJECT")
        if ready:
            self.nc.publish(ready, os.environ.get("KRT_NODE_ID", self.node).encode())
        await self.nc.flush(FLUSH_TIMEOUT)

    def _received(self, subject: str, reply: str, data: bytes, status: str) -> None:
        # One message at a time, in arrival order, like a kre-py subscription.
        self._queue.append((reply, data))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                reply, data = self._queue.popleft()
                await self.on_message(reply, data)
        finally:
            self._task = None

    def make_context(self) -> Any:
        from krtlab.runtime.context import Context
        from krtlab.runtime.store import LocalStore, store_path
        from krtlab.spec.runners import kre_py_runner

        version = self.config["KRT_VERSION"]
        store = LocalStore(os.environ.get("KRTLAB_STORE") or store_path(version))
        self.runner = kre_py_runner(os.environ.get("KRTLAB_RUNNER", ""))
        return Context.for_runner(
            self.runner,
            base_path=self.config["KRT_BASE_PATH"],
            version=version,
            node_name=self.node,
            store=store,
            workflow=os.environ.get("KRT_WORKFLOW_NAME", ""),
            reply=self.early_reply,
            logger=self.logger,
        )

    async def on_message(self, msg_reply: str, data: bytes) -> None:
        """Process one NATS message (``msg_reply`` is its reply subject) as kre-py does."""
        start = utc_isoformat()
        try:
            envelope = decode(data)
        except Exception:
            return  # kre-py parses outside its try block: undecodable input is dropped
        self.current = envelope
        try:
            if msg_reply == "" and envelope.reply == "":
                raise Exception("the reply subject was not found")
            if msg_reply:
                envelope.reply = msg_reply
            ctx = self.ctx  # None before init ran, as in kre-py
            if ctx is not None:  # per message: ctx.early_exit() marks this one only
                ctx = ctx._bind(_Request(envelope.replied, self.early_reply, tracked=False))
            result = await self.handler(ctx, envelope.payload)
            out = self.Envelope(
                tracking_id=envelope.tracking_id, reply=envelope.reply, replied=envelope.replied
            )
            out.tracking.extend(envelope.tracking)
            out.payload.Pack(result)
            out.tracking.add(node_name=self.node, start=start, end=utc_isoformat())
            if self.is_last and envelope.replied:
                return  # replied early with ctx.reply: the entrypoint has its answer
            # the last node, or ctx.early_exit() (kre-py 2.1.2+): the answer goes to the entrypoint
            done = self.is_last or (ctx is not None and ctx._req.exited)
            subject = envelope.reply if done else self.output
            self.nc.publish(subject, self._compress(out.SerializeToString()))
            await self.nc.flush(FLUSH_TIMEOUT)
        except Exception as err:
            self.logger.error(f"error executing handler: {err}\n{traceback.format_exc()}")
            error = self.Envelope(error=f"error in '{self.node}': {err}")
            try:
                self.nc.publish(envelope.reply, error.SerializeToString())
            except Exception as exc:
                self.logger.error(f"error publishing the error to '{envelope.reply}': {exc}")

    async def early_reply(self, response: Any) -> None:
        """``await ctx.reply(msg)``: answer the entrypoint now, let the workflow go on."""
        envelope = self.current
        if envelope is None:
            raise Exception("there is no request to reply to")
        if envelope.replied:
            raise Exception("error the message was replied previously")
        envelope.replied = True
        out = self.Envelope(tracking_id=envelope.tracking_id, reply=envelope.reply, replied=True)
        out.tracking.extend(envelope.tracking)
        out.payload.Pack(response)
        self.nc.publish(envelope.reply, self._compress(out.SerializeToString()))
        await self.nc.flush(FLUSH_TIMEOUT)

    def _compress(self, data: bytes) -> bytes:
        """Gzip over 1 MiB; still too big: refused in this node's runner's own words."""
        try:
            return compress(data)
        except MessageTooLarge as exc:
            if self.runner is None:
                raise
            raise Exception(self.runner.compression_error(exc.size)) from None


async def _run() -> int:
    config = read_config()
    logger = make_logger(config["KRT_VERSION"], config["KRT_NODE_NAME"])
    runner = NodeRunner(config, logger)
    await runner.start()
    terminated: list[bool] = []

    def terminate() -> None:  # krtlab stopping: end cleanly, so the store flushes at exit
        terminated.append(True)
        runner.closed.set()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminate)
    await runner.closed.wait()
    if terminated:
        return 0
    logger.error("the NATS connection was closed")
    return 1


def main() -> int:
    """Entry point of ``python -m krtlab.runtime.worker``."""
    from krtlab.runtime.procs import die_with_parent

    die_with_parent()
    # -m puts the working directory first on sys.path; kre-py's handlers never see it.
    cwd = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", cwd)]
    try:
        return asyncio.run(_run())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
