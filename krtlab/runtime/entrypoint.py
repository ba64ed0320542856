"""KRE's entrypoint, generated at start from ``public_input.proto``: gRPC in, NATS request out.

One unary method per rpc of ``service Entrypoint``, served with grpcio generic handlers from
the version's descriptors (no code generation) and with server reflection. Per request, as
KRE's entrypoint does: an envelope with ``tracking_id=uuid4`` and the request packed in
``payload`` (``reply`` left empty), gzip over 1 MiB, a NATS request to
``<version>-<rpc>-entrypoint`` within ``KRT_REQUEST_TIMEOUT``; a reply with ``error`` becomes
gRPC ``INTERNAL``, otherwise its payload is the response.

Beyond KRE, krtlab knows when a worker dies: requests in flight on its workflow fail at once
with ``UNAVAILABLE`` instead of waiting for the timeout, and new ones wait for the restart. A
workflow with a node that did not start answers ``UNAVAILABLE`` with the reason at once, and
an rpc whose workflow is not served (``krtlab serve --workflow``) ``UNIMPLEMENTED``.

It runs as its own process (``python -m krtlab.runtime.entrypoint``, like KRE's entrypoint
pod), with KRE's variables (``KRT_NATS_SERVER``, ``KRT_REQUEST_TIMEOUT``,
``KRT_NATS_SUBJECTS_FILE``) plus ``KRTLAB_ENTRYPOINT_CONFIG``: a JSON file with the listen
address, the version's descriptors, each rpc's workflow and types, and the subjects where it
announces itself and hears about workers going down. One asyncio loop (grpc.aio), one NATS
connection for every request, no per-request logging, and payloads passed on as bytes.

The process also answers ``KRT_NATS_MONGO_WRITER`` as KRE's mongo-writer does (see
:mod:`krtlab.runtime.mongowriter`), into the store at ``KRTLAB_STORE``.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import secrets
import signal
import sys
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

from .envelope import MessageTooLarge, compress, decode, envelope_class
from .mongowriter import WRITER_ID, MongoWriter, attach
from .natsserver import NatsConnection
from .procs import ServeError, die_with_parent
from .store import LocalStore

__all__ = ["Entrypoint", "Gate", "ProtoWeb", "Route", "WorkerExited", "main"]

TYPE_URL_PREFIX = "type.googleapis.com/"
MAX_GRPC_MESSAGE = 64 * 1024 * 1024  # gRPC's 4 MiB default would stop gzip-able payloads


class WorkerExited(Exception):
    """A worker of the request's workflow exited while the request was in flight."""


class _NoResponders(Exception):
    pass


class _Timeout(Exception):
    pass


@dataclass
class Gate:
    """Whether a workflow can take requests: every worker up, or why not."""

    workflow: str
    up: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""  # why it is down
    failing: bool = False  # crash-looping: fail at once instead of waiting for a restart
    inflight: set[asyncio.Future[bytes]] = field(default_factory=set)

    def open(self) -> None:
        self.reason, self.failing = "", False
        self.up.set()

    def close(self, reason: str, *, failing: bool = False) -> None:
        """Mark the workflow down and fail every request in flight on it."""
        self.reason, self.failing = reason, failing
        self.up.clear()
        for fut in list(self.inflight):
            if not fut.done():
                fut.set_exception(WorkerExited(reason))
        self.inflight.clear()


@dataclass
class Route:
    """One rpc: the NATS subject of its workflow's first node and its message types."""

    rpc: str
    subject: str
    gate: Gate
    input_cls: Any
    output_name: str

    @functools.cached_property
    def input_type_url(self) -> str:
        return TYPE_URL_PREFIX + self.input_cls.DESCRIPTOR.full_name


class Entrypoint:
    """The gRPC server and its NATS client; create and use it on one asyncio loop.

    Args:
        service: full service name (``entrypoint.Entrypoint``).
        routes: rpc name -> :class:`Route`.
        files: every ``FileDescriptorProto`` of the version (dependencies first), for
            reflection.
        timeout: seconds to wait for a workflow's answer (``KRT_REQUEST_TIMEOUT``).
        unserved: rpc name -> why it is not served (answered ``UNIMPLEMENTED``).
    """

    def __init__(
        self,
        service: str,
        routes: dict[str, Route],
        files: Iterable[descriptor_pb2.FileDescriptorProto],
        *,
        timeout: float,
        unserved: dict[str, str] | None = None,
    ) -> None:
        self.service = service
        self.routes = routes
        self.unserved = dict(unserved or {})
        self.timeout = timeout
        self._files = list(files)
        self._server: Any = None
        self._nc: Any = None
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._inbox = ""
        self._seq = 0
        self._Envelope = envelope_class()
        self.mismatches: dict[str, str] = {}  # rpc -> type the last node returned instead
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def connect(self, nats_url: str) -> NatsConnection:
        """Connect to NATS and listen for replies on one wildcard inbox."""
        self._nc = await NatsConnection.connect(nats_url, name="entrypoint", on_close=self._lost)
        self._inbox = f"_INBOX.{secrets.token_hex(11)}."
        self._nc.subscribe(self._inbox + "*", self._on_reply)
        return self._nc

    def _lost(self, exc: Exception | None) -> None:
        for gate in self.gates():
            gate.close("the NATS connection was lost", failing=True)

    def gates(self) -> list[Gate]:
        return list({id(r.gate): r.gate for r in self.routes.values()}.values())

    async def start(self, host: str, port: int) -> int:
        """Listen for gRPC on ``host:port`` (0: a free port); return the port."""
        from grpc_reflection.v1alpha import reflection

        self._server = grpc.aio.server(
            options=[
                ("grpc.so_reuseport", 0),  # two servers on one port would split the traffic
                ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE),
                ("grpc.max_send_message_length", MAX_GRPC_MESSAGE),
            ]
        )
        handlers = {
            rpc: grpc.unary_unary_rpc_method_handler(
                functools.partial(self._refuse, self.unserved[rpc])
                if rpc in self.unserved
                else functools.partial(self._handle, route)
            )
            for rpc, route in self.routes.items()
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(self.service, handlers),)
        )
        reflection.enable_server_reflection(
            (self.service, reflection.SERVICE_NAME), self._server, pool=self._reflection_pool()
        )
        try:
            self.port = self._server.add_insecure_port(f"{host}:{port}")
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise ServeError(
                f"cannot listen for gRPC on {host}:{port}: the port is in use (another served "
                "version?); choose another port, or port=0 for a free one"
            )
        await self._server.start()
        return self.port

    def _reflection_pool(self) -> descriptor_pool.DescriptorPool:
        from grpc_reflection.v1alpha import reflection_pb2

        pool = descriptor_pool.DescriptorPool()
        names = set()
        for fdp in self._files:
            pool.Add(fdp)
            names.add(fdp.name)
        own = descriptor_pb2.FileDescriptorProto()
        reflection_pb2.DESCRIPTOR.CopyToProto(own)
        if own.name not in names:
            pool.Add(own)
        return pool

    async def stop(self, grace: float = 0.5) -> None:
        if self._server is not None:
            await self._server.stop(grace)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(WorkerExited("the service is stopping"))
        if self._nc is not None:
            self._nc.close()

    # -- requests ------------------------------------------------------------------------------

    def _on_reply(self, subject: str, reply: str, data: bytes, status: str) -> None:
        fut = self._pending.get(subject[len(self._inbox) :])
        if fut is None or fut.done():
            return  # answered already (early reply, then an error) or given up on
        if status == "503":
            fut.set_exception(_NoResponders())
        else:
            fut.set_result(data)

    async def request(self, route: Route, payload: bytes) -> bytes:
        """Send ``payload`` (a serialized request) through the workflow; return the reply
        payload bytes. Raises grpc-mappable errors (see :meth:`_handle`)."""
        gate = route.gate
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        envelope = self._Envelope(tracking_id=str(uuid.uuid4()))
        envelope.payload.type_url = route.input_type_url
        envelope.payload.value = payload
        data = compress(envelope.SerializeToString())
        while True:
            if not gate.up.is_set():
                await self._wait_open(gate, deadline - loop.time())
            try:
                return await self._send(route, data, deadline)
            except _NoResponders:
                # Nobody subscribes to the first subject: its worker is down and krtlab has
                # not said so yet. Nothing was delivered, so sending again later is safe.
                if loop.time() + 0.05 >= deadline:
                    raise
                await asyncio.sleep(0.02)

    @staticmethod
    async def _wait_open(gate: Gate, timeout: float) -> None:
        if gate.failing:
            raise WorkerExited(gate.reason)
        try:
            await asyncio.wait_for(gate.up.wait(), max(timeout, 0.0))
        except asyncio.TimeoutError:
            raise WorkerExited(gate.reason or "workers are not ready") from None

    async def _send(self, route: Route, data: bytes, deadline: float) -> bytes:
        loop = asyncio.get_running_loop()
        self._seq += 1
        token = str(self._seq)
        fut: asyncio.Future[bytes] = loop.create_future()
        self._pending[token] = fut
        route.gate.inflight.add(fut)
        timer = loop.call_at(deadline, _expire, fut)
        try:
            self._nc.publish(route.subject, data, reply=self._inbox + token)
            return await fut
        finally:
            timer.cancel()
            del self._pending[token]
            route.gate.inflight.discard(fut)

    @staticmethod
    async def _refuse(why: str, request: bytes, context: Any) -> bytes:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, why)
        return b""  # not reached: abort raises

    async def _handle(self, route: Route, request: bytes, context: Any) -> bytes:
        try:
            route.input_cls.FromString(request)  # KRE's entrypoint parses before packing
        except Exception:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"cannot parse {route.input_cls.__name__}"
            )
        try:
            reply = await self.request(route, request)
        except WorkerExited as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except _Timeout:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no answer from workflow {route.gate.workflow!r} within {self.timeout:g} s "
                "(KRT_REQUEST_TIMEOUT)",
            )
        except _NoResponders:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"no worker listens on {route.subject!r} (workflow {route.gate.workflow!r})",
            )
        except MessageTooLarge as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"request too large: {exc}")
        envelope = decode(reply)
        if envelope.error:
            await context.abort(grpc.StatusCode.INTERNAL, envelope.error)
        payload = envelope.payload
        if payload.type_url[payload.type_url.rfind("/") + 1 :] == route.output_name:
            return payload.value  # already the response's bytes
        # KRE unpacks without checking the result: a wrong type gives an empty response.
        if route.rpc not in self.mismatches:  # say it once, not per request
            self.mismatches[route.rpc] = payload.type_url
            sys.stderr.write(
                f"rpc {route.rpc}: the last node answered {payload.type_url or 'nothing'}, not "
                f"{route.output_name}; the client gets an empty response, as from KRE\n"
            )
        return b""


def _expire(fut: asyncio.Future[bytes]) -> None:
    if not fut.done():
        fut.set_exception(_Timeout())


class ProtoWeb:
    """The entrypoint's web port: the version's proto files, listed like KRE's nginx autoindex
    of ``/proto`` (``/`` and ``/proto/`` list them; ``/proto/<file>`` serves one)."""

    def __init__(self, root: Path, host: str, port: int) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="krtlab-proto-web", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # no per-request logging


# -- the process ----------------------------------------------------------------------------------


def _message_classes(pool: Any, names: Iterable[str]) -> dict[str, Any]:
    from google.protobuf import message_factory

    # protobuf >= 4.21 (the dependency's floor)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in names
    }


async def _serve(config: dict[str, Any]) -> int:
    fds = descriptor_pb2.FileDescriptorSet.FromString(Path(config["descriptors"]).read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    classes = _message_classes(pool, {r["input"] for r in config["routes"].values()})
    subjects = json.loads(Path(os.environ["KRT_NATS_SUBJECTS_FILE"]).read_text(encoding="utf-8"))
    gates = {r["workflow"]: Gate(r["workflow"]) for r in config["routes"].values()}
    for gate in gates.values():
        gate.up.set()
    for workflow, reason in config.get("down", {}).items():  # a node did not start
        if workflow in gates:
            gates[workflow].close(reason, failing=True)
    routes = {
        rpc: Route(rpc, subjects[rpc], gates[r["workflow"]], classes[r["input"]], r["output"])
        for rpc, r in config["routes"].items()
    }
    timeout = float(os.environ.get("KRT_REQUEST_TIMEOUT") or 30)
    ep = Entrypoint(
        config["service"], routes, fds.file, timeout=timeout, unserved=config.get("unserved")
    )
    nc = await ep.connect(os.environ["KRT_NATS_SERVER"])
    done = asyncio.Event()

    def lost(exc: Exception | None) -> None:  # fail what waits, then exit: krtlab restarts us
        ep._lost(exc)
        done.set()

    nc.on_close = lost
    writer = _mongo_writer(nc, config)
    if writer is not None:  # the Go nodes wait for it, as they start once KRE's writer is up
        nc.publish(config["ready_subject"], WRITER_ID.encode())

    def control(subject: str, reply: str, data: bytes, status: str) -> None:
        order = json.loads(data)  # {"workflow", "up", "reason", "failing"} from the supervisor
        gate = gates.get(order.get("workflow", ""))
        if gate is not None:
            if order["up"]:
                gate.open()
            else:
                gate.close(order["reason"], failing=order["failing"])
        if reply:  # the supervisor waits until the orders before this one are applied
            nc.publish(reply, b"ok")

    nc.subscribe(config["control_subject"], control)
    host = config["host"]
    try:
        port = await ep.start(host, int(config["port"]))
        web = ProtoWeb(Path(config["web_root"]), host, int(config["web_port"]))
    except (ServeError, OSError) as exc:  # a port in use: say so, serve() reports it
        if isinstance(exc, OSError):
            exc = ServeError(
                f"cannot serve the protos on {host}:{config['web_port']}: {exc.strerror}; "
                "choose another web port, or none for a free one"
            )
        sys.stderr.write(f"{exc}\n")
        await ep.stop(grace=0)
        if writer is not None:
            writer.stop()
        return 2
    nc.publish(config["ready_subject"], f"entrypoint {port} {web.port}".encode())
    await nc.flush()
    terminated: list[bool] = []

    def terminate() -> None:  # krtlab stopping
        terminated.append(True)
        done.set()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminate)
    await done.wait()
    await ep.stop(grace=0.2)
    web.stop()
    if writer is not None:  # write and answer what it has, then end its thread
        await asyncio.get_running_loop().run_in_executor(None, writer.stop)
        for _ in range(2):  # the answers, then the bytes
            await asyncio.sleep(0)
    if terminated:
        return 0
    sys.stderr.write("the NATS connection was lost\n")
    return 1


def _mongo_writer(nc: NatsConnection, config: dict[str, Any]) -> MongoWriter | None:
    writer_config = config.get("mongo_writer")
    if not writer_config or not os.environ.get("KRTLAB_STORE"):
        return None
    inputs = {subject: (node, wf) for subject, (node, wf) in writer_config["inputs"].items()}
    return attach(
        nc,
        writer_config["subject"],
        LocalStore(os.environ["KRTLAB_STORE"]),
        monitor=os.environ.get("KRTLAB_NATS_MONITOR", ""),
        inputs=inputs,
    )


def main() -> int:
    """Entry point of ``python -m krtlab.runtime.entrypoint``."""
    die_with_parent()
    with open(os.environ["KRTLAB_ENTRYPOINT_CONFIG"], encoding="utf-8") as f:
        config = json.load(f)
    try:
        return asyncio.run(_serve(config))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
