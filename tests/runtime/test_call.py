"""``krtlab call`` / :func:`krtlab.runtime.client.call`: JSON in and out, reflection or a proto."""

from __future__ import annotations

import json

import pytest

from krtlab.cli import main
from krtlab.errors import SpecError
from krtlab.runtime.client import CallError, call, message_to_dict, resolve_address, to_message
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


# -- addresses and TLS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "tls", "expected"),
    [
        ("entrypoint.kre.example.com", None, ("entrypoint.kre.example.com:443", True)),  # KRE 7
        ("entrypoint.kre.example.com:443", None, ("entrypoint.kre.example.com:443", True)),
        ("127.0.0.1:9000", None, ("127.0.0.1:9000", False)),  # krtlab, the stand-in
        ("10.96.0.11:9000", True, ("10.96.0.11:9000", True)),
        ("entrypoint.kre.local", False, ("entrypoint.kre.local:443", False)),
        ("https://entrypoint.kre.example.com/", None, ("entrypoint.kre.example.com:443", True)),
        ("[::1]:50051", None, ("[::1]:50051", False)),
        ("::1", None, ("[::1]:443", True)),
    ],
)
def test_address_resolution(address, tls, expected):
    assert resolve_address(address, tls) == expected


def test_bad_addresses():
    with pytest.raises(ServeError, match="bad port"):
        resolve_address("host:http")
    with pytest.raises(ServeError, match="no host"):
        resolve_address(":9000")


def test_unknown_rpc_suggests_the_close_one(svc):
    with pytest.raises(ServeError, match=r"no rpc 'PyGret'.*did you mean 'PyGreet'\?"):
        call(svc.address, "PyGret", {})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1 (openssl CLI: the venv has no
    ``cryptography`` package)."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="module")
def tls_server(certificate):
    """The greeter's entrypoint served in-process over TLS, with reflection (like an Ingress
    terminating TLS in front of KRE's entrypoint)."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from grpc_reflection.v1alpha import reflection

    import krtlab as krt

    pb = krt.load(GREETER).protos["public_input.proto"]

    def greet(request, context):
        return pb.Response(greeting=f"Hello {request.name} over TLS!")

    handler = grpc.method_handlers_generic_handler(
        "entrypoint.Entrypoint",
        {"PyGreet": grpc.unary_unary_rpc_method_handler(
            greet, request_deserializer=pb.Request.FromString,
            response_serializer=lambda m: m.SerializeToString())},
    )  # fmt: skip
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    names = ("entrypoint.Entrypoint", reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=pb.Request.DESCRIPTOR.file.pool)
    key, cert = certificate
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield port, cert
    server.stop(None)


def test_call_over_tls_with_a_private_ca(tls_server):
    port, cert = tls_server
    answer = call(f"127.0.0.1:{port}", "PyGreet", name="Tia", tls=True, root_certificates=cert)
    assert answer == {"greeting": "Hello Tia over TLS!"}


def test_tls_server_refuses_plaintext_and_unknown_certificates(tls_server):
    port, _ = tls_server
    # an explicit non-443 port means plaintext: the TLS server does not answer it
    with pytest.raises(CallError) as info:
        call(f"127.0.0.1:{port}", "PyGreet", name="Tia", timeout=5)
    assert info.value.code == "UNAVAILABLE"
    # TLS with the system's CAs only: the self-signed certificate is not trusted
    with pytest.raises(CallError) as info:
        call(f"127.0.0.1:{port}", "PyGreet", name="Tia", tls=True, timeout=5)
    assert info.value.code == "UNAVAILABLE"


def test_unreadable_root_certificates(tmp_path):
    with pytest.raises(ServeError, match="cannot read"):
        call("127.0.0.1:1", "PyGreet", tls=True, root_certificates=tmp_path / "missing.pem")


def test_cli_call_over_tls(tls_server, capsys):
    port, cert = tls_server
    args = ["call", f"127.0.0.1:{port}", "PyGreet", '{"name": "Tia"}', "--tls", "--cacert"]
    assert main([*args, str(cert)]) == 0
    assert json.loads(capsys.readouterr().out) == {"greeting": "Hello Tia over TLS!"}
    # without --tls an explicit port other than 443 is plaintext, which this server refuses
    assert main(["call", f"127.0.0.1:{port}", "PyGreet", "--timeout", "5"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err
