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
