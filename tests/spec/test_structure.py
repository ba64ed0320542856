"""The shape of krt.yml (krtlab/spec/structure.py): each wrong type, missing or unknown field is
reported once, at its line, with krtlab's words, the hint, and KRE's own refusal where KRE has
one (yaml.v2's unmarshal error, the validator's "is required")."""

from __future__ import annotations

import pytest

from tests.test_validate_rules import GREETER_YML, greeter

G = GREETER_YML
KRE_YAML = "KRE 7: error on KRT Yaml parsing: error Unmarshal yaml file: yaml: unmarshal errors:\n"

KRT_YMLS = {
    "version-map": G.replace("version: greeter-v1", "version: {a: 1}"),
    "version-list": G.replace("version: greeter-v1", "version: [a]"),
    "version-empty": G.replace("version: greeter-v1", "version: ''"),
    "version-missing": G.replace("version: greeter-v1\n", ""),
    "version-int": G.replace("version: greeter-v1", "version: 12"),
    "entrypoint-list": G.replace(
        "entrypoint:\n  proto: public_input.proto\n  image: konstellation/kre-entrypoint:1.7.1\n",
        "entrypoint: [a]\n",
    ),
    "config-list": G.replace("nodes:", "config: [A]\nnodes:"),
    "config-vars-map": G.replace("nodes:", "config:\n  variables: {A: 1}\nnodes:"),
    "config-var-int": G.replace("nodes:", "config:\n  variables: [A, 1, [B]]\nnodes:"),
    "config-unknown": G.replace("nodes:", "config:\n  variable: [A]\nnodes:"),
    "nodes-map": G.split("nodes:")[0] + "nodes: {a: 1}\nworkflows: []\n",
    "nodes-missing": G.split("nodes:")[0]
    + "workflows:\n  - name: w\n    entrypoint: PyGreet\n    sequential: [x]\n",
    "node-str": G.replace(
        "  - name: py-greeter\n    image: konstellation/kre-py:1.23.0\n"
        "    src: src/py-greeter/main.py\n",
        "  - py-greeter\n",
    ),
    "node-gpu-int": G.replace(
        "    src: src/py-greeter/main.py", "    src: src/py-greeter/main.py\n    gpu: 1"
    ),
    "node-no-image": G.replace("    image: konstellation/kre-py:1.23.0\n", ""),
    "wf-no-entrypoint": G.replace("    entrypoint: PyGreet\n", ""),
    "wf-seq-str": G.replace("sequential: [py-greeter]", "sequential: py-greeter"),
    "wf-seq-item-map": G.replace("sequential: [py-greeter]", "sequential: [py-greeter, {a: 1}]"),
    "node-subscriptions": G.replace(
        "    src: src/py-greeter/main.py", "    src: src/py-greeter/main.py\n    subscriptions: [x]"
    ),
    "node-replicas": G.replace(
        "    src: src/py-greeter/main.py", "    src: src/py-greeter/main.py\n    replicas: 2"
    ),
    "wf-nodes": G.replace(
        "    sequential: [py-greeter]", "    sequential: [py-greeter]\n    nodes: []"
    ),
    "root-unknown": G + "extra: 1\n",
    "krtversion-int": "krtVersion: 3\n" + G,
    "krtversion-map": "krtVersion: {a: 1}\n" + G,
    "description-list": G.replace("description: d", "description: [d]"),
}

# (code, severity, path, line, message, hint, KRE's message) of every krt.yml finding, in order
EXPECTED = {
    "version-map": [
        (
            "field.type",
            "error",
            "version",
            1,
            "'version' must be a string, not a mapping",
            None,
            KRE_YAML + "  line 1: cannot unmarshal !!map into string",
        ),
    ],
    "version-list": [
        (
            "field.type",
            "error",
            "version",
            1,
            "'version' must be a string, not a list",
            None,
            KRE_YAML + "  line 1: cannot unmarshal !!seq into string",
        ),
    ],
    "version-empty": [
        (
            "field.required",
            "error",
            "version",
            1,
            "'version' is required and empty",
            None,
            'KRE 7: The field "Version" is required',
        ),
    ],
    "version-missing": [
        (
            "field.required",
            "error",
            "version",
            1,
            "'version' is required",
            None,
            'KRE 7: The field "Version" is required',
        ),
    ],
    "version-int": [
        (
            "field.not_string",
            "warning",
            "version",
            1,
            "'version' is written as a number; KRE reads the text '12', "
            "other YAML tools may not: quote it",
            'version: "12"',
            None,
        ),
    ],
    "entrypoint-list": [
        (
            "field.type",
            "error",
            "entrypoint",
            3,
            "'entrypoint' must be a mapping, not a list",
            None,
            KRE_YAML + "  line 3: cannot unmarshal !!seq into krt.Entrypoint",
        ),
    ],
    "config-list": [
        (
            "field.type",
            "error",
            "config",
            6,
            "'config' must be a mapping, not a list",
            None,
            KRE_YAML + "  line 6: cannot unmarshal !!seq into krt.Config",
        ),
    ],
    "config-vars-map": [
        (
            "field.type",
            "error",
            "config.variables",
            7,
            "'config.variables' must be a list, not a mapping",
            None,
            KRE_YAML + "  line 7: cannot unmarshal !!map into []string",
        ),
    ],
    "config-var-int": [
        (
            "field.type",
            "error",
            "config.variables[2]",
            7,
            "config variables must be names, not a list",
            None,
            KRE_YAML + "  line 7: cannot unmarshal !!seq into string",
        ),
    ],
    "config-unknown": [
        (
            "key.unknown",
            "error",
            "config.variable",
            7,
            "unknown key 'variable' in config: KRE silently ignores it",
            "did you mean 'variables'?",
            None,
        ),
    ],
    "nodes-map": [
        (
            "field.type",
            "error",
            "nodes",
            6,
            "'nodes' must be a list, not a mapping",
            None,
            KRE_YAML + "  line 6: cannot unmarshal !!map into []krt.Node",
        ),
        (
            "field.empty",
            "error",
            "workflows",
            7,
            "'workflows' is empty: a version needs at least one workflow",
            None,
            None,
        ),
    ],
    "nodes-missing": [
        (
            "field.required",
            "error",
            "nodes",
            1,
            "'nodes' is required",
            None,
            'KRE 7: The field "Nodes" is required',
        ),
        (
            "sequential.unknown_node",
            "error",
            "workflows[0].sequential[0]",
            9,
            "workflow 'w' runs node 'x', which is not defined in 'nodes'",
            "defined nodes: none",
            "KRE 7: error on KRT Workflow validation: node in sequential not found: x",
        ),
    ],
    "node-str": [
        (
            "field.type",
            "error",
            "nodes[0]",
            7,
            "nodes[0] must be a mapping, not the string 'py-greeter'",
            None,
            KRE_YAML + "  line 7: cannot unmarshal !!str `py-greeter` into krt.Node",
        ),
        (
            "sequential.unknown_node",
            "error",
            "workflows[0].sequential[0]",
            11,
            "workflow 'py-greeting' runs node 'py-greeter', which is not defined in 'nodes'",
            "defined nodes: none",
            "KRE 7: error on KRT Workflow validation: node in sequential not found: py-greeter",
        ),
    ],
    "node-gpu-int": [
        (
            "field.type",
            "error",
            "nodes[0].gpu",
            10,
            "'gpu' must be true or false, not int 1",
            None,
            KRE_YAML + "  line 10: cannot unmarshal !!int `1` into bool",
        ),
    ],
    "node-no-image": [
        (
            "field.required",
            "error",
            "nodes[0].image",
            7,
            "'image' is required",
            None,
            'KRE 7: The field "Nodes[0].Image" is required',
        ),
    ],
    "wf-no-entrypoint": [
        (
            "field.required",
            "error",
            "workflows[0].entrypoint",
            11,
            "'entrypoint' is required",
            None,
            'KRE 7: The field "Workflows[0].Entrypoint" is required',
        ),
    ],
    "wf-seq-str": [
        (
            "node.unused",
            "warning",
            "nodes[0].name",
            7,
            "node 'py-greeter' is in no workflow; KRE never deploys it",
            None,
            None,
        ),
        (
            "field.type",
            "error",
            "workflows[0].sequential",
            13,
            "'sequential' must be a list, not the string 'py-greeter'",
            None,
            KRE_YAML + "  line 13: cannot unmarshal !!str `py-greeter` into []string",
        ),
    ],
    "wf-seq-item-map": [
        (
            "field.type",
            "error",
            "workflows[0].sequential[1]",
            13,
            "sequential entries are node names, not a mapping",
            None,
            KRE_YAML + "  line 13: cannot unmarshal !!map into string",
        ),
        (
            "sequential.unknown_node",
            "error",
            "workflows[0].sequential[1]",
            13,
            "workflow 'py-greeting' runs node \"{'a': 1}\", which is not defined in 'nodes'",
            "defined nodes: py-greeter",
            None,
        ),
    ],
    "node-subscriptions": [
        (
            "key.krt_v2",
            "error",
            "nodes[0].subscriptions",
            10,
            "'subscriptions' is a KRT V2 key; a V1 krt.yml cannot use it",
            "KRT V1 workflows are a 'sequential' list of node names",
            'KRE 8: field Subscriptions in node "py-greeter" is incompatible with version v1',
        ),
    ],
    "node-replicas": [
        (
            "key.krt_v2",
            "error",
            "nodes[0].replicas",
            10,
            "'replicas' is a KRT V2 key; a V1 krt.yml cannot use it",
            "KRT V1 workflows are a 'sequential' list of node names",
            None,
        ),
    ],
    "wf-nodes": [
        (
            "key.krt_v2",
            "error",
            "workflows[0].nodes",
            14,
            "'nodes' is a KRT V2 key; a V1 krt.yml cannot use it",
            "KRT V1 workflows are a 'sequential' list of node names",
            'KRE 8: the field "workflow.nodes" is incompatible with version v1',
        ),
    ],
    "root-unknown": [
        (
            "key.unknown",
            "warning",
            "extra",
            14,
            "unknown key 'extra' in krt.yml: KRE silently ignores it",
            "known keys: krtVersion, version, description, entrypoint, config, nodes, workflows",
            None,
        ),
    ],
    "krtversion-int": [
        (
            "krt.version",
            "error",
            "krtVersion",
            1,
            "krtVersion 3 is not a KRT version",
            "use v1 (or leave it out: v1 is the default)",
            'KRE 8: krtVersion "3" is not valid',
        ),
    ],
    "krtversion-map": [
        (
            "krt.version",
            "error",
            "krtVersion",
            1,
            "krtVersion {'a': 1} is not a KRT version",
            "use v1 (or leave it out: v1 is the default)",
            None,
        ),
    ],
    "description-list": [
        (
            "field.type",
            "error",
            "description",
            2,
            "'description' must be a string, not a list",
            None,
            KRE_YAML + "  line 2: cannot unmarshal !!seq into string",
        ),
    ],
}


@pytest.mark.parametrize("case", sorted(KRT_YMLS))
def test_each_shape_problem_is_reported_once_where_it_is(case):
    report = greeter(KRT_YMLS[case]).validate()
    found = [
        (f.code, f.severity, f.path, f.line, f.message, f.hint, f.kre)
        for f in report.findings
        if f.file == "krt.yml"
    ]
    assert found == EXPECTED[case]
