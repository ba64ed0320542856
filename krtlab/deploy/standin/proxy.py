"""The runtime's public gRPC entrypoint: forwards every call to the PUBLISHED version.

In KRE the Ingress ``entrypoint.<domain>`` points at the ``active-entrypoint`` Service; here a
grpcio generic handler plays that part. Messages are forwarded as raw bytes (no proto needed);
server reflection (a bidirectional stream) is forwarded too, so clients that discover the
service through reflection (``grpcurl``, :func:`krtlab.runtime.client.call`) work through it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

__all__ = ["EntrypointProxy"]


def _timeout(context: grpc.ServicerContext) -> float | None:
    # without a client deadline grpc reports ~2**63 seconds, which overflows as a timeout
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e9 else remaining


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, proxy: EntrypointProxy) -> None:
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if "ServerReflection" in method:
            return grpc.stream_stream_rpc_method_handler(
                lambda it, ctx: self.proxy._stream(method, it, ctx)
            )
        return grpc.unary_unary_rpc_method_handler(
            lambda req, ctx: self.proxy._unary(method, req, ctx)
        )


class EntrypointProxy:
    """A gRPC server on ``host:<free port>`` forwarding to ``target()`` (``None``: UNAVAILABLE)."""

    def __init__(
        self, target: Callable[[], str | None], runtime_id: str, host: str = "127.0.0.1"
    ) -> None:
        self.target, self.runtime_id, self.host = target, runtime_id, host
        self.port = 0
        self._server: Any = None
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """``host:port`` of the runtime's entrypoint."""
        return f"{self.host}:{self.port}"

    def start(self) -> EntrypointProxy:
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([_Forward(self)])
        self.port = self._server.add_insecure_port(f"{self.host}:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1).wait()
            self._server = None
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()

    def _channel(self, context: grpc.ServicerContext) -> grpc.Channel:
        address = self.target()
        if address is None:
            context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"no version is published in runtime {self.runtime_id!r}",
            )
        assert address is not None
        with self._lock:
            if address not in self._channels:
                self._channels[address] = grpc.insecure_channel(address)
            return self._channels[address]

    def _unary(self, method: str, request: bytes, context: grpc.ServicerContext) -> bytes:
        channel = self._channel(context)
        call = channel.unary_unary(method)  # no serializers: raw bytes both ways
        try:
            return call(request, timeout=_timeout(context))
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
            raise  # unreachable: abort raises

    def _stream(
        self, method: str, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        channel = self._channel(context)
        try:
            yield from channel.stream_stream(method)(requests, timeout=_timeout(context))
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
