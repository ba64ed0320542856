"""``krtlab.spec.layout``: KRE's ids and the NATS subjects chaining each workflow's nodes, and
what the stock kre-py image can import (``krtlab.spec.runner_image``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from krtlab.spec.layout import Step, entrypoint_subject, id_source, layout, workflow_ids
from krtlab.spec.model import Manifest, NodeSpec, WorkflowSpec
from krtlab.spec.runner_image import importable_on_kre_py


def numbered() -> Callable[[], str]:
    ids = (f"id{i}" for i in itertools.count(1))
    return lambda: next(ids)


def test_ids_are_five_lowercase_letters_the_same_for_the_same_seed():
    new = id_source("example")
    drawn = [new() for _ in range(3)]
    assert [len(d) for d in drawn] == [5, 5, 5]
    assert all(d.isascii() and d.isalpha() and d.islower() for d in drawn)
    again = id_source("example")
    assert [again() for _ in range(3)] == drawn
    assert drawn == ["vfurd", "hpmmq", "giytl"]


def test_ids_without_a_seed_differ_from_run_to_run():
    a, b = id_source(), id_source()
    assert [a() for _ in range(4)] != [b() for _ in range(4)]


def test_ids_are_unique_among_those_drawn():
    new = id_source("s1551")  # its 100th random draw repeats an earlier one
    drawn = [new() for _ in range(100)]
    assert len(set(drawn)) == 100


def test_workflow_ids_are_drawn_node_edge_node_then_workflow():
    assert workflow_ids([("a", "b", "c"), ("d",)], numbered()) == [
        ("id6", ["id1", "id2", "id4"], ["id3", "id5"]),
        ("id8", ["id7"], []),
    ]


def test_the_entrypoint_subject_names_version_and_rpc():
    assert entrypoint_subject("greeter-v1", "Greet") == "greeter-v1-Greet-entrypoint"


MANIFEST = Manifest(
    "greeter-v1",
    "",
    nodes=(NodeSpec("a", "img", "src/a/main.py"), NodeSpec("b", "img", "src/b/main.py"),
           NodeSpec("c", "img", "src/c/main.py")),
    workflows=(WorkflowSpec("flow", "Greet", ("a", "b", "c")),
               WorkflowSpec("other", "Other", ("c",))),
)  # fmt: skip


def test_layout_chains_each_workflows_nodes_by_edge_subjects():
    steps, subjects = layout(MANIFEST, numbered())
    assert subjects == {
        "Greet": "greeter-v1-Greet-entrypoint",
        "Other": "greeter-v1-Other-entrypoint",
    }
    assert steps == [
        Step("flow", "id6", "Greet", "a", "id1", "greeter-v1-Greet-entrypoint", "id3"),
        Step("flow", "id6", "Greet", "b", "id2", "id3", "id5"),
        Step("flow", "id6", "Greet", "c", "id4", "id5", ""),
        Step("other", "id8", "Other", "c", "id7", "greeter-v1-Other-entrypoint", ""),
    ]


def test_layout_puts_the_prefix_before_every_subject():
    steps, subjects = layout(MANIFEST, numbered(), prefix="rt-")
    assert subjects == {
        "Greet": "rt-greeter-v1-Greet-entrypoint",
        "Other": "rt-greeter-v1-Other-entrypoint",
    }
    assert [(s.nats_input, s.nats_output) for s in steps] == [
        ("rt-greeter-v1-Greet-entrypoint", "rt-id3"),
        ("rt-id3", "rt-id5"),
        ("rt-id5", ""),
        ("rt-greeter-v1-Other-entrypoint", ""),
    ]


def test_layout_of_a_version_without_workflows_is_empty():
    assert layout(Manifest("v", ""), numbered()) == ([], {})


def test_what_the_kre_py_image_imports():
    assert importable_on_kre_py("numpy") is True
    assert importable_on_kre_py("numpy.linalg") is True
    assert importable_on_kre_py("google.protobuf.any_pb2") is True
    assert importable_on_kre_py("json") is True
    assert importable_on_kre_py("os.path") is True
    assert importable_on_kre_py("__future__") is True
    assert importable_on_kre_py("public_input_pb2") is True
    assert importable_on_kre_py("yaml") is False
    assert importable_on_kre_py("numpy linalg") is False
    assert importable_on_kre_py("helpers.x") is False
    assert importable_on_kre_py("helpers.x", frozenset({"helpers"})) is True
