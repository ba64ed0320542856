"""compile_protos and FileSet: what a user sees when a proto compiles, or does not."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from google.protobuf import descriptor_pb2

from krtlab.errors import ProtoError, SpecError
from krtlab.protos import FileSet, Rpc, compile_protos


def test_price_estimator_compiles(price_sources: dict[str, str]) -> None:
    fs = compile_protos(price_sources)
    assert isinstance(fs, FileSet)
    assert set(fs.files) == {"public_input.proto", "internal_nodes.proto"}
    assert fs.package("public_input.proto") == "entrypoint"
    assert fs.messages("public_input.proto") == [
        "entrypoint.Request",
        "entrypoint.Response",
        "entrypoint.MetricRequest",
        "entrypoint.MetricResponse",
    ]
    assert fs.messages("internal_nodes.proto") == ["entrypoint.EtlOutput", "entrypoint.ModelOutput"]
    assert "entrypoint.EtlOutput" in fs.all_messages()
    assert len(fs.all_messages()) == 6
    assert fs.source("public_input.proto") == price_sources["public_input.proto"]
    assert repr(fs).startswith("FileSet([")


def test_entrypoint_rpcs_have_types_and_lines(price_sources: dict[str, str]) -> None:
    fs = compile_protos(price_sources)
    rpcs = fs.entrypoint_rpcs("public_input.proto")
    assert rpcs == {
        "MakePrediction": Rpc(
            "MakePrediction", "entrypoint.Request", "entrypoint.Response", line=30
        ),
        "SavePredictionMetric": Rpc(
            "SavePredictionMetric", "entrypoint.MetricRequest", "entrypoint.MetricResponse", line=31
        ),
    }
    lines = price_sources["public_input.proto"].splitlines()
    assert "rpc MakePrediction" in lines[rpcs["MakePrediction"].line - 1]
    assert fs.rpc_line("public_input.proto", "SavePredictionMetric") == 31
    assert fs.rpc_line("public_input.proto", "Nope") is None
    assert str(rpcs["MakePrediction"]) == (
        "rpc MakePrediction(entrypoint.Request) returns (entrypoint.Response)"
    )
    # internal_nodes.proto has no service Entrypoint
    assert fs.entrypoint_rpcs("internal_nodes.proto") is None
    assert fs.services("internal_nodes.proto") == {}


def test_message_lines(price_sources: dict[str, str]) -> None:
    fs = compile_protos(price_sources)
    assert fs.message_line("entrypoint.Response") == ("public_input.proto", 13)
    assert fs.message_line(".entrypoint.ModelOutput") == ("internal_nodes.proto", 10)
    assert fs.message_line("entrypoint.Nope") is None
    assert fs.message_file("entrypoint.EtlOutput") == "internal_nodes.proto"


def test_nested_messages_streaming_and_no_package() -> None:
    text = """syntax = "proto3";
message Outer {
  message Inner { map<string, int32> m = 1; }
  Inner inner = 1;
}
service Entrypoint {
  rpc Stream (stream Outer) returns (stream Outer.Inner);
}
"""
    fs = compile_protos({"x.proto": text})
    # the map's synthetic MEntry message is not a user message
    assert fs.messages("x.proto") == ["Outer", "Outer.Inner"]
    assert fs.message_line("Outer.Inner") == ("x.proto", 3)
    (rpc,) = fs.entrypoint_rpcs("x.proto").values()
    assert (rpc.input_type, rpc.output_type) == ("Outer", "Outer.Inner")
    assert rpc.client_streaming and rpc.server_streaming and rpc.line == 7


def test_syntax_error_is_located() -> None:
    bad = 'syntax = "proto3";\nmessage A {\n  int32 x = 1\n}\n'
    with pytest.raises(ProtoError) as info:
        compile_protos({"bad.proto": bad})
    err = info.value
    assert str(err).startswith("bad.proto does not compile")
    (issue,) = err.issues
    assert (issue.file, issue.line, issue.column) == ("bad.proto", 4, 1)
    assert "Expected" in issue.message
    assert isinstance(err, ValueError)  # callers that only know builtins still catch it


def test_undefined_type_names_file_line_column() -> None:
    bad = 'syntax = "proto3";\nmessage A {\n  strin name = 1;\n}\n'
    with pytest.raises(ProtoError) as info:
        compile_protos({"public_input.proto": bad})
    (issue,) = info.value.issues
    assert str(issue) == 'public_input.proto:3:3: "strin" is not defined.'
    assert "krtlab-protoc" not in str(info.value)  # no temp dir paths leak into messages


def test_error_in_imported_file_and_missing_import() -> None:
    sources = {
        "a.proto": 'syntax = "proto3";\nimport "b.proto";\nmessage A { B b = 1; }\n',
        "b.proto": 'syntax = "proto3";\nmessage B { strin x = 1; }\n',
    }
    with pytest.raises(ProtoError) as info:
        compile_protos(sources)
    assert str(info.value).startswith("b.proto, a.proto do not compile")
    assert (info.value.issues[0].file, info.value.issues[0].line) == ("b.proto", 2)

    with pytest.raises(ProtoError) as info:
        compile_protos({"a.proto": 'syntax = "proto3";\nimport "missing.proto";\n'})
    issues = info.value.issues
    assert str(info.value).startswith("a.proto does not compile")
    assert (issues[0].file, issues[0].line, issues[0].message) == (
        "missing.proto", None, "File not found."
    )  # fmt: skip
    assert str(issues[0]) == "missing.proto: File not found."


def test_well_known_imports() -> None:
    text = """syntax = "proto3";
package p;
import "google/protobuf/timestamp.proto";
import "google/protobuf/any.proto";
import "google/protobuf/empty.proto";
message Event { google.protobuf.Timestamp at = 1; google.protobuf.Any body = 2; }
service Entrypoint { rpc Ping (google.protobuf.Empty) returns (Event); }
"""
    fs = compile_protos({"events.proto": text})
    assert fs.files == ("events.proto",)
    # dependencies come first, so a pool can add the files in this order
    assert fs.all_files[-1] == "events.proto"
    assert "google/protobuf/timestamp.proto" in fs.all_files
    assert fs.dependencies("events.proto") == [
        "google/protobuf/timestamp.proto",
        "google/protobuf/any.proto",
        "google/protobuf/empty.proto",
    ]
    assert fs.descriptor("google/protobuf/any.proto").package == "google.protobuf"
    assert fs.entrypoint_rpcs("events.proto")["Ping"].input_type == "google.protobuf.Empty"
    assert fs.all_messages() == {"p.Event"}
    assert "google.protobuf.Timestamp" in fs.all_messages(include_dependencies=True)
    # the serialized set holds everything, parseable by any protobuf
    fds = descriptor_pb2.FileDescriptorSet.FromString(fs.serialized_set())
    assert [f.name for f in fds.file] == list(fs.all_files)
    assert fds.file[-1].source_code_info.location  # user files keep their lines


def test_unknown_file_suggests() -> None:
    fs = compile_protos({"public_input.proto": 'syntax = "proto3";'})
    with pytest.raises(SpecError, match=r"Did you mean 'public_input.proto'\?"):
        fs.descriptor("public_inputs.proto")
    with pytest.raises(SpecError):
        fs.source("google/protobuf/any.proto")


@pytest.mark.parametrize("name", ["../x.proto", "/abs.proto", "x.txt", "a//b.proto"])
def test_bad_file_names_are_refused(name: str) -> None:
    with pytest.raises(ProtoError, match="Bad proto file name"):
        compile_protos({name: 'syntax = "proto3";'})


def test_files_in_folders_import_each_other() -> None:
    fs = compile_protos({
        "common/types.proto": 'syntax = "proto3";\npackage c;\nmessage T { int64 x = 1; }\n',
        "main.proto": 'syntax = "proto3";\nimport "common/types.proto";\n'
        "message M { c.T t = 1; }\n",
    })  # fmt: skip
    assert fs.files == ("common/types.proto", "main.proto")


def test_stderr_is_restored_and_protoc_output_is_not_leaked(capfd: pytest.CaptureFixture) -> None:
    with pytest.raises(ProtoError):
        compile_protos({"bad.proto": "this is not proto"})
    os.write(2, b"still here\n")
    sys.stderr.write("python stderr\n")
    sys.stderr.flush()
    err = capfd.readouterr().err
    assert err == "still here\npython stderr\n"


def test_concurrent_compiles_keep_their_own_errors() -> None:
    results: dict[int, object] = {}

    def work(i: int) -> None:
        try:
            compile_protos(
                {f"f{i}.proto": f'syntax = "proto3";\nmessage M{i} {{ nope{i} x = 1; }}'}
            )
        except ProtoError as exc:
            results[i] = exc.issues

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        (issue,) = results[i]
        assert issue.file == f"f{i}.proto" and f"nope{i}" in issue.message


def test_importing_protos_does_not_import_grpc_tools() -> None:
    code = "import sys, krtlab.protos; print('grpc_tools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
