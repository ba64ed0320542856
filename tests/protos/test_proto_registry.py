"""Registry and ProtoModule: message classes a notebook user works with."""

from __future__ import annotations

import pytest
from google.protobuf import any_pb2, timestamp_pb2

from krtlab.errors import SpecError
from krtlab.protos import (
    ProtoModule,
    Registry,
    compile_protos,
    is_message_class,
    message_module_name,
)

EVENTS = """syntax = "proto3";
package ev;
import "google/protobuf/timestamp.proto";
enum Level { LEVEL_UNSPECIFIED = 0; HIGH = 1; }
message Event {
  message Tag { string key = 1; }
  google.protobuf.Timestamp at = 1;
  repeated Tag tags = 2;
  Level level = 3;
}
"""


@pytest.fixture
def registry(price_sources: dict[str, str]) -> Registry:
    return Registry(compile_protos(price_sources))


def _roundtrip(msg, cls):  # type: ignore[no-untyped-def]
    """Pack into Any, go through bytes, unpack into a fresh ``cls``."""
    envelope = any_pb2.Any()
    envelope.Pack(msg)
    received = any_pb2.Any.FromString(envelope.SerializeToString())
    out = cls()
    assert received.Unpack(out)
    return received, out


def test_messages_roundtrip_through_any(registry: Registry) -> None:
    Request = registry.message_class("entrypoint.Request")
    req = Request(neighbourhood="Harlem", room_type="Private room", accommodates=2, bedrooms=1)
    received, out = _roundtrip(req, Request)
    assert received.type_url == "type.googleapis.com/entrypoint.Request"
    assert out == req and out.neighbourhood == "Harlem" and out.bedrooms == 1

    EtlOutput = registry.message_class("entrypoint.EtlOutput")
    _, etl = _roundtrip(EtlOutput(features=[1.5, 2.0]), EtlOutput)
    assert list(etl.features) == [1.5, 2.0]
    # Unpacking into the wrong type says so instead of producing garbage
    assert not received.Unpack(registry.message_class("entrypoint.Response")())


def test_lookup_by_bare_name_and_suggestions(registry: Registry) -> None:
    assert registry.message_class("Response") is registry.message_class("entrypoint.Response")
    assert "entrypoint.ModelOutput" in registry
    assert set(registry.messages) == registry.fileset.all_messages()
    with pytest.raises(SpecError, match=r"Unknown message 'entrypoint.Reqest'\. Did you mean "
                       r"'entrypoint.Request', "):  # fmt: skip
        registry.message_class("entrypoint.Reqest")
    with pytest.raises(SpecError, match=r"Did you mean 'Request' or"):
        registry.message_class("Reqest")
    with pytest.raises(SpecError, match=r"No user proto file 'public_inputs.proto'\. Did you"):
        registry.module("public_inputs.proto")


def test_ambiguous_bare_name() -> None:
    fs = compile_protos({
        "a.proto": 'syntax = "proto3"; package a; message M {}',
        "b.proto": 'syntax = "proto3"; package b; message M {}',
    })  # fmt: skip
    with pytest.raises(SpecError, match="ambiguous"):
        Registry(fs).message_class("M")


def test_two_registries_from_the_same_sources_coexist(price_sources: dict[str, str]) -> None:
    first = Registry(compile_protos(price_sources))
    second = Registry(compile_protos(price_sources))  # a re-run notebook cell
    A, B = first.message_class("Request"), second.message_class("Request")
    assert A is not B
    _, out = _roundtrip(A(neighbourhood="x"), B)
    assert out.neighbourhood == "x"
    # a redefinition with a new field does not clash with the old one either
    changed = dict(price_sources)
    changed["public_input.proto"] = changed["public_input.proto"].replace(
        "int32 minimum_nights = 5;", "int32 minimum_nights = 5;\n  string host = 6;"
    )
    third = Registry(compile_protos(changed))
    assert third.message_class("Request")(host="h").host == "h"
    assert not hasattr(A(), "host")


def test_well_known_fields_nested_and_enums() -> None:
    reg = Registry(compile_protos({"events.proto": EVENTS}))
    Event = reg.message_class("ev.Event")
    ev = Event(level=1)
    ev.at.FromSeconds(1_600_000_000)
    ev.tags.add(key="k")
    assert Event.Tag is reg.message_class("ev.Event.Tag")
    _, out = _roundtrip(ev, Event)
    assert out.at.ToSeconds() == 1_600_000_000 and out.tags[0].key == "k"
    # a Timestamp from the private pool and the default pool's one share bytes
    assert timestamp_pb2.Timestamp.FromString(out.at.SerializeToString()).seconds == 1_600_000_000
    assert reg.message_class("google.protobuf.Timestamp")().DESCRIPTOR.full_name == (
        "google.protobuf.Timestamp"
    )


def test_module_looks_like_generated_code(registry: Registry) -> None:
    pb = registry.module("public_input.proto")
    assert isinstance(pb, ProtoModule)
    assert pb.__name__ == "public_input_pb2"
    assert pb.__krt_pb2_module__ == "public_input_pb2"
    assert pb.__krt_proto_file__ == "public_input.proto"
    assert (
        repr(pb)
        == "<proto module public_input_pb2: Request, Response, MetricRequest, MetricResponse>"
    )
    assert pb.Request is registry.message_class("entrypoint.Request")
    assert pb.DESCRIPTOR.name == "public_input.proto"
    assert {"Request", "Response", "MetricRequest", "MetricResponse"} <= set(dir(pb))
    assert registry.module("public_input.proto") is pb
    assert message_module_name(pb.Request) == "public_input_pb2"
    assert pb.Request.__module__ == "public_input_pb2"
    with pytest.raises(
        AttributeError, match=r"has no 'Reqest'\. Did you mean 'Request' or 'MetricRequest'\?"
    ):
        pb.Reqest  # noqa: B018


def test_module_exposes_enums_like_protoc() -> None:
    pb = Registry(compile_protos({"events.proto": EVENTS})).module("events.proto")
    assert pb.HIGH == 1 and pb.Level.Name(1) == "HIGH" and pb.Level.Value("HIGH") == 1
    assert repr(pb) == "<proto module events_pb2: Event>"
    with pytest.raises(AttributeError, match="It has: "):
        pb.zzzzzz  # noqa: B018


def test_module_updates_in_place(price_sources: dict[str, str]) -> None:
    pb = Registry(compile_protos(price_sources)).module("public_input.proto")
    old_request = pb.Request
    changed = dict(price_sources)
    changed["public_input.proto"] = (
        changed["public_input.proto"]
        .replace("message MetricResponse", "message Reply")
        .replace("returns (MetricResponse)", "returns (Reply)")
    )
    pb._krt_update(Registry(compile_protos(changed)))
    assert pb.Request is not old_request
    assert pb.Reply().DESCRIPTOR.full_name == "entrypoint.Reply"
    assert not hasattr(pb, "MetricResponse")  # removed messages disappear
    assert "Reply" in repr(pb) and "MetricResponse" not in dir(pb)
    with pytest.raises(SpecError):
        pb._krt_update(Registry(compile_protos({"other.proto": 'syntax = "proto3";'})))


def test_message_class_helpers(registry: Registry) -> None:
    Request = registry.message_class("Request")
    assert is_message_class(Request) and is_message_class(any_pb2.Any)
    assert not is_message_class(Request()) and not is_message_class(int)
    assert message_module_name(any_pb2.Any) == "any_pb2"
    with pytest.raises(SpecError):
        message_module_name(int)
    fs = compile_protos({"my-types.proto": 'syntax = "proto3"; message T {}'})
    assert message_module_name(Registry(fs).message_class("T")) == "my_types_pb2"
