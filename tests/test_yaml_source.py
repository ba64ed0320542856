"""Reading krt.yml as KRE's yaml.v2 does, at a cost bounded by its size: aliases and their bombs,
merge keys, scalars kept as the text KRE puts in its Go strings, tags, encodings."""

from __future__ import annotations

import time

from krtlab.bundle.project import Project
from krtlab.cli import main

from .test_validate_rules import GREETER_YML, greeter
from .timing import time_limit


def _bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": each level lists ``width`` aliases of the one before."""
    lines = ["a: &a [" + ",".join(["x"] * width) + "]"]
    for i in range(1, levels):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _timed_validate(text: str, limit: float = 2.0):
    start = time.monotonic()
    with time_limit(limit * 5):
        report = greeter(text).validate()
    assert time.monotonic() - start < limit
    return report


def test_an_alias_bomb_is_refused_at_once_with_a_clear_error():
    bomb = _bomb()
    assert len(bomb) < 400  # 9**9 values once expanded
    report = _timed_validate(bomb + GREETER_YML)
    (f,) = [f for f in report.errors if f.code == "yaml.too_large"]
    assert f.file == "krt.yml" and "aliases" in f.message and "100,000" in f.message
    assert "excessive aliasing" in f.message  # what yaml.v2 says when it decodes one


def test_aliases_within_the_limit_are_read_and_located():
    # anchors used the ordinary way, 300 times: fine, and each alias reads as its anchor
    nodes = "".join(
        f"  - {{name: n{i}, image: *py, src: src/py-greeter/main.py}}\n" for i in range(300)
    )
    text = GREETER_YML.replace("    image: konstellation/kre-py:1.23.0", "    image: &py x")
    text = text.replace("workflows:", nodes + "workflows:")
    report = _timed_validate(text)
    assert not [f for f in report.findings if f.code.startswith("yaml.")]
    project = greeter(text)
    assert project.manifest.nodes[300].image == "x"
    assert project.parsed.line(("nodes", 300, "image")) == 10 + 299  # where the alias is


def test_a_recursive_anchor_under_an_unknown_key_is_ignored_as_kre_ignores_it():
    report = _timed_validate("extra: &r [1, *r]\n" + GREETER_YML)
    assert [f.code for f in report.findings] == ["key.unknown"]


def test_a_number_with_thousands_of_digits_stays_its_digits():
    text = GREETER_YML.replace("version: greeter-v1", "version: 1" + "0" * 4300)
    report = _timed_validate(text)
    (f,) = [f for f in report.at("version") if f.severity == "error"]
    assert f.code == "name.too_long" and "4301 characters" in f.message
    assert greeter(text).manifest.version == "1" + "0" * 4300


def test_scalars_keep_the_text_kre_reads_into_its_strings():
    text = (
        GREETER_YML.replace("description: d", "description: 1.10")
        .replace("version: greeter-v1", "version: 0x1F")
        .replace("  - name: py-greeting", "  - name: 2023-01-01")
    )
    m = greeter(text).manifest
    assert (m.description, m.version, m.workflows[0].name) == ("1.10", "0x1F", "2023-01-01")
    # not a date at all: yaml.v2 keeps the text, and krtlab no longer fails on it
    report = _timed_validate(GREETER_YML.replace("description: d", "description: 2023-13-45"))
    assert report.ok and greeter(
        GREETER_YML.replace("description: d", "description: 2023-13-45")
    ).manifest.description == ("2023-13-45")


def test_a_proto_written_as_a_number_is_checked_as_its_text():
    report = _timed_validate(GREETER_YML.replace("proto: public_input.proto", "proto: 123"))
    codes = [f.code for f in report.at("entrypoint.proto")]
    assert "entrypoint.proto_suffix" in codes
    (f,) = [f for f in report.errors if f.code == "entrypoint.proto_suffix"]
    assert f.line == 4 and "'123'" in f.message


def test_merge_keys_are_read_as_kre_reads_them():
    text = GREETER_YML.replace(
        "nodes:\n  - name: py-greeter\n    image: konstellation/kre-py:1.23.0\n",
        "py: &py\n  image: konstellation/kre-py:1.23.0\n  gpu: false\n"
        "nodes:\n  - name: py-greeter\n    <<: *py\n",
    ).replace("py: &py", "x-templates: &py")
    report = _timed_validate(text)
    assert [f.code for f in report.findings] == ["key.unknown"]  # x-templates only
    project = greeter(text)
    assert project.manifest.nodes[0].image == "konstellation/kre-py:1.23.0"
    # the merged key counts as present, located where it is written
    assert project.parsed.line(("nodes", 0, "image")) == 7
    # yaml.v2 applies a merge where it stands: a key set before '<<' is replaced by it, and
    # of a list of merges the first wins
    before = text.replace("  - name: py-greeter\n", "  - name: py-greeter\n    image: other\n")
    assert greeter(before).manifest.nodes[0].image == "konstellation/kre-py:1.23.0"
    listed = text.replace("<<: *py", "<<: [{image: 'first:1'}, *py]")
    assert greeter(listed).manifest.nodes[0].image == "first:1"
    bad = greeter(text.replace("<<: *py", "<<: 3")).validate()
    assert [f.code for f in bad.errors] == ["yaml.syntax"] and bad.errors[0].line == 11


def test_tags_yaml_v2_does_not_know_keep_the_text():
    text = GREETER_YML.replace("description: d", "description: !custom d")
    assert _timed_validate(text).ok and greeter(text).manifest.description == "d"
    unsafe = GREETER_YML + "x: !!python/object/apply:os.system [echo]\n"
    assert [f.code for f in _timed_validate(unsafe).findings] == ["key.unknown"]


def test_encodings_kre_reads_and_refuses():
    files = dict(greeter().files)
    files["krt.yml"] = GREETER_YML.encode("utf-16")  # with a BOM: libyaml reads it
    assert Project(files, "t").validate().ok
    files["krt.yml"] = GREETER_YML.replace("description: d", "description: d\xff").encode("latin-1")
    (f,) = Project(files, "t").validate().errors
    assert f.code == "yaml.syntax" and f.line == 2 and "UTF-8" in f.message
    files["krt.yml"] = GREETER_YML.replace("description: d", "description: d\0").encode()
    (f,) = Project(files, "t").validate().errors
    assert f.code == "yaml.syntax"


def test_deep_nesting_is_an_error_not_a_crash(tmp_path, capsys):
    text = GREETER_YML.replace("description: d", "description: " + "[" * 1000 + "]" * 1000)
    (f,) = _timed_validate(text).errors
    assert f.code == "yaml.syntax"
    (tmp_path / "krt.yml").write_text("version: 1" + "0" * 4300 + "\n")
    assert main(["validate", str(tmp_path / "krt.yml")]) == 1
    assert "Traceback" not in capsys.readouterr().err
