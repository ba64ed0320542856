"""What each name, config, image and reference finding of ``krtlab.spec.validate`` says, whole:
the message, the hint and KRE's (or kli's) own words, as a user reads them."""

from __future__ import annotations

from krtlab.spec.facts import FileFacts
from krtlab.spec.validate import validate
from krtlab.spec.yamlsrc import parse_yaml
from tests.test_validate_rules import GREETER_YML as G

KRE_YAML = "KRE 7: error on KRT Yaml parsing: error Unmarshal yaml file: yaml: unmarshal errors:\n"


def found(text: str, **kwargs):
    """(code, severity, path, line, message, hint, kre) of every finding, in order."""
    report = validate(parse_yaml(text), **kwargs)
    return [(f.code, f.severity, f.path, f.line, f.message, f.hint, f.kre) for f in report.findings]


NOT_A_RESOURCE_NAME = (
    "is not a valid resource name: lowercase letters, digits and '-' only, starting and ending "
    "with a letter or digit"
)


def test_a_name_is_checked_as_written_not_as_yaml_reads_it():
    assert found(G.replace("version: greeter-v1", "version: 1.10"))[1:] == [
        ("name.invalid", "error", "version", 1, f"version name '1.10' {NOT_A_RESOURCE_NAME}",
         "try '110'", 'KRE 7: Invalid resource name "1.10" at "Version"'),
    ]  # fmt: skip


def test_an_invalid_node_name_says_what_is_allowed_and_what_to_try():
    text = G.replace("  - name: py-greeter\n", "  - name: Py.Greeter\n")
    assert found(text.replace("[py-greeter]", "[Py.Greeter]")) == [
        ("name.invalid", "error", "nodes[0].name", 7,
         f"node name 'Py.Greeter' {NOT_A_RESOURCE_NAME}", "try 'pygreeter'",
         'KRE 7: Invalid resource name "Py.Greeter" at "Nodes[0].Name"'),
    ]  # fmt: skip


def test_a_long_workflow_name_says_its_length_and_kres_limit():
    assert found(G.replace("  - name: py-greeting", "  - name: a-workflow-name-of-20")) == [
        ("name.too_long", "error", "workflows[0].name", 11,
         "workflow name 'a-workflow-name-of-20' is 21 characters long; KRE allows at most 19 "
         "(it is used in Kubernetes object names)", "try 'a-workflow-name-of'",
         'KRE 7: Invalid length "a-workflow-name-of-20" at "Workflows[0].Name" must be lower '
         "than 20"),
    ]  # fmt: skip


def test_config_names_kre_and_kubernetes_refuse():
    config = "config:\n  variables: [GOOD, my-var.x]\n  files: [model_file, model-file]\nnodes:"
    env = "Error:Field validation for '{0}' failed on the 'env' tag"
    assert found(G.replace("nodes:", config)) == [
        ("config.invalid_name", "error", "config.variables[1]", 7,
         "config variable 'my-var.x' is not an environment variable name: capital letters, "
         "digits and '_' only", "try 'MY_VAR_X'",
         "KRE 7: Key: 'Krt.Config.Variables[1]' " + env.format("Variables[1]")),
        ("config.invalid_name", "warning", "config.files[0]", 8,
         "config file 'model_file' is not in capitals: `kli krt validate` refuses it, KRE "
         "accepts it and the nodes get it as the environment variable 'model_file'",
         "try 'MODEL_FILE'", "kli: Key: 'File.Config.Files[0]' " + env.format("Files[0]")),
        ("config.invalid_name", "error", "config.files[1]", 8,
         "config file 'model-file' cannot be an environment variable: Kubernetes skips it when "
         "it passes the config to the nodes, so they never see the value", "try 'MODEL_FILE'",
         "kli: Key: 'File.Config.Files[1]' " + env.format("Files[1]")),
    ]  # fmt: skip


def test_the_entrypoint_proto_must_be_a_proto_file():
    assert found(G.replace("proto: public_input.proto", "proto: public_input.txt")) == [
        ("entrypoint.proto_suffix", "error", "entrypoint.proto", 4,
         "entrypoint.proto 'public_input.txt' must name a .proto file", "public_input.proto",
         "KRE 7: Key: 'Krt.Entrypoint.Proto' Error:Field validation for 'Proto' failed on the "
         "'endswith' tag"),
    ]  # fmt: skip


def test_invalid_images_are_named_with_kli_s_reason():
    entrypoint = G.replace("image: konstellation/kre-entrypoint:1.7.1", "image: bad image")
    assert found(entrypoint) == [
        ("image.invalid", "error", "entrypoint.image", 5,
         "'bad image' is not a valid image reference: invalid reference format", None,
         "kli: error validating KRT images: entrypoint image error: invalid reference format"),
    ]  # fmt: skip
    node = G.replace("image: konstellation/kre-py:1.23.0", "image: Kre/Py")
    assert found(node) == [
        ("image.invalid", "error", "nodes[0].image", 8,
         "'Kre/Py' is not a valid image reference: repository name must be lowercase", None,
         "kli: error validating KRT images: node image error: repository name must be lowercase"),
    ]  # fmt: skip
    listed = G.replace("image: konstellation/kre-entrypoint:1.7.1", "image: [a]")
    assert found(listed) == [
        ("field.type", "error", "entrypoint.image", 5, "'image' must be a string, not a list",
         None, KRE_YAML + "  line 5: cannot unmarshal !!seq into string"),
    ]  # fmt: skip


def test_an_unknown_node_in_sequential_quotes_kre_with_the_text_as_written():
    text = G.replace("sequential: [py-greeter]", "sequential: [py-greeter, 1.10, {a: 1}]")
    unknown = [f for f in found(text) if f[0] == "sequential.unknown_node"]
    assert unknown[0] == (
        "sequential.unknown_node", "error", "workflows[0].sequential[1]", 13,
        "workflow 'py-greeting' runs node '1.10', which is not defined in 'nodes'",
        "defined nodes: py-greeter",
        "KRE 7: error on KRT Workflow validation: node in sequential not found: 1.10",
    )  # fmt: skip
    # a mapping entry: KRE refuses it earlier, as an unmarshal error (the field.type finding)
    assert unknown[1][2] == "workflows[0].sequential[2]" and unknown[1][6] is None


def test_a_node_defined_twice_names_both_places():
    again = "  - name: py-greeter\n    image: konstellation/kre-py:1.23.0\n    src: x.py\n"
    assert found(G.replace("workflows:", again + "workflows:")) == [
        ("node.duplicate", "error", "nodes[1].name", 10,
         "node 'py-greeter' is defined twice (nodes[0] and nodes[1]); KRE silently keeps the "
         "last definition", None, None),
    ]  # fmt: skip


def test_krt_yml_that_is_no_mapping():
    message = (
        "krt.yml must be a mapping with version, description, entrypoint, nodes and workflows; "
        "this one is "
    )
    assert found("- a\n") == [
        ("yaml.not_mapping", "error", "", 1, message + "a list", None,
         KRE_YAML + "  line 1: cannot unmarshal !!seq into krt.Krt"),
    ]  # fmt: skip
    assert found("") == [("yaml.not_mapping", "error", "", None, message + "empty", None, None)]
    assert found("just text\n")[0][4] == message + "a str"


def test_the_report_names_its_subject_and_the_manifest_file():
    assert validate(parse_yaml(G)).subject == "greeter-v1"
    assert validate(parse_yaml(G), subject="mine").subject == "mine"
    assert validate(parse_yaml("- a\n")).subject == ""
    assert validate(parse_yaml("- a\n"), subject="s").subject == "s"
    report = validate(parse_yaml("- a\n"), manifest_file="krt.yaml")
    assert [f.file for f in report.findings] == ["krt.yaml"]
    bad = G.replace("version: greeter-v1", "version: Bad")
    assert [f.file for f in validate(parse_yaml(bad)).findings] == ["krt.yml"]
    assert [f.file for f in validate(parse_yaml(bad), manifest_file="k.yml").findings] == ["k.yml"]


def not_string(value: str):
    (finding,) = found(G.replace("description: d", f"description: {value}"))
    assert finding[:4] == ("field.not_string", "warning", "description", 2)
    return finding[4], finding[5]


def test_text_written_as_another_yaml_type_says_which_and_how_to_quote_it():
    quote = "other YAML tools may not: quote it"
    for value, word in (("true", "boolean"), ("yes", "boolean"), ("2024-01-02", "date"),
                        ("0x1F", "number"), ("12", "number")):  # fmt: skip
        assert not_string(value) == (
            f"'description' is written as a {word}; KRE reads the text '{value}', {quote}",
            f'description: "{value}"',
        )
    assert not_string("!custom x") == (
        f"'description' is written as a tagged value; KRE reads the text 'x', {quote}",
        'description: "x"',
    )


def test_long_values_are_shortened_in_messages_and_get_no_hint():
    digits = "1" * 58  # shown whole: its quoted text is 60 characters
    assert not_string(digits)[0].startswith(
        f"'description' is written as a number; KRE reads the text '{digits}', "
    )
    shown = "'" + "1" * 55 + "...'"
    assert f"KRE reads the text {shown}, " in not_string("1" * 59)[0]
    assert not_string("1" * 60)[1] == f'description: "{"1" * 60}"'  # a hint up to 60 characters
    assert not_string("1" * 61)[1] is None


def test_workflows_sharing_a_name_or_an_rpc_and_nodes_nobody_runs():
    other = (
        "  - name: other\n    image: konstellation/kre-py:1.23.0\n    src: src/py-greeter/main.py\n"
    )
    text = G.replace("workflows:", other + "workflows:")
    text = text.replace("sequential: [py-greeter]", "sequential: [py-greeter, zzz]")
    text += "  - name: py-greeting\n    entrypoint: PyGreet\n    sequential: [other]\n"
    assert found(text) == [
        ("sequential.unknown_node", "error", "workflows[0].sequential[1]", 16,
         "workflow 'py-greeting' runs node 'zzz', which is not defined in 'nodes'",
         "defined nodes: py-greeter, other",
         "KRE 7: error on KRT Workflow validation: node in sequential not found: zzz"),
        ("workflow.duplicate_name", "error", "workflows[1].name", 17,
         "workflow name 'py-greeting' is used twice (workflows[0] and workflows[1])", None, None),
        ("workflow.duplicate_entrypoint", "error", "workflows[1].entrypoint", 18,
         "rpc 'PyGreet' is already served by workflows[0]; KRE routes each rpc to one workflow "
         "and the other never runs", "give each workflow its own rpc in service Entrypoint",
         None),
    ]  # fmt: skip
    unused = found(G.replace("workflows:", other + "workflows:"))
    assert unused == [
        ("node.unused", "warning", "nodes[1].name", 10,
         "node 'other' is in no workflow; KRE never deploys it", None, None),
    ]  # fmt: skip


FILE, DIR = FileFacts("file"), FileFacts("dir")
PROJECT = {"krt.yml": FILE, "public_input.proto": FILE, "src": DIR, "src/py-greeter": DIR,
           "src/py-greeter/main.py": FILE}  # fmt: skip


def file_findings(text: str, files, *codes: str):
    report = validate(parse_yaml(text), files=files)
    return [(f.code, f.severity, f.path, f.line, f.file, f.message, f.hint, f.kre)
            for f in report.findings if f.code in codes]  # fmt: skip


def test_files_named_like_krt_yml_are_skipped_by_kre():
    files = {**PROJECT, "docs": DIR, "docs/krt.yaml": FILE, "docs/krtxyml": DIR}
    assert file_findings(G, files, "file.manifest_like") == [
        ("file.manifest_like", "warning", "", None, "docs/krt.yaml",
         "'docs/krt.yaml' is named like krt.yml; KRE skips such files when it unpacks the "
         "bundle, so nodes never see it", "rename it", None),
    ]  # fmt: skip


def test_the_entrypoint_proto_must_be_a_file_named_public_input_proto_at_the_root():
    codes = ("proto.missing", "proto.not_file", "proto.not_public_input", "proto.not_at_root")
    at = ("error", "entrypoint.proto", 4, "krt.yml")
    missing = G.replace("public_input.proto", "public_inpt.proto")
    assert file_findings(missing, PROJECT, *codes) == [
        ("proto.missing", *at, "entrypoint proto 'public_inpt.proto' is not in the project",
         "did you mean 'public_input.proto'?", None),
    ]  # fmt: skip
    no_protos = {p: f for p, f in PROJECT.items() if p != "public_input.proto"}
    assert file_findings(G, {**no_protos, "x.txt": FILE}, *codes)[0][6] is None
    assert file_findings(G, {**PROJECT, "public_input.proto": DIR}, *codes) == [
        ("proto.not_file", *at,
         "entrypoint proto 'public_input.proto' is a folder, not a file: KRE's entrypoint reads "
         "the proto file", "put the proto's text in a file of that name at the bundle root",
         None),
    ]  # fmt: skip
    api = G.replace("public_input.proto", "api.proto")
    assert file_findings(api, {**PROJECT, "api.proto": FILE}, *codes) == [
        ("proto.not_public_input", *at,
         "KRE's entrypoint image always reads /krt-files/public_input.proto, not 'api.proto'",
         "name the file public_input.proto and put it at the bundle root", None),
    ]  # fmt: skip
    custom = G.replace("public_input.proto", "protos/public_input.proto").replace(
        "kre-entrypoint:1.7.1", "my-entrypoint:1"
    )
    files = {**PROJECT, "protos": DIR, "protos/public_input.proto": FILE}
    assert file_findings(custom, files, *codes) == [
        ("proto.not_at_root", "warning", "entrypoint.proto", 4, "krt.yml",
         "entrypoint proto 'protos/public_input.proto' is not at the bundle root, where krtlab "
         "compiles the protos: its rpcs and the workflows' messages are not checked",
         "put it at the bundle root", None),
    ]  # fmt: skip
    assert file_findings(custom.replace("protos/", ""), PROJECT, *codes) == []


def src(path: str, files=PROJECT):
    text = G.replace("src: src/py-greeter/main.py", f"src: {path}")
    codes = ("src.outside", "src.missing", "src.not_file", "src.manifest_like")
    return file_findings(text, files, *codes)


def test_a_node_src_must_be_a_regular_file_inside_the_bundle():
    at = ("error", "nodes[0].src", 9, "krt.yml")
    inside = "paths are relative to the bundle root, e.g. src/etl/main.py"
    for path in ("/abs/main.py", "../main.py", ".."):
        assert src(path) == [
            ("src.outside", *at, f"src {path!r} must be a path inside the bundle", inside, None),
        ]  # fmt: skip
    kre = "KRE 7: error src File {} for node py-greeter not exists "
    assert src("src/py-greeter/mian.py") == [
        ("src.missing", *at,
         "src file 'src/py-greeter/mian.py' of node 'py-greeter' is not in the project",
         "did you mean 'src/py-greeter/main.py'?", kre.format("src/py-greeter/mian.py")),
    ]  # fmt: skip
    assert src("src/py-greeter") == [
        ("src.not_file", *at,
         "src 'src/py-greeter' of node 'py-greeter' is a folder, not a regular file", None,
         kre.format("src/py-greeter")),
    ]  # fmt: skip
    assert src("src/link.py", {**PROJECT, "src/link.py": FileFacts("link")}) == [
        ("src.not_file", *at,
         "src 'src/link.py' of node 'py-greeter' is a link, not a regular file", None,
         kre.format("src/link.py")),
    ]  # fmt: skip
    assert src("src/krt.yml", {**PROJECT, "src/krt.yml": FILE}) == [
        ("src.manifest_like", *at,
         "src 'src/krt.yml' of node 'py-greeter' is named like krt.yml: KRE's extractor skips "
         "such files, so the node's file is never unpacked", "rename the file",
         kre.format("src/krt.yml")),
    ]  # fmt: skip


def test_nothing_parsed_is_an_empty_krt_yml():
    (finding,) = validate(None).findings
    assert (finding.code, finding.message) == (
        "yaml.not_mapping",
        "krt.yml must be a mapping with version, description, entrypoint, nodes and workflows; "
        "this one is empty",
    )


def test_every_node_src_is_checked_after_one_without_src_or_outside_the_bundle():
    two = G.replace(
        "workflows:",
        "  - name: b\n    image: konstellation/kre-py:1.23.0\n    src: src/b/main.py\n"
        "  - name: c\n    image: konstellation/kre-py:1.23.0\n    src: src/c/main.py\nworkflows:",
    )
    codes = ("src.outside", "src.missing")
    without = file_findings(two.replace("    src: src/py-greeter/main.py\n", ""), PROJECT, *codes)
    assert [(f[0], f[2]) for f in without] == [
        ("src.missing", "nodes[1].src"),
        ("src.missing", "nodes[2].src"),
    ]
    outside = file_findings(
        two.replace("src: src/py-greeter/main.py", "src: /x.py"), PROJECT, *codes
    )
    assert [(f[0], f[2]) for f in outside] == [
        ("src.outside", "nodes[0].src"),
        ("src.missing", "nodes[1].src"),
        ("src.missing", "nodes[2].src"),
    ]
