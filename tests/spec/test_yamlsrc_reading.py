"""``krtlab.spec.yamlsrc``: krt.yml read as KRE's yaml.v2 reads it (merge keys, aliases and
their limit, scalars, nesting), with the lines of every value; and written back."""

from __future__ import annotations

import pytest

from krtlab.spec.yamlsrc import MAX_ALIASED_VALUES, YamlSyntaxError, dump_krt_yml, parse_yaml

TOO_DEEP = "krt.yml nests deeper than 64 levels"
TOO_LARGE = (
    "krt.yml expands to more than 100,000 values through its YAML aliases, so krtlab stops "
    "reading it (KRE's yaml.v2 refuses a krt.yml whose fields it reads are mostly alias "
    'expansions: "yaml: document contains excessive aliasing")'
)
MERGE = "map merge requires map or sequence of maps as the value"


def refused(text: str) -> tuple[str, int | None, str]:
    with pytest.raises(YamlSyntaxError) as info:
        parse_yaml(text)
    return info.value.message, info.value.line, info.value.code


def test_lines_keys_and_scalars_of_every_value():
    parsed = parse_yaml("version: v1\nnodes:\n  - name: a\n    gpu: true\n")
    assert parsed.data == {"version": "v1", "nodes": [{"name": "a", "gpu": True}]}
    assert parsed.lines == {
        (): 1, ("version",): 1, ("nodes",): 3, ("nodes", 0): 3, ("nodes", 0, "name"): 3,
        ("nodes", 0, "gpu"): 4,
    }  # fmt: skip
    assert parsed.key_lines == {
        ("version",): 1, ("nodes",): 2, ("nodes", 0, "name"): 3, ("nodes", 0, "gpu"): 4,
    }  # fmt: skip
    assert parsed.scalars == {
        ("version",): ("tag:yaml.org,2002:str", "v1"),
        ("nodes", 0, "name"): ("tag:yaml.org,2002:str", "a"),
        ("nodes", 0, "gpu"): ("tag:yaml.org,2002:bool", "true"),
    }
    assert parsed.line(("nodes",)) == 2  # the key's line first
    assert parsed.line(("nodes", 0)) == 3
    assert parsed.line(("nodes", 0, "image")) == 3  # not there: its nearest ancestor
    assert parsed.line(("other", 1)) == 1
    assert parse_yaml("").line(("x",)) is None


def test_empty_documents():
    assert parse_yaml("").data is None and parse_yaml("").lines == {}
    assert parse_yaml("~\n").lines == {(): 1}


def test_syntax_errors_say_where():
    assert refused("a: [1\n") == ("expected ',' or ']', but got '<stream end>'", 2, "yaml.syntax")
    message, line, _ = refused("a: 1\nb: \x01\n")
    assert (message.split("\n")[0], line) == (
        "unacceptable character #x0001: special characters are not allowed", 2,
    )  # fmt: skip
    assert refused("a: 1\n---\nb: 2\n") == (
        "krt.yml holds several YAML documents; KRE reads one", None, "yaml.syntax",
    )  # fmt: skip


def test_nesting_is_read_to_64_levels():
    def block(n: int) -> str:
        return "".join("  " * i + f"k{i}:\n" for i in range(n)) + "  " * n + "v\n"

    assert parse_yaml(block(64)).line(tuple(f"k{i}" for i in range(64))) == 64
    assert refused(block(65)) == (TOO_DEEP, 65, "yaml.syntax")
    assert parse_yaml("[" * 64 + "]" * 64).lines[(0,) * 63] == 1
    assert refused("x: 1\ny: " + "[" * 65 + "]" * 65) == (TOO_DEEP, 2, "yaml.syntax")


def test_nesting_through_aliases_and_merges_counts_too():
    def deep(n: int) -> str:
        return (
            "m: &m {k: 1}\nx: &x " + "[" * 30 + "{<<: *m}" + "]" * 30 + "\n"
            "y: " + "[" * n + "*x" + "]" * n + "\n"
        )

    parsed = parse_yaml(deep(31))
    assert parsed.lines[("y", *(0,) * 61, "k")] == 1
    assert refused(deep(32)) == (TOO_DEEP, 1, "yaml.syntax")


def test_a_merge_sets_the_keys_where_it_stands():
    text = "t: &t\n  name: a\n  image: img\nn:\n  name: b\n  <<: *t\n  src: s\n"
    parsed = parse_yaml(text)
    assert parsed.data["n"] == {"name": "a", "image": "img", "src": "s"}
    assert parsed.key_lines[("n", "image")] == 3
    assert parsed.lines[("n", "image")] == 3
    assert parsed.duplicates == []


def test_of_a_list_of_merges_the_first_wins():
    text = "a: &a {k: 1, x: 1}\nb: &b {k: 2, y: 2}\nn: {<<: [*a, *b]}\n"
    assert parse_yaml(text).data["n"] == {"k": 1, "y": 2, "x": 1}


def test_a_merge_at_the_root_keeps_go_strings_as_written():
    assert parse_yaml("<<: {version: 1.10, other: 1.10}\n").data == {
        "version": "1.10",
        "other": 1.1,
    }


def test_a_merge_of_anything_but_mappings_is_an_error():
    assert refused("a: 1\nn:\n  <<: 3\n") == (MERGE, 3, "yaml.syntax")
    assert refused("n:\n  <<: ''\n") == (MERGE, 2, "yaml.syntax")
    assert refused("a: &a {k: 1}\nn: {<<: [*a, 1]}\n") == (MERGE, 2, "yaml.syntax")


def test_merging_a_mapping_into_itself_is_skipped():
    text = "o: &o {m: 2}\nx: &x {k: 1, <<: [*o, *x]}\n"
    assert parse_yaml(text).data["x"] == {"k": 1, "m": 2}
    assert parse_yaml("x: &x {k: 1, <<: *x}\n").data["x"] == {"k": 1}


def test_a_merged_mapping_that_refers_to_itself_refers_to_its_merge():
    data = parse_yaml("t: &t {k: 1, self: *t}\nn: {<<: *t}\n").data
    assert data["t"]["self"] is data["t"]
    assert data["n"]["self"] is data["n"]
    assert data["n"]["k"] == 1


def test_duplicate_keys_are_listed_once_where_written():
    assert parse_yaml("t: &t {k: 1, k: 2}\nn: {<<: *t}\n").duplicates == [("t", "k")]
    assert parse_yaml("n: {<<: {k: 1, k: 2}}\n").duplicates == [("n", "k")]
    text = "n: {<<: &m {k: 1, k: 2}}\np: *m\nq: {<<: *m}\n"
    assert parse_yaml(text).duplicates == [("n", "k")]
    assert parse_yaml("a: 1\nb: 2\na: 3\n").duplicates == [("a",)]


def test_aliases_read_up_to_the_limit():
    assert MAX_ALIASED_VALUES == 100_000
    anchor = "s: &s {k: 1}\na: &a [" + ",".join(["x"] * 999) + "]\n"
    exactly = anchor + "b: [" + ",".join(["*a"] * 100) + "]\n"  # 100 x 1,000 values
    parsed = parse_yaml(exactly)
    assert len(parsed.data["b"]) == 100 and parsed.data["b"][99] is parsed.data["a"]
    assert parsed.lines[("b", 99, 998)] == 2  # an aliased value is where its anchor is
    assert refused(exactly + "m:\n  <<: *s\n") == (TOO_LARGE, 4, "yaml.too_large")
    over = anchor + "b: [" + ",".join(["*a"] * 100) + ", *s]\n"
    assert refused(over) == (TOO_LARGE, 3, "yaml.too_large")


def test_keys_that_are_not_scalars_are_their_text():
    data = parse_yaml(
        "? [a,   b]\n: 1\n? {" + ", ".join(f"k{i}: {i}" for i in range(9)) + "}\n: 2\n"
    ).data
    assert data == {"[a, b]": 1, "{k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5:…": 2}
    assert len(next(iter(parse_yaml("? [" + "a" * 38 + "]\n: 1\n").data))) == 40


def test_scalars_as_yaml_v2_decodes_them():
    text = (
        "description: !!binary aGk=\nversion: !!binary a\n"
        "nodes:\n  - gpu: ~\n  - gpu: !foo yes\n  - gpu: 2023-13-45\n"
        "  - gpu: 1" + "0" * 999 + "\n  - gpu: 1" + "0" * 1000 + "\n  - gpu: 0x1F\n"
    )
    data = parse_yaml(text).data
    assert data["description"] == "hi"
    assert data["version"] == "a"  # not base64: the text
    assert [n["gpu"] for n in data["nodes"]] == [
        None, "yes", "2023-13-45", 10**999, "1" + "0" * 1000, 31,
    ]  # fmt: skip


def test_dump_writes_kres_layout():
    data = {
        "version": "v1",
        "description": "Greets people...",
        "entrypoint": {"proto": "public_input.proto"},
        "config": {"variables": []},
        "nodes": [{"name": "a", "gpu": True}, {}, ["x", ["y"]]],
        "workflows": [{"sequential": ["a", "b"]}],
        "text": "é " + "long " * 30,
    }
    assert dump_krt_yml(data) == (
        "version: v1\n"
        "description: Greets people...\n"
        "entrypoint:\n"
        "  proto: public_input.proto\n"
        "config:\n"
        "  variables: []\n"
        "nodes:\n"
        "  - name: a\n"
        "    gpu: true\n"
        "  - {}\n"
        "  - [x, [y]]\n"
        "workflows:\n"
        "  - sequential:\n"
        "      - a\n"
        "      - b\n"
        "text: 'é " + "long " * 30 + "'\n"
    )
    assert dump_krt_yml({"a": None, "b": "", "c": "x: y", "d": 1.5}) == (
        "a: null\nb: ''\nc: 'x: y'\nd: 1.5\n"
    )


def test_an_anchor_is_built_apart_for_each_place_it_is_read_in():
    data = parse_yaml("x: &v [1.10]\nconfig:\n  variables: *v\n  files: *v\ny: *v\n").data
    assert data["x"] == [1.1] and data["y"] is data["x"]
    assert data["config"] == {"variables": ["1.10"], "files": ["1.10"]}
    assert data["config"]["files"] is not data["config"]["variables"]  # another place


def test_a_quoted_merge_key_is_an_ordinary_key():
    assert parse_yaml('"<<": {k: 1}\n').data == {"<<": {"k": 1}}


def test_binary_text_yaml_v2_cannot_decode_is_replaced():
    assert parse_yaml("description: !!binary /w==\n").data == {"description": "\ufffd"}
