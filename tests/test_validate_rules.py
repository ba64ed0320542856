"""Validation rules beyond the shared invalid cases, each as a user would meet it."""

from __future__ import annotations

import json
import re

import pytest

from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.cli import main
from tests.support import tar_bytes

from .conftest import EXAMPLES

GREETER_YML = """\
version: greeter-v1
description: d
entrypoint:
  proto: public_input.proto
  image: konstellation/kre-entrypoint:1.7.1
nodes:
  - name: py-greeter
    image: konstellation/kre-py:1.23.0
    src: src/py-greeter/main.py
workflows:
  - name: py-greeting
    entrypoint: PyGreet
    sequential: [py-greeter]
"""


def greeter(krt_yml: str = GREETER_YML) -> Project:
    base = dict(load_project(EXAMPLES / "greeter").files)
    base["krt.yml"] = krt_yml.encode()
    return Project(base, "test")


def codes_at(report, path):
    return [f.code for f in report.findings if f.path == path]


def test_yaml_syntax_error_has_a_line():
    report = greeter("version: greeter-v1\nnodes: [a\nworkflows: []\n").validate()
    (f,) = report.errors
    assert f.code == "yaml.syntax" and f.line == 3 and f.file == "krt.yml"
    # PyYAML's words, not yaml.v2's: krtlab says it, and quotes no KRE message
    assert f.message.startswith("krt.yml is not valid YAML: ") and f.kre is None


def test_unknown_keys_everywhere_suggest_the_right_one():
    text = (
        GREETER_YML.replace("description: d", "descripton: d\ndescription: d")
        .replace(
            "  image: konstellation/kre-entrypoint",
            "  imagen: x\n  image: konstellation/kre-entrypoint",
        )
        .replace("    sequential:", "    sequental: []\n    sequential:")
    )
    report = greeter(text).validate()
    assert "key.unknown" in codes_at(report, "descripton")
    assert "key.unknown" in codes_at(report, "entrypoint.imagen")
    found = report.at("workflows[0].sequental")[0]
    assert found.hint == "did you mean 'sequential'?"
    assert found.line == 15  # two keys were added above it


def test_krt_v2_keys_and_versions_are_refused_with_kre_wording():
    text = "krtVersion: v2\n" + GREETER_YML.replace(
        "    sequential: [py-greeter]", "    sequential: [py-greeter]\n    exitpoint: py-greeter"
    )
    report = greeter(text).validate()
    assert "krt.version" in codes_at(report, "krtVersion")
    assert report.at("workflows[0].exitpoint")[0].kre == (
        'KRE 8: the field "workflow.exitpoint" is incompatible with version v1'
    )
    assert greeter("krtVersion: v1\n" + GREETER_YML).validate().ok


def test_wrong_types_and_empty_lists():
    text = GREETER_YML.replace(
        "    src: src/py-greeter/main.py", "    src: src/py-greeter/main.py\n    gpu: 'yes'"
    ).replace("sequential: [py-greeter]", "sequential: []")
    report = greeter(text).validate()
    assert "field.type" in codes_at(report, "nodes[0].gpu")
    assert "workflow.empty" in codes_at(report, "workflows[0].sequential")
    # yaml.v2's type error, as KRE 7 returns it; an empty list only KRE 8 refuses
    assert report.at("nodes[0].gpu")[0].kre == (
        "KRE 7: error on KRT Yaml parsing: error Unmarshal yaml file: yaml: unmarshal errors:\n"
        "  line 10: cannot unmarshal !!str `yes` into bool"
    )
    assert report.at("workflows[0].sequential")[0].kre == (
        'KRE 8: the field "workflow.sequential" hasn\'t nodes defined'
    )


def test_missing_entrypoint_block_reports_both_fields_like_kre():
    lines = [ln for ln in GREETER_YML.splitlines() if "entrypoint:" not in ln or "Greet" in ln]
    lines = [ln for ln in lines if not ln.startswith("  proto") and "kre-entrypoint" not in ln]
    report = greeter("\n".join(lines) + "\n").validate()
    kre = {f.kre for f in report.errors}
    assert 'KRE 7: The field "Entrypoint.Proto" is required' in kre
    assert 'KRE 7: The field "Entrypoint.Image" is required' in kre


def test_duplicate_nodes_and_workflow_names_and_unused_nodes():
    text = (
        GREETER_YML.replace(
            "workflows:",
            "  - name: py-greeter\n    image: konstellation/kre-py:1.23.0\n"
            "    src: src/py-greeter/main.py\n  - name: spare\n"
            "    image: konstellation/kre-py:1.23.0\n"
            "    src: src/py-greeter/main.py\nworkflows:",
        )
        + "  - name: py-greeting\n    entrypoint: Other\n    sequential: [py-greeter]\n"
    )
    report = greeter(text).validate()
    assert "node.duplicate" in codes_at(report, "nodes[1].name")
    assert "workflow.duplicate_name" in codes_at(report, "workflows[1].name")
    unused = report.at("nodes[2].name")[0]
    assert unused.code == "node.unused" and unused.severity == "warning"


def test_invalid_image_reference_uses_kli_wording():
    report = greeter(
        GREETER_YML.replace("konstellation/kre-py:1.23.0", "Konstellation/KRE py")
    ).validate()
    f = report.at("nodes[0].image")[0]
    assert f.code == "image.invalid"
    assert f.kre == "kli: error validating KRT images: node image error: invalid reference format"
    upper = greeter(GREETER_YML.replace("kre-py:1.23.0", "KRE-py:1.23.0")).validate()
    # docker/distribution's own text: no "invalid reference format: " before it
    assert upper.at("nodes[0].image")[0].kre.endswith(
        "node image error: repository name must be lowercase"
    )


def test_proto_problems_are_located_in_the_proto():
    broken = 'syntax = "proto3";\npackage entrypoint;\nmessage Request { strin name = 1; }\n'
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["public_input.proto"] = broken.encode()
    report = Project(files, "t").validate()
    f = report.errors[0]
    assert f.code == "proto.syntax" and f.file == "public_input.proto" and f.line == 3
    no_service = (
        'syntax = "proto3";\npackage entrypoint;\nmessage Request {}\nmessage Response {}\n'
    )
    files["public_input.proto"] = no_service.encode()
    assert "proto.no_service" in Project(files, "t").validate().codes()


def test_proto_missing_and_wrong_name():
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["api.proto"] = files.pop("public_input.proto")
    report = Project(files, "t").validate()
    assert "proto.missing" in codes_at(report, "entrypoint.proto")
    files["krt.yml"] = GREETER_YML.replace("proto: public_input.proto", "proto: api.proto").encode()
    report = Project(files, "t").validate()
    assert "proto.not_public_input" in codes_at(report, "entrypoint.proto")


def test_handler_shape_is_checked_before_kre_runs_it():
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["src/py-greeter/main.py"] = b"def handler(ctx, data):\n    return data\n"
    report = Project(files, "t").validate()
    f = next(x for x in report.errors if x.code == "src.handler_not_async")
    assert f.file == "src/py-greeter/main.py" and f.line == 1
    files["src/py-greeter/main.py"] = b"async def handle(ctx, data):\n    return data\n"
    assert "src.no_handler" in Project(files, "t").validate().codes()
    files["src/py-greeter/main.py"] = b"async def handler(ctx, data:\n"
    f = Project(files, "t").validate().errors[0]
    assert f.code == "src.syntax" and f.line == 1


def test_imports_missing_from_the_runner_image_fail_the_node_when_they_always_run():
    files = dict(load_project(EXAMPLES / "greeter").files)
    main_py = files["src/py-greeter/main.py"]
    files["src/py-greeter/main.py"] = b"import lightgbm\nimport numpy\nimport config\n" + main_py
    report = Project(files, "t").validate()
    (error,) = report.errors  # a top-level import runs at start-up: the node cannot start
    assert (error.code, error.file, error.line) == (
        "src.import_not_in_image", "src/py-greeter/main.py", 1
    )  # fmt: skip
    assert "lightgbm" in error.message and "would fail to start" in error.message
    warned = {f.code: f for f in report.warnings}
    assert warned["src.shadowed_import"].line == 3
    assert not any("numpy" in f.message for f in report.findings)
    # guarded (try/except ImportError) or on an image whose packages krtlab does not
    # know: perhaps fine, so a warning
    guarded = b"try:\n    import lightgbm\nexcept ImportError:\n    lightgbm = None\n"
    files["src/py-greeter/main.py"] = guarded + main_py
    report = Project(files, "t").validate()
    assert report.ok and report.warnings[0].code == "src.import_not_in_image"
    files["src/py-greeter/main.py"] = b"import lightgbm\n" + main_py
    files["krt.yml"] = files["krt.yml"].replace(b"kre-py:1.23.0", b"kre-py:1.22.0")
    assert Project(files, "t").validate().codes().count("src.import_not_in_image") == 1
    assert Project(files, "t").validate().ok


def test_the_nodes_own_modules_are_checked_on_its_image():
    files = dict(load_project(EXAMPLES / "greeter").files)
    main_py = files["src/py-greeter/main.py"]
    files["src/py-greeter/main.py"] = b"import textutils\n" + main_py
    files["src/py-greeter/textutils.py"] = b"import yaml\n"
    files["src/py-greeter/unused.py"] = b"import lightgbm\n"  # not imported: not checked
    (error,) = Project(files, "t").validate().errors
    assert (error.code, error.file, error.line) == (
        "src.import_not_in_image", "src/py-greeter/textutils.py", 1
    )  # fmt: skip


def test_chain_mismatch_in_hand_written_sources_warns():
    files = dict(load_project(EXAMPLES / "price-estimator").files)
    files["krt.yml"] = files["krt.yml"].replace(
        b"- model\n      - output", b"- output\n      - model"
    )
    report = Project(files, "t").validate()
    codes = {f.code for f in report.warnings}
    assert "chain.input_mismatch" in codes and "chain.output_mismatch" in codes


def test_go_node_pointing_at_source_is_an_error():
    text = GREETER_YML.replace(
        "workflows:",
        "  - name: go-greeter\n    image: konstellation/kre-go:1.11.0\n"
        "    src: src/go-greeter/main.go\nworkflows:",
    )
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["krt.yml"] = text.encode()
    files["src/go-greeter/main.go"] = b"package main\n"
    report = Project(files, "t").validate()
    assert "src.go_source" in codes_at(report, "nodes[1].src")


def test_cli_json_and_strict(tmp_path, capsys):
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["src/py-greeter/main.py"] = (
        b"try:\n    import lightgbm\nexcept ImportError:\n    pass\n"
        + files["src/py-greeter/main.py"]
    )
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert main(["validate", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["warnings"] == 1
    assert data["findings"][0]["code"] == "src.import_not_in_image"
    assert main(["validate", str(tmp_path), "--strict"]) == 1


def test_cli_not_a_project_is_one_clear_line(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    (tmp_path / "junk.krt").write_bytes(b"not an archive")
    assert main(["inspect", str(tmp_path / "junk.krt")]) == 2
    assert "junk.krt" in capsys.readouterr().err


def test_cli_build_refuses_to_replace_foreign_files(tmp_path, capsys):
    target = tmp_path / "precious.krt"
    target.write_bytes(b"my thesis")
    assert main(["build", str(EXAMPLES / "greeter"), "-o", str(target)]) == 2
    assert target.read_bytes() == b"my thesis"
    assert main(["build", str(EXAMPLES / "greeter"), "-o", str(target), "--force"]) == 0
    # a rebuild of the same version replaces its own earlier build without asking
    assert main(["build", str(EXAMPLES / "greeter"), "-o", str(target)]) == 0


@pytest.mark.parametrize("name", ["greeter", "price-estimator"])
def test_cli_inspect_reads_like_a_summary(name, capsys):
    assert main(["inspect", str(EXAMPLES / name)]) == 0
    out = capsys.readouterr().out
    assert "workflows" in out and "nodes" in out and "Traceback" not in out


def test_files_named_like_krt_yml_inside_the_bundle_warn():
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["src/py-greeter/krt.yaml"] = b"settings: 1\n"
    report = Project(files, "t").validate()
    assert report.ok
    (f,) = report.warnings
    assert f.code == "file.manifest_like" and f.file == "src/py-greeter/krt.yaml"


def severity_at(report, path):
    return [(f.code, f.severity) for f in report.findings if f.path == path]


def test_an_extra_key_warns_but_a_misspelt_one_is_an_error():
    text = GREETER_YML.replace(
        "  image: konstellation/kre-entrypoint:1.7.1",
        "  image: konstellation/kre-entrypoint:1.7.1\n  src: src/entrypoint/entrypoint.py",
    ).replace("    src: src/py-greeter/main.py", "    src: src/py-greeter/main.py\n    gpus: true")
    report = greeter(text).validate()
    assert severity_at(report, "entrypoint.src") == [("key.unknown", "warning")]  # KRE ignores it
    assert severity_at(report, "nodes[0].gpus") == [("key.unknown", "error")]  # 'gpu' is lost
    (gpus,) = [f for f in report.errors if f.path == "nodes[0].gpus"]
    assert "'gpu'" in gpus.hint


@pytest.mark.parametrize(
    ("key", "name", "severity"),
    [
        ("variables", "output_currency", "error"),  # KRE's admin API refuses it
        ("files", "model_file", "warning"),  # kli refuses it; KRE passes it on as it is
        ("files", "model-file", "error"),  # Kubernetes skips it: the value never arrives
        ("files", "MODEL_FILE", None),
    ],
)
def test_config_names_follow_who_refuses_them(key, name, severity):
    text = GREETER_YML.replace("nodes:", f"config:\n  {key}: [{name}]\nnodes:")
    found = severity_at(greeter(text).validate(), f"config.{key}[0]")
    assert found == ([("config.invalid_name", severity)] if severity else [])


# Who may be quoted in Finding.kre, and the versions read for it (KRE's admin API at kre-3.0.0 …
# kre-8.0.0, kli and its krt-utils validator, the kre-py runner at kre-runners' kre-py tags).
QUOTE_SPEAKER = re.compile(r"(KRE [3578]|kli|kre-py 1\.22-2\.0|kre-py 2\.1): \S")

BROKEN_KRT_YMLS = [
    GREETER_YML.replace("version: greeter-v1", "version: Greeter_V1"),
    GREETER_YML.replace("name: py-greeter\n", "name: py-greeter-with-a-very-long-name\n"),
    GREETER_YML.replace("description: d\n", ""),
    GREETER_YML.replace(
        "  proto: public_input.proto\n  image: konstellation/kre-entrypoint:1.7.1\n", ""
    ),
    GREETER_YML.replace("proto: public_input.proto", "proto: public_input.txt"),
    GREETER_YML.replace("entrypoint:\n  proto", "entrypoint: x\nold:\n  proto"),
    GREETER_YML.replace("version: greeter-v1", "version: [greeter, v1]"),
    GREETER_YML.replace("sequential: [py-greeter]", "sequential: [py-greetr, {a: 1}]"),
    GREETER_YML.replace("sequential: [py-greeter]", "sequential: []"),
    GREETER_YML.replace("    sequential: [py-greeter]\n", ""),
    GREETER_YML.replace("src: src/py-greeter/main.py", "src: src/py-greeter/nope.py\n    gpu: 2"),
    GREETER_YML.replace("kre-py:1.23.0", "KRE-py:1.23.0").replace("entrypoint:1.7.1", "ep py"),
    GREETER_YML.replace("nodes:", "config:\n  variables: [currency]\n  files: [a-b, c]\nnodes:"),
    "krtVersion: v3\n" + GREETER_YML,
    GREETER_YML.replace("sequential: [py-greeter]", "sequential: [py-greeter]\n    exitpoint: x"),
    "- just\n- a list\n",
    "version: [unclosed\n",
]


def _krt(entries: list[tuple[str, bytes | None]]) -> bytes:
    return tar_bytes(entries)


def test_every_quoted_message_names_who_says_it(tmp_path):
    """A quote is KRE's (or kli's, or kre-py's) only if a named version prints it: a new quote
    without its speaker fails here."""
    reports = [greeter(text).validate() for text in BROKEN_KRT_YMLS]
    files = dict(load_project(EXAMPLES / "greeter").files)
    reports.append(Project({**files, "src/py-greeter/main.py": b"x = 1\n"}, "t").validate())
    reports.append(Project({k: v for k, v in files.items() if k != "krt.yml"}, "t").validate())
    for name, entries in {
        "flat": list(files.items()),
        "dot": [("./", None), ("src/", None), ("src/py-greeter/", None), *files.items()],
    }.items():
        (tmp_path / f"{name}.krt").write_bytes(_krt(entries))
        reports.append(load_project(tmp_path / f"{name}.krt").validate())
    quoted = [f for report in reports for f in report.findings if f.kre]
    for f in quoted:
        assert QUOTE_SPEAKER.match(f.kre), f
    codes = {f.code for f in quoted}
    assert codes >= {
        "name.invalid", "name.too_long", "field.required", "field.type", "entrypoint.proto_suffix",
        "sequential.unknown_node", "workflow.empty", "src.missing", "image.invalid",
        "config.invalid_name", "krt.version", "key.krt_v2", "yaml.not_mapping",
        "src.no_handler", "bundle.no_manifest", "bundle.no_dir_entries",
        "bundle.repeated_dir_entries",
    }, codes  # fmt: skip
    assert not any(f.code == "yaml.syntax" and f.kre for report in reports for f in report)


def test_quotes_fill_placeholders_as_kre_does(tmp_path):
    report = greeter(BROKEN_KRT_YMLS[12]).validate()
    assert report.at("config.variables[0]")[0].kre == (
        "KRE 7: Key: 'Krt.Config.Variables[0]' Error:Field validation for 'Variables[0]' failed "
        "on the 'env' tag"
    )
    assert report.at("config.files[0]")[0].kre.startswith("kli: Key: 'File.Config.Files[0]' ")
    missing = greeter(BROKEN_KRT_YMLS[10]).validate().at("nodes[0].src")[0]
    assert (
        missing.kre
        == "KRE 7: error src File src/py-greeter/nope.py for node py-greeter not exists "
    )
    krt = tmp_path / "flat.krt"
    krt.write_bytes(_krt(list(dict(load_project(EXAMPLES / "greeter").files).items())))
    (f,) = [f for f in load_project(krt).validate() if f.code == "bundle.no_dir_entries"]
    path = "/tmp/version<random>/src/py-greeter/main.py"
    assert f.kre == (
        f"KRE 7: error on KRT content extraction: error creating krt file {path}: open {path}: "
        "no such file or directory"
    )
    text = f.format()
    assert "\n    KRE 7 says: error on KRT content extraction:" in text
    wrapped = greeter(BROKEN_KRT_YMLS[5]).validate().at("entrypoint")[0].format()
    assert wrapped.endswith(
        "    KRE 7 says: error on KRT Yaml parsing: error Unmarshal yaml file: yaml: unmarshal "
        "errors:\n        line 3: cannot unmarshal !!str `x` into krt.Entrypoint"
    )
