"""Query a KRE entrypoint (served by krtlab or by KRE) over gRPC, JSON in and out.

The message types come from the version's proto file (``proto=``) or, without it, from the
server's reflection, as ``grpcurl`` does. Used by ``krtlab call`` and by
:meth:`krtlab.runtime.serve.Service.call` (which has the version's classes already).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from krtlab.errors import CallError, ServeError, SpecError
from krtlab.spec.suggest import did_you_mean

__all__ = ["CallError", "call", "message_to_dict", "resolve_address", "to_message"]

_MAX_MESSAGE = 64 * 1024 * 1024


def to_message(cls: Any, request: Any, fields: Mapping[str, Any]) -> Any:
    """A ``cls`` message from a message, a dict, a JSON string or keyword fields."""
    from google.protobuf import json_format, message

    if isinstance(request, message.Message):
        if request.DESCRIPTOR.full_name != cls.DESCRIPTOR.full_name:
            raise SpecError(
                f"expected a {cls.DESCRIPTOR.full_name} request, got {request.DESCRIPTOR.full_name}"
            )
        out = cls.FromString(request.SerializeToString())  # also converts foreign classes
        if fields:
            json_format.ParseDict(dict(fields), out)
        return out
    if isinstance(request, str):
        try:
            request = json.loads(request) if request.strip() else {}
        except ValueError as exc:
            raise SpecError(f"the request is not valid JSON: {exc}") from None
    data = dict(request or {})
    data.update(fields)
    try:
        return json_format.ParseDict(data, cls())
    except json_format.ParseError as exc:
        raise SpecError(f"not a valid {cls.DESCRIPTOR.full_name}: {exc}") from None


def message_to_dict(msg: Any) -> dict[str, Any]:
    """JSON-ready dict with proto field names and every field, defaults included."""
    from google.protobuf import json_format

    params = inspect.signature(json_format.MessageToDict).parameters
    flag = (
        "always_print_fields_with_no_presence"
        if "always_print_fields_with_no_presence" in params
        else "including_default_value_fields"  # protobuf < 5.26
    )
    options: dict[str, Any] = {flag: True}
    return json_format.MessageToDict(msg, preserving_proto_field_name=True, **options)


def _split(rpc: str) -> tuple[str | None, str]:
    """``Rpc``, ``pkg.Service/Rpc`` or ``pkg.Service.Rpc`` -> (service or None, rpc)."""
    rpc = rpc.lstrip("/")
    if "/" in rpc:
        service, _, name = rpc.rpartition("/")
        return service, name
    if "." in rpc:
        service, _, name = rpc.rpartition(".")
        return service, name
    return None, rpc


def _pool_from_proto(path: str | os.PathLike[str]) -> Any:
    from krtlab.protos import Registry, compile_protos

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServeError(f"cannot read {file}: {exc.strerror}") from None
    sources = {file.name: text}
    for name in re.findall(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"', text, re.M):
        sibling = file.parent / name
        if not name.startswith("google/") and sibling.is_file():
            sources[name] = sibling.read_text(encoding="utf-8")
    fileset = compile_protos(sources)
    package = fileset.package(file.name)
    services = [f"{package}.{s}" if package else s for s in fileset.services(file.name)]
    return Registry(fileset).pool, services


def _pool_from_reflection(channel: Any) -> tuple[Any, list[str]]:
    from google.protobuf import descriptor_pool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    db = ProtoReflectionDescriptorDatabase(channel)
    return descriptor_pool.DescriptorPool(db), list(db.get_services())


def _find_method(pool: Any, services: list[str], rpc: str) -> Any:
    service, name = _split(rpc)
    candidates = [service] if service else services
    found = []
    for svc in candidates:
        if svc.startswith("grpc.reflection."):
            continue
        try:
            desc = pool.FindServiceByName(svc)
        except KeyError:
            continue
        method = desc.methods_by_name.get(name)
        if method is not None:
            found.append(method)
    if not found:
        text = f"no rpc {rpc!r} in {', '.join(candidates) or 'the server'}"
        hint = did_you_mean(name, _rpc_names(pool, candidates))
        raise ServeError(f"{text}; {hint}" if hint else text)
    return found[0]


def _rpc_names(pool: Any, services: list[str]) -> list[str]:
    """The rpcs of ``services`` (reflection's own left out), for did-you-mean."""
    names = []
    for svc in services:
        if svc.startswith("grpc.reflection."):
            continue
        try:
            names += [m.name for m in pool.FindServiceByName(svc).methods]
        except KeyError:
            continue
    return names


def resolve_address(address: str, tls: bool | None = None) -> tuple[str, bool]:
    """``(host:port, use TLS)`` for ``address``.

    A bare host (KRE's ``runtime.entrypointAddress`` is ``entrypoint.<baseDomain>``, an Ingress
    host) gets port 443. ``tls=None`` means TLS for port 443 (so for a bare host) and plaintext
    for any other explicit port (krtlab's own services, the stand-in, a port-forward).
    """
    address = address.strip()
    for scheme, secure in (("https://", True), ("grpcs://", True), ("http://", False)):
        if address.lower().startswith(scheme):  # pasted as a URL: the scheme says TLS or not
            address = address[len(scheme) :].rstrip("/")
            tls = secure if tls is None else tls
    host, port = address, ""
    if address.startswith("["):  # [::1]:9000
        close = address.find("]")
        host, rest = address[: close + 1], address[close + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    elif ":" in address:  # a bare IPv6 address
        host = f"[{address}]"
    if not host:
        raise ServeError(f"no host in the address {address!r}: use host:port")
    if port and not port.isdigit():
        raise ServeError(f"bad port {port!r} in the address {address!r}: use host:port")
    port = port or "443"
    return f"{host}:{port}", (port == "443") if tls is None else tls


def _channel(target: str, tls: bool, root_certificates: Any, options: list) -> Any:
    import grpc

    if not tls:
        return grpc.insecure_channel(target, options=options)
    roots = None
    if root_certificates is not None:
        try:
            roots = Path(root_certificates).read_bytes()
        except OSError as exc:
            raise ServeError(f"cannot read {root_certificates}: {exc.strerror}") from None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.secure_channel(target, credentials, options=options)


def call(
    address: str,
    rpc: str,
    request: Any = None,
    /,
    *,
    proto: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
    tls: bool | None = None,
    root_certificates: str | os.PathLike[str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Call ``rpc`` on the entrypoint at ``address`` and return the response as a dict.

    Args:
        address: ``host:port``, or a bare host such as KRE's ``entrypoint.<baseDomain>``
            (port 443, TLS).
        rpc: ``PyGreet`` (looked up in ``service Entrypoint``) or ``entrypoint.Entrypoint/PyGreet``.
        request: a dict or a JSON string (``fields`` are merged over it).
        proto: the entrypoint's ``.proto`` file; without it the server's reflection is used.
        timeout: seconds.
        tls: use TLS; None decides from the port (443 or none: TLS; any other: plaintext),
            see :func:`resolve_address`.
        root_certificates: a PEM file of CA certificates to trust (default: the system's),
            for a server whose certificate a private CA signed.

    Raises:
        CallError: the server answered with an error status.
        ServeError: the rpc or the server cannot be found.
    """
    import grpc
    from google.protobuf import message_factory

    options = [
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
    ]
    target, secure = resolve_address(address, tls)
    with _channel(target, secure, root_certificates, options) as channel:
        try:
            if proto is not None:
                pool, services = _pool_from_proto(proto)
            else:
                pool, services = _pool_from_reflection(channel)
            method = _find_method(pool, services, rpc)
        except grpc.RpcError as exc:
            raise CallError.from_rpc_error("reflection", exc) from None
        in_cls = message_factory.GetMessageClass(method.input_type)
        out_cls = message_factory.GetMessageClass(method.output_type)
        msg = to_message(in_cls, request, fields)
        stub = channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=out_cls.FromString,
        )
        try:
            response = stub(msg, timeout=timeout)
        except grpc.RpcError as exc:
            raise CallError.from_rpc_error(method.name, exc) from None
    return message_to_dict(response)
