"""Every finding code krtlab can report is asserted by some test.

The codes are read from krtlab's source (``check.error("code", ...)``, ``check.warning(...)``,
``Finding(ERROR, "code", ...)``, a ``report = check.error if ... else check.warning`` chosen
first, ``YamlSyntaxError(..., code="...")``); a test "asserts" a code when the code's string
stands inside an ``assert`` statement of a test file, in a call to one of the file's helpers
that assert (``only(report, "key.duplicate")``), in an implicit assertion (``(f,) = [...]``,
``next(...)``), or in a table of expected codes (a parametrize list, a module constant) of a
test file that asserts.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

KRTLAB = Path(__file__).resolve().parents[2] / "krtlab"
TESTS = Path(__file__).resolve().parents[1]
CODE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
# callables whose first argument is a finding code (second for those taking a severity first)
REPORTERS = {"error": 0, "warning": 0, "report": 0, "severity": 0, "add": 1, "Finding": 1}
CODE_PARAMS = {"YamlSyntaxError"}  # exceptions that become findings, with a ``code`` parameter


def _strings(node: ast.AST) -> Iterator[str]:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str) and CODE.match(sub.value):
            yield sub.value


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def emitted_codes() -> dict[str, str]:
    """code -> ``file:line`` of the first place that emits it."""
    found: dict[str, str] = {}
    for path in sorted(KRTLAB.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(KRTLAB.parent)
        for node in ast.walk(tree):
            codes: list[str] = []
            if isinstance(node, ast.Call) and _callee(node) in REPORTERS:
                index = REPORTERS[_callee(node)]
                if len(node.args) > index:
                    codes += _strings(node.args[index])
                codes += [c for k in node.keywords if k.arg == "code" for c in _strings(k.value)]
            elif isinstance(node, ast.Call) and _callee(node) in CODE_PARAMS:
                codes += [c for a in node.args[2:3] for c in _strings(a)]
                codes += [c for k in node.keywords if k.arg == "code" for c in _strings(k.value)]
            elif isinstance(node, ast.ClassDef) and node.name in CODE_PARAMS:
                for fn in ast.walk(node):  # the code a bare YamlSyntaxError(...) carries
                    if isinstance(fn, ast.arguments):
                        names = [a.arg for a in fn.args[-len(fn.defaults) :]] if fn.defaults else []
                        codes += [c for n, d in zip(names, fn.defaults, strict=True) if n == "code"
                                  for c in _strings(d)]  # fmt: skip
            for code in codes:
                found.setdefault(code, f"{where}:{node.lineno}")
    return found


def asserted_codes(codes: set[str]) -> dict[str, set[str]]:
    """code -> the test files that assert it."""
    found: dict[str, set[str]] = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        if path == Path(__file__).resolve():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        asserts = [n for n in ast.walk(tree) if isinstance(n, ast.Assert)]
        if not asserts:
            continue
        named: set[str] = set()
        for node in asserts:
            named.update(c for c in _strings(node) if c in codes)
        # helpers of the file that assert (``only(report, "code")``), implicit asserts:
        # ``(f,) = [...]`` unpacks exactly one, ``next(...)`` raises when there is none
        checkers = {
            fn.name
            for fn in tree.body
            if isinstance(fn, ast.FunctionDef)
            and any(isinstance(n, ast.Assert) for n in ast.walk(fn))
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _callee(node) in checkers | {"next"}:
                named.update(c for c in _strings(node) if c in codes)
            elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple):
                named.update(c for c in _strings(node.value) if c in codes)
        # expected codes kept in a table the asserts read: parametrize lists, module constants
        for node in ast.walk(tree):
            table = None
            if isinstance(node, ast.Call) and _callee(node) == "parametrize":
                table = node
            elif isinstance(node, ast.Assign) and node in tree.body:
                table = node.value
            if table is not None:
                named.update(c for c in _strings(table) if c in codes)
        for code in named:
            found.setdefault(code, set()).add(str(path.relative_to(TESTS.parent)))
    return found


def test_the_scan_finds_the_codes_of_every_kind_of_call():
    codes = emitted_codes()
    # one of each way a code is written: check.error/warning, a chosen reporter, Finding(...),
    # a conditional code, an exception's default code, a severity picked at run time
    assert {
        "name.too_long", "node.unused", "key.unknown", "src.import_failed", "bundle.no_manifest",
        "yaml.syntax", "chain.output_mismatch", "src.import_not_in_image",
    } <= set(codes), sorted(codes)  # fmt: skip
    assert len(codes) >= 55


def test_every_finding_code_has_a_test_asserting_it():
    codes = emitted_codes()
    asserted = asserted_codes(set(codes))
    missing = {code: where for code, where in codes.items() if code not in asserted}
    assert not missing, "finding codes no test asserts (emitted at):\n" + "\n".join(
        f"  {code}  ({where})" for code, where in sorted(missing.items())
    )
