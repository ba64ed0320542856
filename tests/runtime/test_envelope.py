"""The KreNatsMessage envelope: same bytes as protoc's, gzip framing, tracking times."""

from __future__ import annotations

import gzip
import os
import random
import re

import pytest
from google.protobuf import timestamp_pb2, wrappers_pb2

from krtlab.protos import Registry, compile_protos
from krtlab.runtime import envelope as env

# The documented proto (krt-v1 reference, section 4.3), compiled by protoc for comparison.
KRE_NATS_MSG = """
syntax = "proto3";
option go_package = "kre";
import "google/protobuf/any.proto";
message KreNatsMessage {
  message Tracking { string node_name = 1; string start = 2; string end = 3; }
  string tracking_id = 1;
  repeated Tracking tracking = 2;
  string reply = 3;
  google.protobuf.Any payload = 4;
  string error = 5;
  bool replied = 6;
}
"""


@pytest.fixture(autouse=True)
def _fresh_envelope_class(monkeypatch):
    """Each test builds the envelope class as a fresh process does (it is built once per
    process), so each one checks the building too (and ``make mutate`` sees that it does)."""
    monkeypatch.setattr(env, "_CLASS", None)


@pytest.fixture(scope="module")
def protoc_class():
    registry = Registry(compile_protos({"kre_nats_msg.proto": KRE_NATS_MSG}))
    return registry.message_class("KreNatsMessage")


def _fill(msg):
    msg.tracking_id = "0b7c1f9e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"
    msg.reply = "_INBOX.abc.1"
    msg.replied = True
    msg.error = ""
    t = msg.tracking.add()
    t.node_name, t.start, t.end = "etl", "2026-11-25T10:00:00.123456", "2026-11-25T10:00:00.2"
    msg.payload.Pack(wrappers_pb2.StringValue(value="John"))
    return msg


def test_same_bytes_as_protoc_generated_code(protoc_class):
    ours = _fill(env.new_envelope()).SerializeToString(deterministic=True)
    theirs = _fill(protoc_class()).SerializeToString(deterministic=True)
    assert ours == theirs
    parsed = env.decode(theirs)
    assert parsed.tracking[0].node_name == "etl" and parsed.replied
    value = wrappers_pb2.StringValue()
    assert parsed.payload.Unpack(value) and value.value == "John"


def test_descriptor_matches_the_documented_fields():
    desc = env.envelope_class().DESCRIPTOR
    assert desc.file.name == "kre_nats_msg.proto" and desc.file.package == ""
    fields = {f.name: f.number for f in desc.fields}
    assert fields == {
        "tracking_id": 1,
        "tracking": 2,
        "reply": 3,
        "payload": 4,
        "error": 5,
        "replied": 6,
    }
    nested = {f.name: f.number for f in desc.nested_types_by_name["Tracking"].fields}
    assert nested == {"node_name": 1, "start": 2, "end": 3}
    # a private pool: the default one stays free for a node's own kre_nats_msg_pb2
    from google.protobuf import descriptor_pool

    with pytest.raises(KeyError):
        descriptor_pool.Default().FindFileByName("kre_nats_msg.proto")


def test_payload_is_a_real_any():
    msg = env.new_envelope()
    msg.payload.Pack(timestamp_pb2.Timestamp(seconds=7))
    assert msg.payload.type_url == "type.googleapis.com/google.protobuf.Timestamp"
    assert msg.payload.Is(timestamp_pb2.Timestamp.DESCRIPTOR)


def test_small_messages_are_not_compressed():
    msg = env.new_envelope(tracking_id="x")
    msg.payload.value = b"a" * (env.MESSAGE_THRESHOLD - 100)
    data = env.encode(msg)
    assert not data.startswith(env.GZIP_MAGIC)
    assert len(data) <= env.MESSAGE_THRESHOLD
    assert env.decode(data) == msg


def test_messages_over_1_mib_are_gzipped_at_level_9():
    msg = env.new_envelope(tracking_id="x")
    msg.payload.value = b"a" * (env.MESSAGE_THRESHOLD + 1)
    data = env.encode(msg)
    assert data.startswith(env.GZIP_MAGIC)
    assert data == gzip.compress(msg.SerializeToString(), compresslevel=9)
    assert env.decode(data) == msg


def test_still_too_large_after_gzip_is_refused_with_kre_wording():
    msg = env.new_envelope(tracking_id="x")
    msg.payload.value = os.urandom(env.MESSAGE_THRESHOLD + 10)  # incompressible
    with pytest.raises(env.MessageTooLarge, match=r"exceeds maximum size allowed of 1024\.00 KB"):
        env.encode(msg)


def test_undecodable_bytes_raise():
    with pytest.raises(Exception):  # noqa: B017 - protobuf's DecodeError, whatever its module
        env.decode(b"\x0a\xff\xff\xff")


def test_tracking_time_is_naive_utc_isoformat():
    value = env.utc_isoformat()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?", value)
    assert not value.endswith("Z") and "+" not in value


@pytest.mark.parametrize(
    "ns", [1_700_000_000 * 10**9, 1_700_000_000_123_456_789, 86_399_000_001_000]
)
def test_tracking_time_matches_datetime_isoformat(monkeypatch, ns):
    import datetime

    monkeypatch.setattr(env.time, "time_ns", lambda: ns)
    us = ns // 1000
    moment = datetime.datetime.fromtimestamp(us // 10**6, datetime.timezone.utc).replace(
        tzinfo=None, microsecond=us % 10**6
    )
    assert env.utc_isoformat() == moment.isoformat()
    assert len(env.utc_isoformat()) in (19, 26)


# -- the 1 MiB limit at its boundary ---------------------------------------------------------


def _envelope_of_size(size: int):
    """An envelope that serializes to exactly ``size`` bytes (an ``error`` text of the rest)."""
    msg = env.new_envelope(error="x" * (size - 4))  # tag (1 byte) and length (3 bytes) first
    assert len(msg.SerializeToString()) == size
    return msg


def test_exactly_1_mib_travels_as_it_is_and_one_byte_more_is_gzipped():
    assert env.MESSAGE_THRESHOLD == 1048576
    at_limit = _envelope_of_size(1048576)
    data = env.encode(at_limit)
    assert data == at_limit.SerializeToString()
    assert env.decode(data) == at_limit
    over = _envelope_of_size(1048577)
    data = env.encode(over)
    assert data[:2] == env.GZIP_MAGIC and len(data) < 10_000
    assert env.decode(data) == over
    # the framing alone, on any bytes
    assert env.compress(bytes(1048576)) == bytes(1048576)
    assert gzip.decompress(env.compress(bytes(1048577))) == bytes(1048577)


def _gzips_to(size: int) -> bytes:
    """Data over 1 MiB whose level-9 gzip is exactly ``size`` bytes: random bytes (which do not
    compress) followed by zeros (which nearly vanish), the random part adjusted until it fits."""
    rng = random.Random(13)
    noise = rng.randbytes(size)
    zeros = bytes(env.MESSAGE_THRESHOLD)
    length = size - 400
    for _ in range(40):
        data = noise[:length] + zeros
        packed = len(gzip.compress(data, compresslevel=9))
        if packed == size:
            return data
        length += size - packed
    raise AssertionError(f"found no data that gzips to {size} bytes")


def test_gzipped_exactly_1_mib_is_sent_and_one_byte_more_is_refused():
    data = _gzips_to(1048576)
    packed = env.compress(data)
    assert len(packed) == 1048576 and gzip.decompress(packed) == data
    data = _gzips_to(1048577)
    with pytest.raises(env.MessageTooLarge) as info:
        env.compress(data)
    assert info.value.size == 1048577
    assert str(info.value) == (
        "compressed message exceeds maximum size allowed of 1024.00 KB (it is 1024.00 KB "
        f"gzipped, {len(data) / 1024:.2f} KB raw)"
    )


def test_the_refusal_says_both_sizes():
    data = os.urandom(3 * 1024 * 1024)  # incompressible: 3 MiB raw, a bit more gzipped
    with pytest.raises(env.MessageTooLarge) as info:
        env.compress(data)
    size = info.value.size
    assert size == len(gzip.compress(data, compresslevel=9)) and size > len(data)
    assert str(info.value).endswith(f"(it is {size / 1024:.2f} KB gzipped, 3072.00 KB raw)")


def test_the_envelope_file_is_the_one_protoc_makes(protoc_class):
    from google.protobuf import descriptor_pb2

    ours, theirs = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
    env.envelope_class().DESCRIPTOR.file.CopyToProto(ours)
    protoc_class.DESCRIPTOR.file.CopyToProto(theirs)
    for message in (*theirs.message_type, *theirs.message_type[0].nested_type):
        for field in message.field:
            field.ClearField("json_name")  # protoc's JSON names, derived from the field names
    assert ours == theirs
    assert ours.name == "kre_nats_msg.proto" and ours.options.go_package == "kre"
    assert list(ours.dependency) == ["google/protobuf/any.proto"]


def test_a_refusal_without_a_size_says_zero():
    err = env.MessageTooLarge("too large")
    assert (str(err), err.size) == ("too large", 0)
