"""Every limit KRE (and krtlab) applies, pinned at its boundary: the last value accepted and the
first refused, in krt.yml validation and in authoring alike."""

from __future__ import annotations

import pytest

import krtlab as krt
from krtlab.errors import SpecError
from krtlab.spec import rules
from tests.test_validate_rules import GREETER_YML, greeter

NAME_19 = "abcdefghij-klmnopqr"  # 19 characters
NAME_20 = "abcdefghij-klmnopqrs"  # 20 characters

PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }
"""


def test_the_name_limit_is_kres_lt_20():
    assert len(NAME_19) == 19 and len(NAME_20) == 20
    assert rules.MAX_NAME_LENGTH == 19


@pytest.mark.parametrize(
    ("where", "old", "what", "go_path"),
    [
        ("version", "version: greeter-v1", "version name", "Version"),
        ("nodes[0].name", "name: py-greeter\n", "node name", "Nodes[0].Name"),
        ("workflows[0].name", "name: py-greeting", "workflow name", "Workflows[0].Name"),
    ],
)
def test_krt_yml_names_of_19_characters_pass_and_20_are_refused(where, old, what, go_path):
    def named(name):
        text = GREETER_YML.replace(old, old.replace(old.split(": ")[1].strip(), name))
        if where == "nodes[0].name":
            text = text.replace("[py-greeter]", f"[{name}]")
        return greeter(text).validate()

    assert [f.code for f in named(NAME_19).findings if f.path == where] == []
    (f,) = [f for f in named(NAME_20).findings if f.path == where]
    assert (f.code, f.severity) == ("name.too_long", "error")
    assert f.message.startswith(f"{what} {NAME_20!r} is 20 characters long; KRE allows at most 19")
    assert f.kre == f'KRE 7: Invalid length "{NAME_20}" at "{go_path}" must be lower than 20'
    assert rules.check_resource_name(f.hint.split("'")[1]) is None


def _version(name="greeter-v1"):
    v = krt.Version(name, description="d")
    pb = v.proto(PROTO)
    return v, pb


def test_authored_version_names_of_19_characters_pass_and_20_are_refused():
    assert krt.Version(NAME_19).name == NAME_19
    with pytest.raises(SpecError, match=f"version name '{NAME_20}' is 20 characters long"):
        krt.Version(NAME_20)


def test_authored_node_names_of_19_characters_pass_and_20_are_refused():
    v, pb = _version()

    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response()

    assert v.node(name=NAME_19)(greet).name == NAME_19
    with pytest.raises(SpecError, match=f"node name '{NAME_20}' is 20 characters long"):
        v.node(name=NAME_20)(greet)
    with pytest.raises(SpecError, match="node name 'go-greeter-for-everyone' is 23 characters"):
        v.go_node("go-greeter-for-everyone", binary=b"\x7fELF")


def test_authored_workflow_names_of_19_characters_pass_and_20_are_refused():
    v, pb = _version()

    @v.node(name="py-greeter")
    def greet(ctx, req: pb.Request) -> pb.Response:
        return pb.Response()

    assert v.workflow(NAME_19, entrypoint="PyGreet", sequential=[greet]).name == NAME_19
    with pytest.raises(SpecError, match=f"workflow name '{NAME_20}' is 20 characters long"):
        v.workflow(NAME_20, entrypoint="PyGreet", sequential=[greet])


@pytest.mark.parametrize(
    ("name", "ok"),
    [("RATE", True), ("R", True), ("OUTPUT_PRICE_CURRENCY", True), ("RATE_", False),
     ("_RATE", False), ("rate", False), ("RATE-EUR", False)],
)  # fmt: skip
def test_config_variable_names_end_and_start_with_a_capital_or_digit(name, ok):
    text = GREETER_YML.replace("nodes:", f"config:\n  variables: [{name}]\nnodes:")
    found = [f.code for f in greeter(text).validate().findings if f.path == "config.variables[0]"]
    assert found == ([] if ok else ["config.invalid_name"])
