"""KRE's ``KreNatsMessage`` envelope, built at run time, and its gzip framing on NATS.

The envelope is what every KRT V1 component (entrypoint, kre-py, kre-go) puts on NATS::

    message KreNatsMessage {
      message Tracking { string node_name = 1; string start = 2; string end = 3; }
      string tracking_id = 1;  repeated Tracking tracking = 2;  string reply = 3;
      google.protobuf.Any payload = 4;  string error = 5;  bool replied = 6;
    }

It is described here from those documented fields (file ``kre_nats_msg.proto``, no package) and
added to a private descriptor pool, so a node's own ``kre_nats_msg_pb2`` never clashes with it;
the bytes are the same as those of the runners' generated code.

Messages over 1 MiB are gzipped (level 9) and recognised by the gzip magic bytes; a message that
is still over 1 MiB after compression is refused with the runners' wording.
"""

from __future__ import annotations

import gzip
import time
from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

__all__ = [
    "ENVELOPE_FILE",
    "GZIP_MAGIC",
    "MESSAGE_THRESHOLD",
    "MessageTooLarge",
    "decode",
    "encode",
    "envelope_class",
    "new_envelope",
    "utc_isoformat",
]

ENVELOPE_FILE = "kre_nats_msg.proto"
MESSAGE_THRESHOLD = 1024 * 1024  # the runners' MESSAGE_THRESHOLD, also nats-server's max_payload
GZIP_MAGIC = b"\x1f\x8b"

_F = descriptor_pb2.FieldDescriptorProto
_CLASS: Any = None


class MessageTooLarge(Exception):
    """A message stays over 1 MiB after gzip: KRE's NATS refuses it (``size``: gzipped)."""

    def __init__(self, message: str, size: int = 0) -> None:
        super().__init__(message)
        self.size = size


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(
        name=ENVELOPE_FILE, syntax="proto3", dependency=["google/protobuf/any.proto"]
    )
    fdp.options.go_package = "kre"
    msg = fdp.message_type.add(name="KreNatsMessage")
    tracking = msg.nested_type.add(name="Tracking")
    for number, name in enumerate(("node_name", "start", "end"), 1):
        tracking.field.add(name=name, number=number, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    fields = [
        ("tracking_id", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("tracking", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".KreNatsMessage.Tracking"),
        ("reply", 3, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("payload", 4, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".google.protobuf.Any"),
        ("error", 5, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("replied", 6, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, ""),
    ]
    for name, number, ftype, label, type_name in fields:
        field = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            field.type_name = type_name
    return fdp


def envelope_class() -> Any:
    """Return the ``KreNatsMessage`` class (built once per process, in a private pool)."""
    global _CLASS
    if _CLASS is None:
        pool = descriptor_pool.DescriptorPool()
        any_fdp = descriptor_pb2.FileDescriptorProto()
        any_pb2.DESCRIPTOR.CopyToProto(any_fdp)
        pool.Add(any_fdp)
        pool.Add(_file_descriptor())
        desc = pool.FindMessageTypeByName("KreNatsMessage")
        _CLASS = message_factory.GetMessageClass(desc)  # protobuf >= 4.21 (the dependency's)
    return _CLASS


def new_envelope(**fields: Any) -> Any:
    """A new ``KreNatsMessage`` with ``fields`` set."""
    return envelope_class()(**fields)


def encode(envelope: Any) -> bytes:
    """Serialize an envelope as the runners put it on NATS (gzipped over 1 MiB).

    Raises:
        MessageTooLarge: the gzipped bytes are still over 1 MiB.
    """
    data = envelope.SerializeToString()
    return compress(data)


def compress(data: bytes) -> bytes:
    """Gzip ``data`` when it is over 1 MiB, as the runners do (see :func:`encode`)."""
    if len(data) <= MESSAGE_THRESHOLD:
        return data
    packed = gzip.compress(data, compresslevel=9)
    if len(packed) > MESSAGE_THRESHOLD:
        raise MessageTooLarge(
            f"compressed message exceeds maximum size allowed of "
            f"{MESSAGE_THRESHOLD / 1024:.2f} KB (it is {len(packed) / 1024:.2f} KB gzipped, "
            f"{len(data) / 1024:.2f} KB raw)",
            len(packed),
        )
    return packed


def decode(data: bytes) -> Any:
    """Parse bytes from NATS into an envelope, gunzipping them first when they are gzipped."""
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    envelope = envelope_class()()
    envelope.ParseFromString(data)
    return envelope


_SECOND: list[Any] = [-1, ""]  # the last whole second formatted, reused within that second


def utc_isoformat() -> str:
    """The runners' tracking time, ``datetime.utcnow().isoformat()``: naive UTC, no ``Z``, and
    no fraction when the microseconds are 0. Twice per message, so built without datetime."""
    sec, us = divmod(time.time_ns() // 1000, 1_000_000)
    if sec != _SECOND[0]:
        _SECOND[:] = [sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))]
    return f"{_SECOND[1]}.{us:06d}" if us else _SECOND[1]
