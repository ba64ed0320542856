"""``krtlab.spec.pycompat.python_issues``: each issue an older runner Python has with a node's
code, whole (line, code, message, the Python it needs)."""

from __future__ import annotations

from krtlab.spec.pycompat import PyIssue, python_issues

UNION = (
    "`X | Y` types are evaluated here and need Python 3.10; add `from __future__ import "
    "annotations` or use Optional/Union"
)


def test_union_annotations_are_evaluated_when_the_def_runs():
    assert python_issues("x = 1\ndef f(x: int | None): pass\n", (3, 9)) == [
        PyIssue(2, "annotation", UNION, (3, 10))
    ]
    assert python_issues("y: int | None = None\n", (3, 7)) == [
        PyIssue(1, "annotation", UNION, (3, 10))
    ]


def test_builtin_generics_in_annotations_need_3_9():
    assert python_issues("def f(x: dict[str, int]) -> None: pass\n", (3, 8)) == [
        PyIssue(1, "annotation", "`dict[...]` is evaluated here and needs Python 3.9; add "
                "`from __future__ import annotations` or use typing.Dict", (3, 9)),
    ]  # fmt: skip
    assert (
        python_issues("from typing import List as list\ndef f(x: list[int]): pass\n", (3, 8)) == []
    )


def test_a_keyword_is_matched_by_the_name_called_however_it_is_reached():
    code = "import pydantic\n\n@pydantic.dataclasses.dataclass(slots=True)\nclass A:\n    x: int\n"
    assert python_issues(code, (3, 9)) == [
        PyIssue(3, "stdlib", "dataclass(slots=...) is new in Python 3.10", (3, 10))
    ]


def test_the_module_an_attribute_belongs_to_follows_the_imports():
    code = "import os.path\nos.waitstatus_to_exitcode(1)\n"
    assert python_issues(code, (3, 8)) == [
        PyIssue(2, "stdlib", "os.waitstatus_to_exitcode is new in Python 3.9", (3, 9))
    ]
    assert python_issues("import os.path as p\np.waitstatus_to_exitcode(1)\n", (3, 8)) == []
    assert python_issues("import math\nfrom mylib import math\nmath.prod([1])\n", (3, 7)) == []
    assert python_issues("from . import math\nmath.prod([1])\n", (3, 7)) == []
    assert python_issues("import mylib as math\nmath.prod([1])\n", (3, 7)) == []


FSTRINGS = """\
x = 1
if (n := f"{x=}"):
    pass
a = f"{x=}"
b = "{x=}"
c = F"{x = }"
d = f"{{x=}}"
e = rf"{x=!r:>10}"
g = f"{x!r:{x=}}"
h = f"{x}"
"""


def test_f_string_debug_fields_after_a_syntax_error_the_old_parser_stops_at():
    debug = "f-string `{x=}` needs Python 3.8"
    assert python_issues(FSTRINGS, (3, 7)) == [
        PyIssue(2, "syntax", "Python 3.7 cannot parse this: f-string: self documenting "
                "expressions are only supported in Python 3.8 and greater", (3, 8)),
        PyIssue(4, "syntax", debug, (3, 8)),
        PyIssue(6, "syntax", debug, (3, 8)),
        PyIssue(8, "syntax", debug, (3, 8)),
        PyIssue(9, "syntax", debug, (3, 8)),
    ]  # fmt: skip


def test_a_syntax_error_names_the_python_and_the_next_one():
    assert python_issues("match x:\n    case 1:\n        pass\n", (3, 9)) == [
        PyIssue(3, "syntax", "Python 3.9 cannot parse this: Pattern matching is only supported "
                "in Python 3.10 and greater", (3, 10)),
    ]  # fmt: skip
    assert python_issues("x = 1\ny = '\0'\n", (3, 7)) == [
        PyIssue(1, "syntax", "Python 3.7 cannot parse this: source code string cannot contain "
                "null bytes", (3, 8)),
    ]  # fmt: skip
    assert PyIssue(1, "syntax", "m", (3, 10)).needs_text == "3.10"
