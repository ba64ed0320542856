"""Generated ``_pb2.py`` files: they must import and round-trip messages in a fresh interpreter,
under current protobuf and under protobuf 3.13.0 (what the kre-py runner ships)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from pathlib import Path

import pytest

from krtlab.errors import SpecError
from krtlab.protos import (
    compile_protos,
    file_text,
    generate_pb2,
    generate_pb2_files,
    message_text,
)

# No package, a top-level enum, nested messages, maps, well-known types.
KRE_TYPES = """syntax = "proto3";
import "google/protobuf/any.proto";
enum Mood { MOOD_UNSPECIFIED = 0; HAPPY = 1; SAD = 2; }
message Envelope {
  message Hop { string node = 1; int64 at = 2; }
  repeated Hop hops = 1;
  map<string, double> scores = 2;
  google.protobuf.Any payload = 3;
  Mood mood = 4;
}
"""


class Stage(enum.Enum):
    ETL = "etl"
    MODEL = "model"


@dataclasses.dataclass
class Trace:
    stage: Stage
    at: datetime.datetime
    counts: dict[str, int]


def _internal_from_python(public_text: str) -> str:
    """An internal_nodes.proto written by pyclass, using the public Request message."""
    from krtlab.protos import Registry

    Request = Registry(compile_protos({"public_input.proto": public_text})).message_class("Request")

    # built with make_dataclass: this module's annotations are strings (__future__ import)
    Enriched = dataclasses.make_dataclass(
        "Enriched", [("request", Request), ("traces", list[Trace])]
    )

    specs = [
        message_text(Trace, resolve_message=lambda c: None),
        message_text(Enriched, resolve_message={Trace: "Trace"}.get),
    ]
    return file_text("entrypoint", specs)


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory: pytest.TempPathFactory, price_sources: dict[str, str]) -> Path:
    """Generated modules for the price-estimator protos plus richer ones, in one folder."""
    sources = {
        **price_sources,
        "kre_types.proto": KRE_TYPES,
        "from_python.proto": _internal_from_python(price_sources["public_input.proto"]),
    }
    out = tmp_path_factory.mktemp("pb2")
    for name, text in generate_pb2_files(compile_protos(sources)).items():
        (out / name).write_text(text, encoding="utf-8")
    return out


ROUNDTRIP = """
import importlib, json
import google.protobuf
from google.protobuf import any_pb2, timestamp_pb2
import public_input_pb2 as pi
import internal_nodes_pb2 as inn
import kre_types_pb2 as kt
import from_python_pb2 as fp

def rt(msg):
    envelope = any_pb2.Any()
    envelope.Pack(msg)
    received = any_pb2.Any()
    received.ParseFromString(envelope.SerializeToString())
    out = type(msg)()
    assert received.Unpack(out), received.type_url
    assert out == msg
    return received.type_url, out

r = {"version": google.protobuf.__version__}
url, m = rt(pi.Request(neighbourhood="Harlem", room_type="Private room", accommodates=3,
                       bedrooms=2, minimum_nights=4))
r["request"] = [url, m.neighbourhood, m.room_type, m.accommodates, m.bedrooms, m.minimum_nights]
_, m = rt(pi.Response(price=120.5, currency="USD"))
r["response"] = [m.price, m.currency]
_, m = rt(pi.MetricRequest(predicted_price=1.25, real_price=2.5, date="2021-03-04"))
r["metric_request"] = [m.predicted_price, m.real_price, m.date]
_, m = rt(pi.MetricResponse(saved=True, message="ok"))
r["metric_response"] = [m.saved, m.message]
url, m = rt(inn.EtlOutput(features=[0.5, 1.5, 2.5]))
r["etl"] = [url, list(m.features)]
_, m = rt(inn.ModelOutput(price_usd=99.0))
r["model"] = m.price_usd
envelope = any_pb2.Any()
envelope.Pack(inn.ModelOutput(price_usd=1.0))
r["wrong_type_unpacks"] = envelope.Unpack(pi.Response())

env = kt.Envelope(mood=kt.SAD, hops=[kt.Envelope.Hop(node="etl", at=7)])
env.scores["a"] = 0.25
env.payload.Pack(pi.Response(price=3.0))
url, m = rt(env)
inner = pi.Response()
m.payload.Unpack(inner)
r["kre_types"] = [url, kt.Mood.Name(m.mood), kt.HAPPY, m.hops[0].node, m.hops[0].at,
                  dict(m.scores), inner.price]

e = fp.Enriched(request=pi.Request(neighbourhood="x"))
t = e.traces.add(stage=fp.Trace.MODEL)
t.at.FromSeconds(1600000000)
t.counts["rows"] = 3
url, m = rt(e)
r["from_python"] = [url, m.request.neighbourhood, fp.Trace.Stage.Name(m.traces[0].stage),
                    m.traces[0].at.ToSeconds(), dict(m.traces[0].counts),
                    isinstance(m.traces[0].at, timestamp_pb2.Timestamp)]

importlib.reload(pi)  # importing twice (a second module name, a reload) must not clash
r["reloaded"] = pi.Request(neighbourhood="again").neighbourhood
r["descriptor"] = [pi.DESCRIPTOR.name, pi.DESCRIPTOR.package, pi.Request.__name__]
print(json.dumps(r))
"""

EXPECTED = {
    "request": [
        "type.googleapis.com/entrypoint.Request", "Harlem", "Private room", 3, 2, 4,
    ],
    "response": [120.5, "USD"],
    "metric_request": [1.25, 2.5, "2021-03-04"],
    "metric_response": [True, "ok"],
    "etl": ["type.googleapis.com/entrypoint.EtlOutput", [0.5, 1.5, 2.5]],
    "model": 99.0,
    "wrong_type_unpacks": False,
    "kre_types": ["type.googleapis.com/Envelope", "SAD", 1, "etl", 7, {"a": 0.25}, 3.0],
    "from_python": [
        "type.googleapis.com/entrypoint.Enriched", "x", "MODEL", 1600000000, {"rows": 3}, True,
    ],
    "reloaded": "again",
    "descriptor": ["public_input.proto", "entrypoint", "Request"],
}  # fmt: skip


def test_roundtrip_under_current_protobuf(generated_dir: Path, run_python) -> None:  # type: ignore[no-untyped-def]
    import sys

    import google.protobuf

    result = run_python(sys.executable, ROUNDTRIP, generated_dir)
    assert result.pop("version") == google.protobuf.__version__
    assert result == EXPECTED


@pytest.mark.slow
def test_roundtrip_under_protobuf_3_13(generated_dir: Path, run_python, pb313_python) -> None:  # type: ignore[no-untyped-def]
    result = run_python(pb313_python, ROUNDTRIP, generated_dir)
    assert result.pop("version") == "3.13.0"
    assert result == EXPECTED


def test_generated_text_is_readable_and_deterministic(price_sources: dict[str, str]) -> None:
    first = generate_pb2(compile_protos(price_sources), "public_input.proto")
    second = generate_pb2(
        compile_protos(dict(reversed(price_sources.items()))), "public_input.proto"
    )
    assert first == second
    lines = first.splitlines()
    assert lines[0] == "# Generated by krtlab from public_input.proto. DO NOT EDIT."
    assert "#   message Request: neighbourhood, room_type, accommodates, bedrooms," in first
    assert "MakePrediction(Request) -> Response" in first
    assert "Request = _message_class(" in first
    # nothing protobuf 3.13 lacks, and no source comments in the embedded descriptor
    assert "builder" not in first and "runtime_version" not in first
    assert max(len(line) for line in lines) <= 100
    internal = generate_pb2(compile_protos(price_sources), "internal_nodes.proto")
    assert "Messages passed between" not in internal


def test_dependencies_are_imported_first() -> None:
    fs = compile_protos({
        "public_input.proto": 'syntax = "proto3"; package entrypoint; message Request {}',
        "internal_nodes.proto": 'syntax = "proto3"; package entrypoint;\n'
        'import "public_input.proto";\nimport "google/protobuf/timestamp.proto";\n'
        "message Wrapped { Request r = 1; google.protobuf.Timestamp t = 2; }",
    })  # fmt: skip
    text = generate_pb2(fs, "internal_nodes.proto")
    assert "import public_input_pb2 as _public_input_pb2" in text
    assert "from google.protobuf import timestamp_pb2 as _timestamp_pb2" in text
    assert text.index("import public_input_pb2") < text.index("_SERIALIZED_FILE = (")
    assert list(generate_pb2_files(fs)) == ["public_input_pb2.py", "internal_nodes_pb2.py"]


def test_only_user_files_are_generated(price_sources: dict[str, str]) -> None:
    fs = compile_protos({"a.proto": 'syntax = "proto3"; import "google/protobuf/any.proto";'})
    with pytest.raises(SpecError, match="No user proto file"):
        generate_pb2(fs, "google/protobuf/any.proto")


@pytest.mark.slow
def test_protoc_python_output_fails_under_protobuf_3_13(
    tmp_path: Path, price_sources: dict[str, str], run_python, pb313_python
) -> None:  # type: ignore[no-untyped-def]
    """The reason generate_pb2 exists: the bundled protoc's own output breaks the runner."""
    from grpc_tools import _protoc_compiler

    (tmp_path / "public_input.proto").write_text(price_sources["public_input.proto"])
    argv = [b"protoc", f"-I{tmp_path}".encode(), f"--python_out={tmp_path}".encode()]
    assert _protoc_compiler.run_main([*argv, str(tmp_path / "public_input.proto").encode()]) == 0
    code = """
    import json
    try:
        import public_input_pb2
        print(json.dumps("imported"))
    except ImportError as exc:
        print(json.dumps(str(exc)))
    """
    assert "cannot import name" in run_python(pb313_python, code, tmp_path)
