"""``krtlab call`` / :func:`krtlab.runtime.client.call`: JSON in and out, reflection or a proto."""

from __future__ import annotations

import json

import pytest

from krtlab.cli import main
from krtlab.errors import SpecError
from krtlab.runtime.client import CallError, call, message_to_dict, to_message
from krtlab.runtime.serve import ServeError, serve
from tests.runtime.test_serve_support import PRICE
from tests.support import REPO

GREETER = REPO / "templates" / "greeter"


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KRTLAB_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        with serve(GREETER, port=0) as service:
            yield service


def test_call_by_reflection(svc):
    assert call(svc.address, "PyGreet", {"name": "John"}) == {"greeting": "Hello John!"}
    assert call(svc.address, "PyGreet", '{"name": "Ann"}') == {"greeting": "Hello Ann!"}
    assert call(svc.address, "PyGreet", name="Bo") == {"greeting": "Hello Bo!"}
    full = call(svc.address, "entrypoint.Entrypoint/PyGreet", {"name": "Cy"})
    assert full == {"greeting": "Hello Cy!"}


def test_reflection_lists_the_entrypoint_service(svc):
    import grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(svc.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)  # what `grpcurl list` asks
        services = set(db.get_services())
        fdp = db.FindFileContainingSymbol("entrypoint.Entrypoint")
    assert services == {"entrypoint.Entrypoint", "grpc.reflection.v1alpha.ServerReflection"}
    assert fdp.name == "public_input.proto" and fdp.package == "entrypoint"
    assert [m.name for m in fdp.service[0].method] == ["PyGreet"]


def test_call_with_the_proto_file(svc):
    proto = GREETER / "public_input.proto"
    assert call(svc.address, "PyGreet", {"name": "D"}, proto=proto) == {"greeting": "Hello D!"}
    with pytest.raises(ServeError, match="no rpc 'Nope'"):
        call(svc.address, "Nope", {}, proto=proto)


def test_defaults_are_printed(svc):
    assert call(svc.address, "PyGreet", {}) == {"greeting": "Hello !"}


def test_unknown_rpc_and_bad_json(svc):
    with pytest.raises(ServeError, match="no rpc 'Nope'"):
        call(svc.address, "Nope", {})
    with pytest.raises(SpecError, match="not valid JSON"):
        call(svc.address, "PyGreet", "{name: John}")
    with pytest.raises(SpecError, match="nam"):
        call(svc.address, "PyGreet", {"nam": "John"})


def test_cli_call_prints_json(svc, capsys):
    assert main(["call", svc.address, "PyGreet", '{"name": "John"}']) == 0
    assert json.loads(capsys.readouterr().out) == {"greeting": "Hello John!"}
    proto = str(PRICE / "public_input.proto")  # a wrong proto: the rpc is not in it
    assert main(["call", svc.address, "PyGreet", "{}", "--proto", proto]) == 2
    assert "no rpc 'PyGreet'" in capsys.readouterr().err


def test_cli_call_reports_grpc_errors(capsys):
    # nothing listens on port 1: the reflection call itself fails, with its gRPC code
    assert main(["call", "127.0.0.1:1", "PyGreet", "{}", "--timeout", "2"]) == 1
    assert "krtlab call: UNAVAILABLE" in capsys.readouterr().err


def test_conversions():
    import krtlab as krt

    v = krt.load(GREETER)
    pb = v.protos["public_input.proto"]
    msg = to_message(pb.Request, None, {"name": "x"})
    assert msg == pb.Request(name="x")
    assert to_message(pb.Request, pb.Request(name="y"), {}) == pb.Request(name="y")
    assert to_message(pb.Request, pb.Request(name="y"), {"name": "z"}).name == "z"
    assert message_to_dict(pb.Response()) == {"greeting": ""}
    error = CallError("PyGreet", "INTERNAL", "error in 'py-greeter': boom")
    assert str(error) == "PyGreet failed: INTERNAL: error in 'py-greeter': boom"
    assert isinstance(error, ServeError) and isinstance(error, RuntimeError)
