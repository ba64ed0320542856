"""One did-you-mean helper (:mod:`krtlab.spec.suggest`): every suggestion krtlab makes is built
there, in one wording."""

from __future__ import annotations

import ast
from pathlib import Path

from krtlab.protos._names import close_matches
from krtlab.spec.suggest import did_you_mean

KRTLAB = Path(__file__).resolve().parents[2] / "krtlab"


def test_only_the_suggest_module_uses_difflib():
    users = []
    for path in sorted(KRTLAB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if "difflib" in names:
                users.append(path.relative_to(KRTLAB).as_posix())
    assert users == ["spec/suggest.py"]


def test_one_wording_for_one_two_and_three_suggestions():
    assert did_you_mean("gpux", ["gpu", "src"]) == "did you mean 'gpu'?"
    assert did_you_mean("Reqest", ["Request", "Requests"]) == (
        "did you mean 'Request' or 'Requests'?"
    )
    three = did_you_mean("node1", ["node2", "node3", "node4", "other"])
    assert three == "did you mean 'node4', 'node3' or 'node2'?"  # difflib's order
    assert did_you_mean("xyz", ["gpu"]) is None


def test_the_proto_modules_sentence_is_the_same_suggestion():
    candidates = ["public_input.proto", "internal.proto"]
    assert close_matches("public_inputs.proto", candidates) == (
        " Did you mean 'public_input.proto'?"
    )
    assert close_matches("nothing.txt", candidates) == ""
    # the shared helper's case-only fallback, which difflib alone misses
    assert close_matches("REQUEST", ["Request"]) == " Did you mean 'Request'?"
    assert close_matches("X", ["x"]) == " " + "D" + did_you_mean("X", ["x"])[1:]  # type: ignore[index]
