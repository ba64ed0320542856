"""The shape findings of ``krtlab.spec.structure`` that the table of test_structure.py does not
hold, whole: a missing entrypoint or sequential, krtVersion, KRT V2 keys of a nameless node, items
of the wrong kind, and each problem reported even when another one came first."""

from __future__ import annotations

from tests.spec.test_validate_messages import KRE_YAML, found
from tests.test_validate_rules import GREETER_YML as G

EP = "entrypoint:\n  proto: public_input.proto\n  image: konstellation/kre-entrypoint:1.7.1\n"


def test_krt_version_2_and_unknown_versions():
    assert found("krtVersion: v2\n" + G) == [
        ("krt.version", "error", "krtVersion", 1,
         "krtVersion v2 is KRT V2; krtlab handles KRT V1 versions",
         "remove krtVersion or set it to v1", None),
    ]  # fmt: skip
    (finding,) = found("krtVersion: 1.10\n" + G)
    assert finding[:3] == ("krt.version", "error", "krtVersion")
    assert finding[5:] == (
        "use v1 (or leave it out: v1 is the default)",
        'KRE 8: krtVersion "1.10" is not valid',  # the text as written, as yaml.v2 reads it
    )


def test_a_missing_or_empty_entrypoint_needs_its_proto_and_image():
    assert found(G.replace(EP, "")) == [
        ("field.required", "error", "entrypoint.image", 1, "'entrypoint.image' is required",
         None, 'KRE 7: The field "Entrypoint.Image" is required'),
        ("field.required", "error", "entrypoint.proto", 1, "'entrypoint.proto' is required",
         None, 'KRE 7: The field "Entrypoint.Proto" is required'),
    ]  # fmt: skip
    assert found(G.replace(EP, "entrypoint: {}\n")) == [
        ("field.required", "error", "entrypoint.image", 3, "'image' is required", None,
         'KRE 7: The field "Entrypoint.Image" is required'),
        ("field.required", "error", "entrypoint.proto", 3, "'proto' is required", None,
         'KRE 7: The field "Entrypoint.Proto" is required'),
    ]  # fmt: skip


def test_config_files_must_be_a_list():
    assert found(G.replace("nodes:", "config:\n  files: {A: 1}\nnodes:")) == [
        ("field.type", "error", "config.files", 7, "'config.files' must be a list, not a mapping",
         None, KRE_YAML + "  line 7: cannot unmarshal !!map into []string"),
    ]  # fmt: skip


def test_a_workflow_needs_a_sequential_that_lists_nodes():
    missing = found(G.replace("    sequential: [py-greeter]\n", ""))
    assert missing[-1] == (
        "field.required", "error", "workflows[0].sequential", 11, "'sequential' is required",
        None, 'KRE 7: The field "Workflows[0].Sequential" is required',
    )  # fmt: skip
    empty = found(G.replace("sequential: [py-greeter]", "sequential: []"))
    assert empty[-1] == (
        "workflow.empty", "error", "workflows[0].sequential", 13,
        "'sequential' lists no nodes: the workflow could never answer", None,
        "KRE 8: the field \"workflow.sequential\" hasn't nodes defined",
    )  # fmt: skip


def test_missing_nodes_do_not_hide_missing_workflows():
    assert found(G.split("nodes:")[0]) == [
        ("field.required", "error", "nodes", 1, "'nodes' is required", None,
         'KRE 7: The field "Nodes" is required'),
        ("field.required", "error", "workflows", 1, "'workflows' is required", None,
         'KRE 7: The field "Workflows" is required'),
    ]  # fmt: skip


def test_each_node_is_checked_after_one_of_the_wrong_kind():
    text = G.replace("nodes:\n", "nodes:\n  - x\n  - ~\n  - name: a\n")
    shape = [f for f in found(text) if f[0] in ("field.type", "field.required")]
    assert shape == [
        ("field.type", "error", "nodes[0]", 7, "nodes[0] must be a mapping, not the string 'x'",
         None, KRE_YAML + "  line 7: cannot unmarshal !!str `x` into krt.Node"),
        ("field.type", "error", "nodes[1]", 8, "nodes[1] must be a mapping, not empty", None,
         None),
        ("field.required", "error", "nodes[2].image", 9, "'image' is required", None,
         'KRE 7: The field "Nodes[2].Image" is required'),
        ("field.required", "error", "nodes[2].src", 9, "'src' is required", None,
         'KRE 7: The field "Nodes[2].Src" is required'),
    ]  # fmt: skip


def test_a_krt_v2_key_of_a_nameless_node_quotes_kre_8_with_an_empty_name():
    v2 = [f for f in found(G.replace("  - name: py-greeter\n", "  - subscriptions: [x]\n"))
          if f[0] == "key.krt_v2"]  # fmt: skip
    assert v2 == [
        ("key.krt_v2", "error", "nodes[0].subscriptions", 7,
         "'subscriptions' is a KRT V2 key; a V1 krt.yml cannot use it",
         "KRT V1 workflows are a 'sequential' list of node names",
         'KRE 8: field Subscriptions in node "" is incompatible with version v1'),
    ]  # fmt: skip


def test_keys_after_a_krt_v2_key_are_still_checked():
    text = G.replace(
        "    src: src/py-greeter/main.py",
        "    src: src/py-greeter/main.py\n    subscriptions: [x]\n    gpuu: true",
    )
    assert [(f[0], f[2], f[4], f[5]) for f in found(text)] == [
        ("key.krt_v2", "nodes[0].subscriptions",
         "'subscriptions' is a KRT V2 key; a V1 krt.yml cannot use it",
         "KRT V1 workflows are a 'sequential' list of node names"),
        ("key.unknown", "nodes[0].gpuu",
         "unknown key 'gpuu' in nodes[0]: KRE silently ignores it", "did you mean 'gpu'?"),
    ]  # fmt: skip


def test_a_decimal_number_where_text_is_expected_is_a_number_too():
    (finding,) = found(G.replace("description: d", "description: 1.5"))
    assert finding[4].startswith("'description' is written as a number; KRE reads the text '1.5'")
