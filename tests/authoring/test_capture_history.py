"""The history capture reads: which statement bound a name, and what changed it later."""

from __future__ import annotations

import ast
import linecache
import textwrap

import pytest

from krtlab.authoring import capture_history
from krtlab.authoring.capture_history import END, History, Unit, reads_files


def history(*cells: str) -> History:
    units = []
    for i, cell in enumerate(cells):
        text = textwrap.dedent(cell)
        units.append(Unit(f"<cell{i}>", tuple(text.splitlines(True)), ast.parse(text)))
    return History(units)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("X = 1", "assign"),
        ("X: int = 1", "assign"),
        ("A, (B, X) = 1, (2, 3)", "assign"),
        ("def X(): pass", "def"),
        ("@dec\nclass X: pass", "class"),
        ("import X", "import"),
        ("import os.path as X", "import"),
        ("from m import y as X", "import"),
        ("X += 1", "augmented"),
        ("del X", "deleted"),
        ("for X in range(3): pass", "compound"),
        ("for i in range(3):\n    X = i", "compound"),
        ("with open('f') as X: pass", "compound"),
        ("try:\n    X = 1\nexcept E:\n    pass", "compound"),
        ("try:\n    pass\nexcept E as X:\n    pass", "compound"),
        ("if True:\n    def X(): pass", "compound"),
        ("print(X := 3)", "compound"),
        ("Y = [X := 1 for _ in range(2)]", "compound"),
    ],
)
def test_binding_kinds(code, kind):
    b = history(code).binding("X")
    assert b is not None and b.kind == kind
    assert b.single is (kind in ("assign", "def", "class", "import"))


def test_what_does_not_bind():
    h = history(
        "X: int", "print(X)", "def f():\n    X = 1", "class C:\n    X = 1", "Y = lambda X: X"
    )
    assert h.binding("X") is None
    assert history("X.a = 1", "X[0] = 1").binding("X") is None


def test_the_last_binding_before_a_position():
    h = history("X = 1", "Y = X", "X = 2\nZ = 3")
    assert h.binding("X").stmt.pos == (2, 0)
    assert h.binding("X", before=(1, 0)).stmt.pos == (0, 0)
    assert h.binding("X", before=(0, 0)) is None
    assert h.binding("Z", before=END).stmt.pos == (2, 1)


def test_changes_after_a_statement():
    h = history(
        "TOK = T()",
        "TOK.lower = False\nTOK.cache[1] = 2\ndel TOK.x",
        "TOK.fit(data)\nout = TOK.model.predict(x, inplace=True)",
        "setattr(TOK, 'a', 1)\nrandom.shuffle(TOK)\nfor k in K:\n    TOK.add(k)",
        "def later():\n    TOK.never_counted = 1",
    )
    changes = h.changes("TOK", after=(0, 0))
    kinds = [(c.kind, c.path, c.method, c.stmt.pos) for c in changes]
    assert kinds == [
        ("store", ("lower",), "", (1, 0)),
        ("store", ("cache",), "", (1, 1)),
        ("store", ("x",), "", (1, 2)),
        ("call", (), "fit", (2, 0)),
        ("call", ("model",), "predict", (2, 1)),
        ("store", (), "", (3, 0)),
        ("store", (), "", (3, 1)),
        ("call", (), "add", (3, 2)),
    ]
    fit, predict, add = changes[3], changes[4], changes[7]
    assert fit.discarded and not predict.discarded and predict.inplace and add.discarded
    assert h.changes("TOK", after=(2, 0)) == changes[4:]
    assert h.changes("TOK", after=(0, 0), before=(2, 0)) == changes[:3]


def test_a_cells_last_expression_is_shown_not_run_for_its_effect(monkeypatch):
    monkeypatch.setattr(capture_history, "_cell_numbers", lambda: {"<cell0>": 1})
    h = history("TOK.tokenize('x')\nTOK.tokenize('y')")
    first, last = h.changes("TOK", after=(-1, -1))
    assert not first.shown and last.shown


def test_statement_text_keeps_comments_above_and_cuts_shared_lines():
    h = history("import re\n\n# words only\n# (lower case)\nWORD = re.compile('[a-z]+')  # !\n")
    text, first = h.binding("WORD").stmt.text()
    assert text == "# words only\n# (lower case)\nWORD = re.compile('[a-z]+')  # !\n"
    assert first == 3
    h = history("A = 1; B = f(A)")
    assert h.binding("B").stmt.text() == ("B = f(A)\n", 1)


def test_statement_at_a_line():
    h = history("X = 1\n\n@dec\ndef f():\n    return 2\n")
    assert h.statement_at("<cell0>", 3).pos == (0, 1)
    assert h.statement_at("<cell0>", 5).pos == (0, 1)
    assert h.statement_at("<cell0>", 2) is None
    assert h.statement_at("<other>", 1) is None


def test_statements_that_read_files(tmp_path):
    (tmp_path / "data.csv").write_text("a\n")
    (tmp_path / "folder").mkdir()

    def reads(code):
        return reads_files(ast.parse(code).body[0], [str(tmp_path)])

    assert reads("DF = pd.read_csv(path)") == "pd.read_csv(...)"
    assert reads("M = pickle.load(f)") == "pickle.load(...)"
    assert reads("T = open('x').read()") == "open(...)"
    assert reads("P = Path('data.csv')") == "'data.csv'"
    assert reads(f"P = Path({str(tmp_path / 'data.csv')!r})") is not None  # absolute
    assert reads("P = Path('folder')") is None  # a folder is not read
    assert reads("P = Path('missing.csv')") is None
    assert reads("D = json.loads('{}')") is None
    assert reads("f = lambda p: open(p)") is None  # only when called


def test_a_modules_history_is_its_file(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("X = 1\nX = 2\n")
    h = capture_history.history_of({"__file__": str(path), "__name__": "m"})
    assert h.binding("X").stmt.pos == (0, 1)
    path.write_text("X = 1\nX = 2\nX = 3\n")
    linecache.checkcache(str(path))
    assert capture_history.history_of({"__file__": str(path)}).binding("X").stmt.pos == (0, 2)
    assert capture_history.history_of({"__name__": "other"}) is None


def test_file_names_up_to_400_characters_on_one_line(tmp_path):
    def reads(code):
        return reads_files(ast.parse(code).body[0], [str(tmp_path)])

    folder = "/".join(["d" * 100] * 3)  # 302 characters, + "/" + the file's name
    (tmp_path / folder).mkdir(parents=True)
    at_400, at_401 = f"{folder}/{'f' * 97}", f"{folder}/{'g' * 98}"
    (tmp_path / at_400).write_text("x")
    (tmp_path / at_401).write_text("x")
    assert (len(at_400), len(at_401)) == (400, 401)
    assert reads(f"P = Path({at_400!r})") == repr(at_400)
    assert reads(f"P = Path({at_401!r})") is None  # too long to be meant as a file name
    (tmp_path / "a\nb").write_text("x")
    assert reads("P = Path('a\\nb')") is None  # text over several lines is not a file name
    assert reads("P = Path('a\\0b')") is None
    assert reads("P = Path('')") is None
    # every string is looked at, also after one that is not a file name
    (tmp_path / "data.csv").write_text("a\n")
    assert reads("P = join('', 'data.csv')") == "'data.csv'"
    assert reads("P = loaders[0]('x')") is None  # a call of something without a name
    assert reads("P = make()('x')") is None


def test_statement_text_edges():
    # a statement sharing its last line with the next one: only its own characters
    h = history("A = f(\n    1); B = 2\n")
    assert h.binding("B").stmt.text() == ("B = 2\n", 2)
    # one comment line above is kept, a comment after or indented is not
    h = history("import re\n# one\nX = 1\n")
    assert h.binding("X").stmt.text() == ("# one\nX = 1\n", 2)
    assert history("# c\nX = 1").binding("X").stmt.text() == ("# c\nX = 1\n", 1)
    assert history("X = 1\n# end").binding("X").stmt.text() == ("X = 1\n", 1)
    h = history("if True:\n    # inside\n    pass\nX = 1\n")
    assert h.binding("X").stmt.text() == ("X = 1\n", 4)


def test_change_paths_and_roots_that_are_not_names():
    h = history("X = T()", "X.a.b.fit(1)", "make().fit()", "X.c[0].d = 2")
    fit, store = h.changes("X", after=(0, 0))
    assert (fit.kind, fit.path, fit.method) == ("call", ("a", "b"), "fit")
    assert (store.kind, store.path) == ("store", ("c", "d"))
    assert fit.where() == "<cell1>, line 1"


def test_a_module_that_no_longer_parses_has_no_history(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("X = (\n")
    assert capture_history.history_of({"__file__": str(path)}).binding("X") is None


def test_changes_in_the_parts_of_a_statement_that_run_now():
    h = history(
        "X = T()",
        "@register(X.add(1))\ndef f(a=X.pop(), *, b=X.append(3)):\n    X.never(1)",
        "@deco(X.sort())\nclass K(base(X.extend(2)), meta=X.clear()):\n    X.never = 2",
        "if True:\n    X.insert(0)\n    def g(): pass",
        "Y = lambda a=X.remove(4): X.never()",
        "for k in K:\n    X.update(k, epochs=3)\n    X.drop(inplace=False)\n"
        "    X.fillna(0, inplace=True)",
        "print(X)\nrandom.shuffle()\nloaders[0](X)\nrandom.shuffle(X.items)\n"
        "setattr(X.cfg, 'a', 1)",
        "X.b[\n    0] = 1",
    )
    found = [
        (c.kind, c.stmt.pos, c.line, c.path, c.method, c.keywords, c.inplace, c.where())
        for c in h.changes("X", after=(0, 0))
    ]
    none = frozenset()
    assert found == [
        # decorators, defaults and keyword-only defaults run; the body does not
        ("call", (1, 0), 2, (), "append", none, False, "<cell1>, line 2"),
        ("call", (1, 0), 2, (), "pop", none, False, "<cell1>, line 2"),
        ("call", (1, 0), 1, (), "add", none, False, "<cell1>, line 1"),
        # a class's decorators, bases and keywords
        ("call", (2, 0), 2, (), "clear", none, False, "<cell2>, line 2"),
        ("call", (2, 0), 2, (), "extend", none, False, "<cell2>, line 2"),
        ("call", (2, 0), 1, (), "sort", none, False, "<cell2>, line 1"),
        ("call", (3, 0), 2, (), "insert", none, False, "<cell3>, line 2"),  # beside a def
        ("call", (4, 0), 1, (), "remove", none, False, "<cell4>, line 1"),
        ("call", (5, 0), 4, (), "fillna", frozenset({"inplace"}), True, "<cell5>, line 4"),
        ("call", (5, 0), 3, (), "drop", frozenset({"inplace"}), False, "<cell5>, line 3"),
        ("call", (5, 0), 2, (), "update", frozenset({"epochs"}), False, "<cell5>, line 2"),
        # print(X) and loaders[0](X) do not change X; shuffle() and setattr() change their first
        ("store", (6, 3), 4, ("items",), "", none, False, "<cell6>, line 4"),
        ("store", (6, 4), 5, ("cfg",), "", none, False, "<cell6>, line 5"),
        ("store", (7, 0), 1, ("b",), "", none, False, "<cell7>, line 1"),
    ]


def test_names_bound_by_imports_and_compound_statements():
    h = history("import os.path\nfrom m import *\nfrom m import a as b, c")
    assert [(n, h.binding(n).kind, h.binding(n).name) for n in ["os", "b", "c"]] == [
        ("os", "import", "os"),
        ("b", "import", "b"),
        ("c", "import", "c"),
    ]
    assert [h.binding(n) for n in ["os.path", "path", "*", "a", "m"]] == [None] * 5
    h = history(
        "if True:\n    import xml.etree\n    from m import *\n    from m import d as e\n",
        "match v:\n    case [*rest]:\n        pass\n    case {'k': found}:\n        pass\n"
        "    case _:\n        pass\n",
    )
    for name in ["xml", "e", "rest", "found"]:
        assert h.binding(name).kind == "compound"
    assert [h.binding(n) for n in ["xml.etree", "etree", "*", "d", "_"]] == [None] * 5


def test_modules_imported_with_a_star():
    h = history("from m import *", "X = 1", "from .rel import *\nfrom n import *", "import p")
    assert h.star_modules() == ["n", "m"]  # latest first; a relative import is not a module
    assert h.star_modules(before=(2, 0)) == ["m"]
    assert history("X = 1").star_modules() == []


def test_a_modules_statements_know_their_file_and_lines(tmp_path):
    from krtlab.authoring.capture_source import location

    path = tmp_path / "lines.py"
    path.write_text("X = 1\n# two\nX = 2\n")
    stmt = capture_history.history_of({"__file__": str(path)}).binding("X").stmt
    assert stmt.text() == ("# two\nX = 2\n", 2)
    assert stmt.where() == location(str(path), 3)


def test_a_starred_target_binds_its_name():
    h = history("A, *X = 1, 2, 3", "[B, *Y] = 4, 5")
    assert [(n, h.binding(n).kind) for n in "AXBY"] == [
        ("A", "assign"),
        ("X", "assign"),
        ("B", "assign"),
        ("Y", "assign"),
    ]


# -- a Jupyter kernel's cells, in the order they ran --------------------------------------------


@pytest.fixture
def cells(monkeypatch, request):
    """Fake kernel cells: ``add(text, count)`` puts a cell's text where IPython keeps it
    (linecache) under a file name of this test alone, and registers its execution count."""
    numbers: dict[str, int] = {}
    monkeypatch.setattr(capture_history, "_cell_numbers", lambda: dict(numbers))
    added: list[str] = []

    def add(text: str, count: int, name: str | None = None) -> str:
        filename = f"<ipython-{request.node.name}-{name or count}>"
        lines = textwrap.dedent(text).splitlines(True)
        linecache.cache[filename] = (len(text), None, lines, filename)
        numbers[filename] = count
        added.append(filename)
        return filename

    yield add
    for filename in added:
        linecache.cache.pop(filename, None)


def test_a_kernels_history_is_its_cells_by_execution_count(cells):
    # named so that neither the names nor the order they were added in give the order they ran
    second = cells("X = 2\nY = X", 7, name="a")
    first = cells("X = 1", 3, name="c")
    third = cells("Z = 3", 12, name="b")
    h = capture_history.history_of({"__name__": "__main__"})
    assert [(n, h.binding(n).stmt.pos, h.binding(n).stmt.unit.filename) for n in "XYZ"] == [
        ("X", (1, 0), second),
        ("Y", (1, 1), second),
        ("Z", (2, 0), third),
    ]
    assert h.binding("X", before=(1, 0)).stmt.unit.filename == first
    # only the kernel's own module has the cells for its history
    assert capture_history.history_of({"__name__": "helpers"}) is None
    assert capture_history.history_of({}) is None


def test_a_kernel_without_cells_has_no_history(monkeypatch):
    monkeypatch.setattr(capture_history, "_cell_numbers", lambda: {})  # as outside IPython
    assert capture_history.history_of({"__name__": "__main__"}) is None


def test_a_cell_read_again_after_its_text_changed(cells):
    name = cells("X = 1", 1)
    assert capture_history.history_of({"__name__": "__main__"}).binding("X").stmt.pos == (0, 0)
    linecache.cache[name] = (13, None, ["W = 0\n", "X = 1\n"], name)  # the same cell, new text
    assert capture_history.history_of({"__name__": "__main__"}).binding("X").stmt.pos == (0, 1)


def test_a_module_imported_from_a_zip_file_is_read_through_its_loader(tmp_path, monkeypatch):
    import importlib
    import sys
    import zipfile

    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped_history_mod.py", "X = 1\nX = 2\n")
    monkeypatch.syspath_prepend(str(archive))
    module = importlib.import_module("zipped_history_mod")
    try:
        h = capture_history.history_of(vars(module))  # no such file on disk: the zip has it
    finally:
        del sys.modules["zipped_history_mod"]
    assert h is not None and h.binding("X").stmt.pos == (0, 1)
    assert h.binding("X").stmt.text() == ("X = 2\n", 2)


def test_a_file_name_that_is_not_text_is_not_read(tmp_path):
    import pathlib

    path = tmp_path / "m.py"
    path.write_text("X = 1\n")
    assert capture_history.history_of({"__file__": pathlib.Path(path), "__name__": "m"}) is None
    assert capture_history.history_of({"__file__": None, "__name__": "m"}) is None


def test_every_string_is_looked_at_also_after_one_that_is_text(tmp_path):
    (tmp_path / "data.csv").write_text("a\n")

    def reads(code):
        return reads_files(ast.parse(code).body[0], [str(tmp_path)])

    # the last argument is looked at first: text there does not end the search
    assert reads("P = join('data.csv', 'a\\nb')") == "'data.csv'"
    assert reads("P = join('data.csv', 'x' * 0 + '" + "y" * 401 + "')") == "'data.csv'"
    assert reads("T = parse(open(path), 'line one\\nline two')") == "open(...)"


def test_modules_imported_with_a_star_before_a_statement_not_at_it():
    h = history("from m import *", "from n import *\nX = 1")
    assert h.star_modules(before=(1, 0)) == ["m"]  # the statement at (1, 0) has not run yet
    assert h.star_modules(before=(1, 1)) == ["n", "m"]


def test_statement_at_a_line_is_the_whole_statement():
    h = history("X = 1\n\n@dec\ndef f():\n    return 2\n", "Y = 3\nZ = 4\n")
    stmt = h.statement_at("<cell0>", 4)
    assert stmt == h.binding("f").stmt  # the same position, the last of its cell
    assert (stmt.pos, stmt.last_in_unit, stmt.key) == ((0, 1), True, ("<cell0>", 1))
    assert stmt.text() == ("@dec\ndef f():\n    return 2\n", 3)
    assert (stmt.where(), stmt.node.name) == ("<cell0>, line 4", "f")
    first = h.statement_at("<cell0>", 1)
    assert (first.pos, first.last_in_unit, first.text()) == ((0, 0), False, ("X = 1\n", 1))
    assert first == h.binding("X").stmt
    assert h.statement_at("<cell1>", 1).last_in_unit is False
    assert h.statement_at("<cell1>", 2).last_in_unit is True


# -- which later calls change an object: method names are read without underscores ----------


def _call(method, *, discarded):
    from krtlab.authoring.capture_history import Change

    return Change("call", None, 1, (), method, frozenset(), False, False, discarded)


def test_only_underscores_are_stripped_from_a_methods_name():
    from krtlab.authoring.capture_changes import may_change

    nothing = lambda cls: None  # noqa: E731
    # "XSet" reads "xset": no name that changes things, its result used: no change
    assert may_change(object(), _call("XSet", discarded=False), nothing) is False
    assert may_change(object(), _call("__Set", discarded=False), nothing) is True
    # "XGet" reads "xget": no name that reads, its result thrown away: a change
    assert may_change(object(), _call("XGet", discarded=True), nothing) is True
    assert may_change(object(), _call("_get", discarded=True), nothing) is False


# -- capture() itself ---------------------------------------------------------------------------


def test_nothing_to_capture_names_the_node():
    from krtlab.authoring.capture import capture
    from krtlab.errors import CaptureError

    with pytest.raises(CaptureError) as info:
        capture([], node="empty")
    assert str(info.value) == "node 'empty': nothing to capture"
    assert (info.value.node, info.value.name, info.value.where) == ("empty", "", "")


# -- a closure's names: its own cells first, the history of its module's globals ---------------

CLOSURES_PY = """\
class Plain:
    def __init__(self, x):
        self.x = x


MODEL = Plain(1)


def make():
    zeta = 2

    def inner(req):
        return MODEL.x + zeta

    return inner


def make_unfinished():
    def inner(req):
        return zeta + alpha

    zeta = 2
    return inner
    alpha = 1  # never runs


def make_with_file():
    __file__ = "elsewhere.py"

    def inner(req):
        return MODEL.x, __file__

    return inner
"""


@pytest.fixture
def closures(tmp_path, monkeypatch):
    import importlib
    import sys

    (tmp_path / "capture_closures_mod.py").write_text(CLOSURES_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("capture_closures_mod")
    del sys.modules["capture_closures_mod"]


def test_a_closure_takes_its_cells_and_the_statements_of_its_module(closures):
    from krtlab.authoring.capture import capture
    from krtlab.authoring.capture_source import location

    plain = "class Plain:\n    def __init__(self, x):\n        self.x = x"
    cap = capture([closures.make()], node="n")
    # MODEL has no source form: the module's history gives the statement that made it
    assert cap.definitions == (
        "zeta = 2",
        plain,
        "MODEL = Plain(1)",
        "def inner(req):\n    return MODEL.x + zeta",
    )
    at = [location(closures.__file__, n) for n in range(32)]
    assert cap.names == {"Plain": at[1], "MODEL": at[6], "inner": at[12]}
    # a local of the enclosing function named __file__ does not hide the module's file
    cap = capture([closures.make_with_file()], node="n")
    assert cap.definitions == (
        plain,
        "MODEL = Plain(1)",
        "def inner(req):\n    return MODEL.x, __file__",
    )
    assert cap.names == {"Plain": at[1], "MODEL": at[6], "inner": at[30]}


def test_a_closure_variable_not_assigned_yet_is_reported_by_its_name(closures):
    from krtlab.authoring.capture import capture
    from krtlab.authoring.capture_source import location
    from krtlab.errors import CaptureError

    inner = closures.make_unfinished()
    assert inner.__code__.co_freevars == ("alpha", "zeta")  # the empty cell comes first
    with pytest.raises(CaptureError) as info:
        capture([inner], node="n")
    where = location(closures.__file__, 20)
    assert str(info.value) == f"name 'alpha' used by node 'n' ({where}) is not defined"
    assert (info.value.name, info.value.where) == ("alpha", where)
