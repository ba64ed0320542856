"""``krtlab.spec.checker.unmarshal_error``: KRE 7's words for a krt.yml value yaml.v2 cannot
decode, exactly, and the values it decodes after all (no message)."""

from __future__ import annotations

import pytest

from krtlab.spec.checker import Checker, go_path, go_text, unmarshal_error
from krtlab.spec.yamlsrc import parse_yaml

KRE = "KRE 7: error on KRT Yaml parsing: error Unmarshal yaml file: yaml: unmarshal errors:\n"


def message(text: str, loc: tuple[str | int, ...], value: object) -> str | None:
    return unmarshal_error(Checker(parse_yaml(text)), loc, value)


@pytest.mark.parametrize("word", ["y", "Y", "n", "N"])
def test_yaml_v2_reads_y_and_n_as_booleans(word):
    text = f"nodes:\n  - name: a\n    gpu: {word}\n"
    assert message(text, ("nodes", 0, "gpu"), word) is None


@pytest.mark.parametrize("word", ["x", "yy", "nO"])
def test_other_words_are_not_booleans_for_a_gpu_flag(word):
    text = f"nodes:\n  - name: a\n    gpu: {word}\n"
    assert message(text, ("nodes", 0, "gpu"), word) == (
        f"{KRE}  line 3: cannot unmarshal !!str `{word}` into bool"
    )


def test_y_where_a_list_is_expected_is_an_error():
    assert message("nodes: y\n", ("nodes",), "y") == (
        f"{KRE}  line 1: cannot unmarshal !!str `y` into []krt.Node"
    )


def test_any_scalar_decodes_into_a_go_string():
    assert message("version: 1.10\n", ("version",), 1.1) is None
    assert message("nodes:\n  - name: 12\n", ("nodes", 0, "name"), 12) is None


def test_a_key_kre_does_not_know_has_no_go_type():
    assert message("foo: x\n", ("foo",), "x") is None


def test_a_value_not_in_the_file_has_no_message():
    assert message("nodes:\n  - name: a\n", ("nodes", 0, "gpu"), "x") is None
    assert unmarshal_error(Checker(None), ("nodes", 0, "gpu"), "x") is None
    assert message("nodes:\n  - name: a\n    gpu:\n", ("nodes", 0, "gpu"), None) is None


def test_text_of_ten_bytes_is_shown_whole_longer_text_is_cut_to_seven():
    assert message("nodes: abcdefghij\n", ("nodes",), "abcdefghij") == (
        f"{KRE}  line 1: cannot unmarshal !!str `abcdefghij` into []krt.Node"
    )
    assert message("nodes: abcdefghijk\n", ("nodes",), "abcdefghijk") == (
        f"{KRE}  line 1: cannot unmarshal !!str `abcdefg...` into []krt.Node"
    )


def test_a_character_cut_in_two_shows_as_a_replacement_character():
    text = "nodes:\n  - name: a\n    gpu: abcdefé日本\n"
    assert message(text, ("nodes", 0, "gpu"), "abcdefé日本") == (
        f"{KRE}  line 3: cannot unmarshal !!str `abcdef\ufffd...` into bool"
    )


def test_a_tag_yaml_v2_does_not_know_is_shown_as_written():
    text = "nodes:\n  - name: a\n    gpu: !foo bar\n"
    assert message(text, ("nodes", 0, "gpu"), "bar") == (
        f"{KRE}  line 3: cannot unmarshal !foo `bar` into bool"
    )
    assert message("nodes: !!int 12\n", ("nodes",), 12) == (
        f"{KRE}  line 1: cannot unmarshal !!int `12` into []krt.Node"
    )


def test_mappings_and_lists_are_shown_by_their_kind():
    text = "nodes:\n  - name: {a: 1}\n    gpu: [1]\n"
    assert message(text, ("nodes", 0, "name"), {"a": 1}) == (
        f"{KRE}  line 2: cannot unmarshal !!map into string"
    )
    assert message(text, ("nodes", 0, "gpu"), [1]) == (
        f"{KRE}  line 3: cannot unmarshal !!seq into bool"
    )


def test_a_scalar_value_where_the_file_holds_no_scalar_shows_no_tag_and_no_text():
    text = "nodes:\n  - name: a\n    gpu: [1]\n"
    assert message(text, ("nodes", 0, "gpu"), 5) == (
        f"{KRE}  line 3: cannot unmarshal  `` into bool"
    )


def test_go_paths_and_texts():
    assert go_path(("workflows", 0, "sequential", 1)) == "Workflows[0].Sequential[1]"
    assert go_path(()) == ""
    check = Checker(parse_yaml("version: 1.10\ndescription: true\n"))
    assert go_text(check, ("version",), 1.1) == "1.10"
    assert go_text(check, ("description",), True) == "true"
    assert go_text(check, ("other",), 2.50) == "2.5"
    assert go_text(Checker(None), ("version",), 1.1) == "1.1"
    assert go_text(Checker(None), ("version",), "as is") == "as is"


def test_a_finding_in_krt_yml_gets_the_line_of_its_value():
    from krtlab.spec.findings import ERROR, WARNING, Finding

    check = Checker(parse_yaml("version: v1\nnodes:\n  - name: a\n"), manifest_file="x/krt.yml")
    check.error("c1", "m1", ["nodes", 0, "name"], hint="h", kre="k")
    check.warning("c2", "m2", ("nodes", 0, "image"))
    check.error("c3", "m3", ("nodes",), line=9)
    check.warning("c4", "m4", ("nodes",), file="src/a.py")
    check.error("c5", "m5", file="src/a.py", line=2)
    check.error("c6", "m6")
    assert check.findings == [
        Finding(ERROR, "c1", "m1", ("nodes", 0, "name"), "x/krt.yml", 3, "h", "k"),
        Finding(WARNING, "c2", "m2", ("nodes", 0, "image"), "x/krt.yml", 3),
        Finding(ERROR, "c3", "m3", ("nodes",), "x/krt.yml", 9),
        Finding(WARNING, "c4", "m4", ("nodes",), "src/a.py", None),
        Finding(ERROR, "c5", "m5", (), "src/a.py", 2),
        Finding(ERROR, "c6", "m6", (), "x/krt.yml", 1),  # the root mapping's line
    ]
    bare = Checker(None)
    bare.warning("c", "m", ("version",))
    assert bare.findings == [Finding(WARNING, "c", "m", ("version",), "krt.yml", None)]
