"""The findings no other test met, each as a user would meet it: what is reported, where, how
bad, and what it says."""

from __future__ import annotations

import pytest

from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.spec.facts import NodeContract, NodeEnv
from tests.support import EXAMPLES
from tests.test_validate_rules import GREETER_YML, _krt, greeter

PROTO = b"""syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint {
  rpc PyGreet (Request) returns (Response) {};
}
"""


def files(**changes: bytes | None) -> dict[str, bytes]:
    out = dict(load_project(EXAMPLES / "greeter").files)
    for path, data in changes.items():
        path = path.replace("__", "/").replace("_DOT_", ".")
        if data is None:
            out.pop(path, None)
        else:
            out[path] = data
    return out


def project(krt_yml: str = GREETER_YML, **extra: bytes) -> Project:
    data = files()
    data["krt.yml"] = krt_yml.encode()
    data.update(extra)
    return Project(data, "t")


def only(report, code):
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, report
    return found[0]


def test_a_key_written_twice_is_an_error_at_the_second_one():
    text = GREETER_YML.replace("description: d\n", "description: d\ndescription: e\n")
    f = only(greeter(text).validate(), "key.duplicate")
    assert (f.severity, f.path, f.line) == ("error", "description", 3)
    assert "appears twice" in f.message and "KRE keeps the last one" in f.message
    # the same key in two different mappings is fine
    assert greeter(GREETER_YML).validate().ok


def test_a_number_where_text_is_expected_warns_to_quote_it():
    f = only(greeter(GREETER_YML.replace("description: d", "description: 1.10")).validate(),
             "field.not_string")  # fmt: skip
    assert (f.severity, f.path, f.line) == ("warning", "description", 2)
    assert f.hint == 'description: "1.10"'  # the text as written, as KRE keeps it
    assert "quote it" in f.message


def test_empty_nodes_and_workflows_are_errors():
    text = GREETER_YML.split("nodes:")[0] + "nodes: []\nworkflows: []\n"
    report = greeter(text).validate()
    assert [f.path for f in report.findings if f.code == "field.empty"] == ["nodes", "workflows"]
    empty = {f.path: f for f in report.findings}
    assert empty["nodes"].severity == "error"
    assert "at least one node" in empty["nodes"].message
    assert "at least one workflow" in empty["workflows"].message


def test_a_config_name_declared_twice_is_an_error():
    text = GREETER_YML.replace(
        "nodes:", "config:\n  variables: [CURRENCY, RATE]\n  files: [CURRENCY]\nnodes:"
    )
    f = only(greeter(text).validate(), "config.duplicate")
    assert (f.severity, f.path) == ("error", "config.files[0]")
    assert "'CURRENCY' is declared twice" in f.message


def test_two_workflows_on_one_rpc_is_an_error_at_the_second():
    text = (
        GREETER_YML
        + "  - name: py-greeting-2\n    entrypoint: PyGreet\n    sequential: [py-greeter]\n"
    )
    f = only(greeter(text).validate(), "workflow.duplicate_entrypoint")
    assert (f.severity, f.path) == ("error", "workflows[1].entrypoint")
    assert "already served by workflows[0]" in f.message


def test_a_workflow_on_an_rpc_the_proto_lacks_is_an_error():
    text = GREETER_YML.replace("entrypoint: PyGreet", "entrypoint: PyGret")
    report = project(text).validate()
    f = only(report, "workflow.unknown_rpc")
    assert (f.severity, f.path) == ("error", "workflows[0].entrypoint")
    assert f.hint == "did you mean 'PyGreet'?"
    # ... and the rpc nobody serves warns
    unused = only(report, "proto.rpc_unused")
    assert (unused.severity, unused.file, unused.line) == ("warning", "public_input.proto", 14)


def test_a_streaming_rpc_is_an_error_at_its_line():
    proto = PROTO.replace(b"rpc PyGreet (Request) returns (Response)",
                          b"rpc PyGreet (stream Request) returns (Response)")  # fmt: skip
    f = only(project(**{"public_input.proto": proto}).validate(), "proto.streaming")
    assert (f.severity, f.file, f.line) == ("error", "public_input.proto", 6)
    assert "unary rpcs only" in f.message
    server = PROTO.replace(b"returns (Response)", b"returns (stream Response)")
    assert "proto.streaming" in project(**{"public_input.proto": server}).validate().codes()


def test_a_proto_outside_package_entrypoint_warns():
    proto = PROTO.replace(b"package entrypoint;", b"package shop;")
    f = only(project(**{"public_input.proto": proto}).validate(), "proto.package")
    assert f.severity == "warning" and "'shop'" in f.message
    assert f.hint == "package entrypoint;"


def test_a_node_using_a_message_no_proto_defines_is_an_error():
    report = project().validate(
        contracts={"py-greeter": NodeContract("entrypoint.Requst", "entrypoint.Response")}
    )
    f = only(report, "chain.unknown_type")
    assert (f.severity, f.path) == ("error", "workflows[0].sequential[0]")
    assert "'entrypoint.Request'" in f.hint and "no proto of the version defines" in f.message


@pytest.mark.parametrize("origin", ["hints", "declared"])
def test_a_known_contract_that_does_not_chain_is_an_error(origin):
    # an authored node's type hints (or declared types) are facts: a mismatch breaks every call
    wrong = NodeContract("entrypoint.Response", "entrypoint.Request", origin)
    report = project().validate(contracts={"py-greeter": wrong})
    assert only(report, "chain.input_mismatch").severity == "error"
    last = only(report, "chain.output_mismatch")
    assert (last.severity, last.path) == ("error", "workflows[0].sequential[0]")
    assert last.hint == "make 'py-greeter' return entrypoint.Response"
    # only types read from a hand-written source are guesses, so those only warn
    guessed = NodeContract("entrypoint.Response", "entrypoint.Request", "inferred")
    report = project().validate(contracts={"py-greeter": guessed})
    assert only(report, "chain.output_mismatch").severity == "warning"
    assert only(report, "chain.input_mismatch").severity == "warning"


@pytest.mark.parametrize(
    ("source", "code", "count"),
    [
        (b"async def handler(ctx):\n    return None\n", "src.handler_signature", 1),
        (b"async def handler(ctx, data, more):\n    return None\n", "src.handler_signature", 3),
        (b"def init():\n    pass\n\nasync def handler(ctx, data):\n    return data\n",
         "src.init_signature", 0),
        (b"def init(ctx, extra):\n    pass\n\nasync def handler(ctx, data):\n    return data\n",
         "src.init_signature", 2),
    ],
)  # fmt: skip
def test_handler_and_init_must_take_what_kre_py_passes(source, code, count):
    report = project(**{"src/py-greeter/main.py": source}).validate()
    f = only(report, code)
    assert (f.severity, f.file) == ("error", "src/py-greeter/main.py")
    assert f"takes {count} parameters" in f.message


def test_init_with_its_context_and_no_init_are_fine():
    for source in (
        b"def init(ctx):\n    pass\n\nasync def handler(ctx, data):\n    return data\n",
        b"async def handler(ctx, data):\n    return data\n",
    ):
        codes = project(**{"src/py-greeter/main.py": source}).validate().codes()
        assert "src.init_signature" not in codes and "src.handler_signature" not in codes


def test_a_python_node_whose_src_is_not_python_is_an_error():
    text = GREETER_YML.replace("src/py-greeter/main.py", "src/py-greeter/main.sh")
    f = only(project(text, **{"src/py-greeter/main.sh": b"echo hi\n"}).validate(), "src.not_python")
    assert (f.severity, f.path) == ("error", "nodes[0].src")
    assert "konstellation/kre-go" in f.hint


def test_a_go_binary_that_is_not_an_executable_warns():
    text = GREETER_YML.replace(
        "workflows:",
        "  - name: go-greeter\n    image: konstellation/kre-go:1.11.0\n"
        "    src: bin/go-greeter\nworkflows:",
    )
    report = project(text, **{"bin/go-greeter": b"#!/bin/sh\necho hi\n"}).validate()
    f = only(report, "src.not_binary")
    assert (f.severity, f.path) == ("warning", "nodes[1].src")
    assert "not a Linux (ELF) executable" in f.message
    elf = project(text, **{"bin/go-greeter": b"\x7fELF\x02\x01\x01" + bytes(64)}).validate()
    assert "src.not_binary" not in elf.codes()


@pytest.mark.parametrize("src", ["/src/py-greeter/main.py", "../main.py", "src/../../main.py"])
def test_a_src_outside_the_bundle_is_an_error(src):
    text = GREETER_YML.replace("src: src/py-greeter/main.py", f"src: {src}")
    f = only(project(text).validate(), "src.outside")
    assert (f.severity, f.path) == ("error", "nodes[0].src")
    assert "inside the bundle" in f.message


def test_a_src_that_is_a_folder_is_an_error():
    text = GREETER_YML.replace("src: src/py-greeter/main.py", "src: src/py-greeter")
    f = only(project(text).validate(), "src.not_file")
    assert (f.severity, f.path) == ("error", "nodes[0].src")
    assert "is a folder, not a regular file" in f.message
    assert f.kre == "KRE 7: error src File src/py-greeter for node py-greeter not exists "


def test_a_krt_packed_with_its_folder_is_an_error(tmp_path):
    entries = [(f"greeter/{path}", data) for path, data in files().items()]
    (tmp_path / "v.krt").write_bytes(_krt(entries))
    report = load_project(tmp_path / "v.krt").validate()
    f = only(report, "bundle.manifest_not_at_root")
    assert (f.severity, f.file) == ("error", "greeter/krt.yml")
    assert "not at the archive root" in f.message


def test_an_alias_bomb_in_krt_yml_is_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    report = greeter("\n".join(lines) + "\n" + GREETER_YML).validate()
    (f,) = report.errors
    assert f.code == "yaml.too_large" and f.file == "krt.yml"


def test_a_package_at_another_version_on_the_image_warns():
    main_py = b"import numpy\n" + files()["src/py-greeter/main.py"]
    here = NodeEnv(installed=(("numpy", "numpy", "2.1.0"),))
    report = project(**{"src/py-greeter/main.py": main_py}).validate(envs={"py-greeter": here})
    f = only(report, "deps.version")
    assert (f.severity, f.file) == ("warning", "src/py-greeter/main.py")
    assert f.message == (
        "node 'py-greeter' imports 'numpy': numpy 2.1.0 here, 1.18.4 in konstellation/kre-py:1.23.0"
    )
    # the same version, or a declared requirement (installed in the node's image): no warning
    same = NodeEnv(installed=(("numpy", "numpy", "1.18.4"),))
    envs = [same] + [
        NodeEnv(requirements=(line,), installed=here.installed)
        for line in ("numpy==2.1.0", " NumPy[x] >= 2", "numpy @ https://example.com/n.whl")
    ]
    for env in envs:
        report = project(**{"src/py-greeter/main.py": main_py}).validate(envs={"py-greeter": env})
        assert "deps.version" not in report.codes()
    # a line that names no distribution declares nothing
    env = NodeEnv(requirements=("-r numpy.txt",), installed=here.installed)
    report = project(**{"src/py-greeter/main.py": main_py}).validate(envs={"py-greeter": env})
    assert "deps.version" in report.codes()
