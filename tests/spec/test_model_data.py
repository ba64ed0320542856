"""``krtlab.spec.model``: the krt.yml a manifest writes, the manifest odd data gives, and its
look-ups, exactly."""

from __future__ import annotations

from krtlab.spec.model import ConfigSpec, EntrypointSpec, Manifest, NodeSpec, WorkflowSpec

PY = "konstellation/kre-py:1.23.0"

FULL = Manifest(
    "v1",
    "d",
    EntrypointSpec("in.proto", "konstellation/kre-entrypoint:1.0.0"),
    ConfigSpec(("A", "B"), ("F",)),
    (NodeSpec("a", PY, "src/a/main.py", True), NodeSpec("b", "konstellation/kre-go:1.0", "bin/b")),
    (WorkflowSpec("w", "Rpc", ("a", "b")), WorkflowSpec("x", "Other", ("b",))),
    krt_version="v1",
)

FULL_YAML = """\
krtVersion: v1
version: v1
description: d
entrypoint:
  proto: in.proto
  image: konstellation/kre-entrypoint:1.0.0
config:
  variables:
    - A
    - B
  files:
    - F
nodes:
  - name: a
    image: konstellation/kre-py:1.23.0
    src: src/a/main.py
    gpu: true
  - name: b
    image: konstellation/kre-go:1.0
    src: bin/b
workflows:
  - name: w
    entrypoint: Rpc
    sequential:
      - a
      - b
  - name: x
    entrypoint: Other
    sequential:
      - b
"""


def test_to_data_writes_every_field_in_kres_order():
    data = FULL.to_data()
    assert data == {
        "krtVersion": "v1",
        "version": "v1",
        "description": "d",
        "entrypoint": {"proto": "in.proto", "image": "konstellation/kre-entrypoint:1.0.0"},
        "config": {"variables": ["A", "B"], "files": ["F"]},
        "nodes": [
            {"name": "a", "image": PY, "src": "src/a/main.py", "gpu": True},
            {"name": "b", "image": "konstellation/kre-go:1.0", "src": "bin/b"},
        ],
        "workflows": [
            {"name": "w", "entrypoint": "Rpc", "sequential": ["a", "b"]},
            {"name": "x", "entrypoint": "Other", "sequential": ["b"]},
        ],
    }
    assert list(data) == [
        "krtVersion", "version", "description", "entrypoint", "config", "nodes", "workflows",
    ]  # fmt: skip
    assert FULL.to_yaml() == FULL_YAML


def test_to_data_leaves_out_what_is_not_set():
    bare = Manifest("v1", "", nodes=(NodeSpec("a", PY, "src/a/main.py"),))
    assert bare.to_data() == {
        "version": "v1",
        "description": "",
        "entrypoint": {
            "proto": "public_input.proto",
            "image": "konstellation/kre-entrypoint:1.7.1",
        },
        "nodes": [{"name": "a", "image": PY, "src": "src/a/main.py"}],
        "workflows": [],
    }
    only_files = Manifest("v1", "", config=ConfigSpec(files=("F",))).to_data()
    assert only_files["config"] == {"files": ["F"]}
    only_vars = Manifest("v1", "", config=ConfigSpec(variables=("A",))).to_data()
    assert only_vars["config"] == {"variables": ["A"]}


def test_a_config_is_true_when_it_declares_anything():
    assert bool(ConfigSpec()) is False
    assert bool(ConfigSpec(("A",))) is True
    assert bool(ConfigSpec(files=("F",))) is True
    assert bool(ConfigSpec(("A",), ("F",))) is True


def test_from_data_reads_back_what_to_data_wrote():
    assert Manifest.from_data(FULL.to_data()) == FULL


def test_from_data_makes_odd_values_text_and_skips_odd_entries():
    data = {
        "krtVersion": 2,
        "version": 1.5,
        "description": None,
        "entrypoint": "x",
        "config": {"variables": [True, None, 3], "files": "F"},
        "nodes": [{"name": False, "image": PY, "src": "s", "gpu": "true"}, "junk", {"gpu": True}],
        "workflows": [["w"], {"name": "w", "entrypoint": "R", "sequential": "a"}],
    }
    assert Manifest.from_data(data) == Manifest(
        "1.5",
        "",
        EntrypointSpec("", ""),
        ConfigSpec(("true", "", "3"), ()),
        (NodeSpec("false", PY, "s", False), NodeSpec("", "", "", True)),
        (WorkflowSpec("w", "R", ()),),
        krt_version="2",
    )
    empty = Manifest("", "", EntrypointSpec("", ""))
    assert Manifest.from_data({"nodes": {"a": 1}, "workflows": "w"}) == empty
    assert Manifest.from_data(["not", "a", "mapping"]) == empty
    assert Manifest.from_data({}).krt_version is None
    assert Manifest.from_data({"krtVersion": ""}).krt_version == ""


def test_node_is_the_last_one_of_that_name():
    first, last = NodeSpec("a", PY, "one.py"), NodeSpec("a", PY, "two.py")
    m = Manifest("v", "", nodes=(first, NodeSpec("b", PY, "b.py"), last))
    assert m.node("a") is last
    assert m.node("b") == NodeSpec("b", PY, "b.py")
    assert m.node("c") is None


def test_workflow_by_name_or_rpc():
    assert FULL.workflow("w") is FULL.workflows[0]
    assert FULL.workflow("Rpc") is FULL.workflows[0]
    assert FULL.workflow("Other") is FULL.workflows[1]
    assert FULL.workflow("nope") is None


def test_with_version_changes_the_version_only():
    renamed = FULL.with_version("v2")
    assert renamed.version == "v2"
    assert renamed == Manifest(
        "v2", FULL.description, FULL.entrypoint, FULL.config, FULL.nodes, FULL.workflows, "v1"
    )
    assert FULL.version == "v1"


def test_a_nodes_runtime_follows_its_image_and_for_custom_images_its_src():
    assert NodeSpec("a", PY, "bin/a").runtime == "python"
    assert NodeSpec("a", "konstellation/kre-go:1.0", "a.py").runtime == "go"
    assert NodeSpec("a", "registry.example.com/x:1", "src/a/main.py").runtime == "python"
    assert NodeSpec("a", "registry.example.com/x:1", "bin/a").runtime == "go"
