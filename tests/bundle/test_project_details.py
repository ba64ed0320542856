"""A project in memory: how krt.yml's bytes are read, the facts handed to validation (files,
entrypoint proto, Python sources), the findings about the container, and the copy with generated
``*_pb2.py`` modules."""

from __future__ import annotations

import pytest

from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project, proto_facts_from
from krtlab.errors import ProtoError, YamlSyntaxError
from krtlab.spec.facts import FileFacts, NodeContract, ProtoFacts, RpcFacts
from krtlab.spec.findings import ERROR, WARNING, Finding
from krtlab.spec.pysource import read_python_source
from krtlab.spec.yamlsrc import parse_yaml
from tests.support import EXAMPLES

YML = "version: v1\n"
GREETER = dict(load_project(EXAMPLES / "greeter").files)


def _syntax_findings(raw: bytes) -> list[Finding]:
    report = Project({"krt.yml": raw}, "here").validate()
    assert report.subject == "here"
    return list(report.findings)


# -- krt.yml's bytes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe" + YML.encode("utf-16-le"),
        b"\xfe\xff" + YML.encode("utf-16-be"),
        b"\xef\xbb\xbf" + YML.encode(),
    ],
    ids=["utf-16-le", "utf-16-be", "utf-8-bom"],
)
def test_krt_yml_after_a_byte_order_mark_is_read(raw):
    assert Project({"krt.yml": raw}).manifest.version == "v1"


def test_krt_yml_that_is_not_utf8_is_located_at_the_line_of_the_bad_byte():
    raw = b"\nversion: v1\n# \xff\nx: 1\ny: 2\n"
    assert _syntax_findings(raw) == [
        Finding(
            ERROR,
            "yaml.syntax",
            "krt.yml is not valid YAML: it is not UTF-8 text (byte 15: invalid start byte); "
            "KRE's yaml.v2 refuses it too",
            (),
            "krt.yml",
            3,
        )
    ]


def test_krt_yml_that_is_not_utf16_after_its_mark_has_no_line():
    assert _syntax_findings(b"\xff\xfea") == [
        Finding(
            ERROR,
            "yaml.syntax",
            "krt.yml is not valid YAML: it is not UTF-16 text (byte 2: truncated data); "
            "KRE's yaml.v2 refuses it too",
            (),
            "krt.yml",
            None,
        )
    ]


def test_too_many_aliases_say_so_in_their_own_words_with_a_hint():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    text = "\n".join(lines) + "\n" + YML
    with pytest.raises(YamlSyntaxError) as info:
        parse_yaml(text)
    (f,) = _syntax_findings(text.encode())
    assert (f.code, f.message, f.line) == ("yaml.too_large", info.value.message, info.value.line)
    assert f.hint == (
        "write the values out; keep anchors for small repeated parts, such as a node's image"
    )
    assert f.kre is None


def test_a_bundle_without_krt_yml_quotes_kre():
    report = Project({"a.txt": b""}, "here").validate()
    assert report.subject == "here"
    assert list(report.findings) == [
        Finding(
            ERROR,
            "bundle.no_manifest",
            "here has no krt.yml (or krt.yaml) at its root",
            (),
            "krt.yml",
            None,
            kre="KRE 7: error on KRT Yaml extraction: error krt.yml file missing",
        )
    ]
    # a nested one is what KRE reads then: krtlab still finds none at the root, KRE no error
    (f,) = Project({"docs/krt.yml": YML.encode()}, "here").validate().findings
    assert (f.code, f.message, f.kre) == (
        "bundle.no_manifest",
        "here has no krt.yml (or krt.yaml) at its root",
        None,
    )


def test_container_problems_join_a_report_that_keeps_its_subject():
    problem = Finding(WARNING, "bundle.manifest_name", "m", file="kre.yaml")
    broken = Project({"krt.yml": b"a: [\n"}, "here", problems=[problem]).validate()
    assert (broken.subject, broken.findings[-1]) == ("here", problem)
    ok = Project(GREETER, "here", problems=[problem]).validate()
    assert (ok.subject, list(ok.findings)) == ("greeter-v1", [problem])
    no_version = dict(GREETER)
    no_version["krt.yml"] = no_version["krt.yml"].replace(b"version: greeter-v1\n", b"")
    assert Project(no_version, "here").validate().subject == "here"


def test_three_root_manifests_name_the_two_kre_ignores():
    files = {"krt.yml": YML.encode(), "krt.yaml": YML.encode(), "krtxyml": YML.encode()}
    found = [f for f in Project(files).validate().findings if f.code == "bundle.two_manifests"]
    assert found == [
        Finding(
            ERROR,
            "bundle.two_manifests",
            "krt.yml and krt.yaml and krtxyml are both at the bundle root; KRE reads krt.yml, "
            "the first in the archive, and ignores krt.yaml and krtxyml",
            (),
            "krt.yaml",
            hint="keep one krt.yml: delete krt.yaml and krtxyml or krt.yml",
        )
    ]


def test_findings_in_a_krt_yaml_name_that_file():
    files = {k: v for k, v in GREETER.items() if k != "krt.yml"}
    files["krt.yaml"] = GREETER["krt.yml"].replace(b"description:", b"descripton:")
    (f,) = [f for f in Project(files).validate().findings if f.code == "key.unknown"]
    assert (f.file, f.line) == ("krt.yaml", 2)


def test_requirements_beside_a_node_count_unless_envs_are_given():
    main = b"import not_a_known_package\n" + GREETER["src/py-greeter/main.py"]
    files = {**GREETER, "src/py-greeter/main.py": main}
    files["src/py-greeter/requirements.txt"] = b"not_a_known_package==2.0\n"
    project = Project(files)
    assert project.validate().findings == ()
    (f,) = project.validate(envs={}).findings
    assert (f.code, f.file, f.line) == ("src.import_not_in_image", "src/py-greeter/main.py", 1)


def test_given_contracts_are_checked():
    contract = NodeContract("entrypoint.Response", "entrypoint.Response", "declared")
    (f,) = Project(GREETER).validate(contracts={"py-greeter": contract}).findings
    assert (f.code, f.loc) == ("chain.input_mismatch", ("workflows", 0, "sequential", 0))


# -- facts ---------------------------------------------------------------------------------------


def test_file_facts_are_every_file_and_every_folder_above_one():
    files = {"a/b/c.bin": b"\x00\x01\x02\x03\x04\x05", "krt.yml": b"v"}
    assert Project(files).file_facts() == {
        "a/b/c.bin": FileFacts("file", 6, b"\x00\x01\x02\x03"),
        "a/b": FileFacts("dir"),
        "a": FileFacts("dir"),
        "krt.yml": FileFacts("file", 1, b"v"),
    }


PROTO = b"""\
syntax = "proto3";
import "other.proto";
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint {
  rpc Go (Request) returns (Response) {};
  rpc Up (stream Request) returns (Response) {};
  rpc Down (Request) returns (stream other.Thing) {};
}
"""
OTHER = b'syntax = "proto3";\npackage other;\nmessage Thing { string x = 1; }\n'


def test_the_facts_of_an_entrypoint_proto_without_a_package():
    files = {"krt.yml": YML.encode(), "public_input.proto": PROTO, "other.proto": OTHER}
    assert Project(files).proto_facts() == ProtoFacts(
        file="public_input.proto",
        package="",
        rpcs={
            "Go": RpcFacts("Go", "Request", "Response", 6, False),
            "Up": RpcFacts("Up", "Request", "Response", 7, True),
            "Down": RpcFacts("Down", "Request", "other.Thing", 8, True),
        },
        messages=frozenset({"Request", "Response", "other.Thing"}),
        services=("Entrypoint",),
        modules={
            "other_pb2": {"Thing": "other.Thing"},
            "public_input_pb2": {"Request": "Request", "Response": "Response"},
        },
    )
    compiled = Project(files).compiled
    assert not isinstance(compiled, ProtoError)
    assert proto_facts_from(compiled, "other.proto").rpcs is None


def test_the_entrypoint_proto_krt_yml_names_or_public_input_proto():
    named = {"krt.yml": b"entrypoint:\n  proto: ./mine.proto\n", "mine.proto": OTHER}
    facts = Project(named).proto_facts()
    assert facts is not None and (facts.file, facts.package) == ("mine.proto", "other")
    default = {"krt.yml": YML.encode(), "public_input.proto": OTHER}
    facts = Project(default).proto_facts()
    assert facts is not None and (facts.file, facts.package) == ("public_input.proto", "other")


def test_an_entrypoint_proto_below_the_root_has_no_facts():
    files = {"krt.yml": b"entrypoint:\n  proto: p/a.proto\n", "p/a.proto": OTHER}
    assert Project(files).proto_facts() is None


def test_an_entrypoint_proto_that_does_not_compile_gives_its_issues():
    files = {"krt.yml": YML.encode(), "public_input.proto": b'syntax = "proto3";\nmessage {\n'}
    facts = Project(files).proto_facts()
    assert facts is not None and facts.file == "public_input.proto"
    assert [(f, line) for f, line, _, _ in facts.issues] == [("public_input.proto", 2)]
    # an error that names no place is put on the entrypoint proto
    project = Project({"krt.yml": YML.encode(), "public_input.proto": OTHER})
    project.__dict__["compiled"] = ProtoError("protoc crashed")
    assert project.proto_facts() == ProtoFacts(
        file="public_input.proto", issues=(("public_input.proto", None, None, "protoc crashed"),)
    )


def test_proto_sources_are_the_root_protos_as_text():
    files = {"b.proto": b"// \xff\n", "a.proto": b"", "p/c.proto": b"", "d.txt": b""}
    assert Project(files).proto_sources() == {"a.proto": "", "b.proto": "// \ufffd\n"}


def test_source_facts_are_the_python_files_of_the_node_folders():
    yml = (
        "nodes:\n  - {name: n, image: konstellation/kre-py:1.23.0, src: ./src/n/main.py}\n"
        "  - {name: g, image: konstellation/kre-go:1.11.0, src: bin/g}\n"
        "  - {name: e, image: konstellation/kre-py:1.23.0, src: ''}\n"
    )
    main, helper, deep = b"import helper\n# \xff\n", b"X = 1  # \xfe\n", b"import os\n"
    files = {
        "krt.yml": yml.encode(),
        "src/n/main.py": main,
        "src/n/helper.py": helper,
        "src/n/data.txt": b"import json\n",
        "src/n/public_input_pb2.py": b"import google\n",
        "src/n/sub/deep.py": deep,
        "src/other.py": b"",
        "bin/g": b"\x7fELF",
        "bin/g.py": b"",
    }
    facts = Project(files).source_facts()
    assert facts == {
        "src/n/main.py": read_python_source(main.decode("utf-8", "replace")),
        "src/n/helper.py": read_python_source(helper.decode("utf-8", "replace")),
        "src/n/sub/deep.py": read_python_source(deep.decode()),
    }


# -- generated protobuf modules ------------------------------------------------------------------


def test_generated_pb2_modules_go_into_each_python_node_folder():
    yml = (
        "nodes:\n  - {name: a, image: konstellation/kre-py:1.23.0, src: src/a/main.py}\n"
        "  - {name: r, image: konstellation/kre-py:1.23.0, src: main.py}\n"
        "  - {name: b, image: konstellation/kre-py:1.23.0, src: src/b/main.py}\n"
        "  - {name: g, image: konstellation/kre-go:1.11.0, src: src/g/main.py}\n"
        "  - {name: c, image: konstellation/kre-go:1.11.0, src: src/c/run}\n"
    )
    files = {
        "krt.yml": yml.encode(),
        "public_input.proto": OTHER,
        "src/b/public_input_pb2.py": b"mine",
    }
    problem = Finding(WARNING, "bundle.manifest_name", "m")
    project = Project(files, "here", frozenset({"src/c/run"}), [problem])
    copy = project.with_generated_pb2()
    assert sorted(copy.files) == [
        "krt.yml", "public_input.proto", "public_input_pb2.py", "src/a/public_input_pb2.py",
        "src/b/public_input_pb2.py",
    ]  # fmt: skip
    code = copy.files["src/a/public_input_pb2.py"]
    assert b"DESCRIPTOR" in code and copy.files["public_input_pb2.py"] == code
    assert copy.files["src/b/public_input_pb2.py"] == b"mine"  # kept
    assert (copy.origin, copy.executables, copy.problems) == ("here", {"src/c/run"}, [problem])
    assert copy.problems is not project.problems
    assert copy.parsed is project.parsed and copy.manifest is project.manifest
    assert copy.compiled is project.compiled
    assert project.files == files  # unchanged
    broken = Project({"krt.yml": yml.encode(), "public_input.proto": b"message {"})
    assert broken.with_generated_pb2() is broken
