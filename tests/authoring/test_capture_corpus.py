"""The capture corpus: notebook patterns exported and run the way KRE runs them.

Every pattern of :mod:`tests.authoring.corpus` goes through both doors a user has:

* ``krtlab export NOTEBOOK -o DIR``: the notebook runs in a real Jupyter kernel (nbclient), which
  also saves the notebook's own ``v.run`` answer; the exported project's nodes are then imported
  and called in a fresh interpreter (``python -I``, another working directory, so nothing beside
  the notebook can be found by accident) by the kre-py harness, and must answer the same;
* ``krtlab build script.py``: the same cells as a Python script, the ``.krt`` unpacked and run
  the same way.

Patterns that must be refused are refused by both, with the name, the cell (or script line) and
what to do. The patterns run a few at a time (each in its own processes).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from tests.authoring.corpus import PATTERNS, Pattern, notebook_cells, script_text

HARNESS = Path(__file__).parents[1] / "data" / "kre_py_harness.py"
PARALLEL = 3


def _krtlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "krtlab.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def _harness(root: Path, p: Pattern, elsewhere: Path) -> dict:
    srcs = [f"src/{name}/main.py" for name in p.seq]
    proc = subprocess.run(
        [sys.executable, "-I", str(HARNESS), str(root), "public_input_pb2", "Request",
         json.dumps(p.request), *srcs],
        cwd=elsewhere, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": proc.stderr[-2000:]}


def _run(p: Pattern, base: Path) -> dict:
    work = base / p.name
    work.mkdir()
    for rel, text in p.files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    elsewhere = base / f"{p.name}-elsewhere"
    elsewhere.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in notebook_cells(p)]
    nbformat.write(nb, work / "pattern.ipynb")
    out: dict = {"work": work}
    proc = _krtlab("export", "pattern.ipynb", "-o", "exported", cwd=work)
    out["notebook"] = {"rc": proc.returncode, "err": proc.stderr}
    if proc.returncode == 0:
        out["notebook"]["answer"] = json.loads((work / "answer.json").read_text())
        out["notebook"]["files"] = sorted(
            str(f.relative_to(work / "exported")) for f in (work / "exported").rglob("*")
            if f.is_file()
        )  # fmt: skip
        out["notebook"]["run"] = _harness(work / "exported", p, elsewhere)
        out["notebook"]["main"] = (work / "exported" / "src" / "n" / "main.py").read_text()
    if not p.notebook_only:
        (work / "script.py").write_text(script_text(p))
        proc = _krtlab("build", "script.py", "-o", "script.krt", cwd=work)
        out["script"] = {"rc": proc.returncode, "err": proc.stderr}
        if proc.returncode == 0:
            unpacked = work / "script-krt"
            with tarfile.open(work / "script.krt") as tar:
                tar.extractall(unpacked, filter="data")
            out["script"]["answer"] = json.loads((work / "answer-script.json").read_text())
            out["script"]["run"] = _harness(unpacked, p, elsewhere)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, dict]:
    base = tmp_path_factory.mktemp("corpus")
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {p.name: pool.submit(_run, p, base) for p in PATTERNS}
        return {name: f.result() for name, f in futures.items()}


def test_the_corpus_is_large_enough():
    exported = [p for p in PATTERNS if p.refuse is None]
    refused = [p for p in PATTERNS if p.refuse is not None]
    assert len(exported) >= 30 and len(refused) >= 8
    assert len({p.name for p in PATTERNS}) == len(PATTERNS)


EXPORTED = [p for p in PATTERNS if p.refuse is None]
REFUSED = [p for p in PATTERNS if p.refuse is not None]


@pytest.mark.slow
@pytest.mark.parametrize("p", EXPORTED, ids=[p.name for p in EXPORTED])
def test_exported_nodes_answer_like_the_notebook(corpus, p):
    result = corpus[p.name]
    doors = ["notebook"] + ([] if p.notebook_only else ["script"])
    for door in doors:
        got = result[door]
        assert got["rc"] == 0, f"{door}: {got['err']}"
        assert "error" not in got["run"], f"{door}: {got['run']['error']}"
        assert got["run"]["response"] == got["answer"], door
        if p.expect is not None:
            assert got["answer"] == p.expect, door
    main = result["notebook"]["main"]
    assert "pickle" not in main and "krtlab" not in main.split('"""', 2)[2]  # no noise


@pytest.mark.slow
@pytest.mark.parametrize("p", REFUSED, ids=[p.name for p in REFUSED])
def test_refusals_name_the_name_the_cell_and_what_to_do(corpus, p):
    result = corpus[p.name]
    got = result["notebook"]
    assert got["rc"] != 0
    message = " ".join(got["err"].split())
    assert re.search(p.refuse, message), message
    assert "Traceback" not in got["err"]
    if p.refuse_at is not None:
        cell, line = p.refuse_at
        assert f"cell In[{cell + 2}], line {line}" in message
    script = result["script"]
    assert script["rc"] != 0
    message = " ".join(script["err"].split())
    assert re.search(p.refuse, message), message
    if p.refuse_at is not None:
        assert "script.py, line " in message
    assert "Traceback" not in script["err"]


@pytest.mark.slow
def test_local_modules_travel_with_the_node(corpus):
    files = corpus["local-module"]["notebook"]["files"]
    assert "src/n/textutils.py" in files
    files = corpus["local-package"]["notebook"]["files"]
    assert {"src/n/helpers/__init__.py", "src/n/helpers/text.py", "src/n/helpers/marks.py"} <= set(
        files
    )
    assert not any("__pycache__" in f for f in files)
    files = corpus["import-as"]["notebook"]["files"]
    assert {"src/n/pkg/__init__.py", "src/n/pkg/sub.py"} <= set(files)
    # krtlab inspect shows them with the node
    inspect = _krtlab("inspect", "exported", cwd=corpus["local-package"]["work"])
    assert "with helpers/__init__.py, helpers/marks.py, helpers/text.py" in inspect.stdout


@pytest.mark.slow
def test_statements_are_the_users_own_text(corpus):
    main = corpus["regex"]["notebook"]["main"]
    assert 'WORD = re.compile(r"[a-z]+")  # lower-case words' in main
    main = corpus["namedtuple-partial-lambda"]["notebook"]["main"]
    assert "by_count = lambda p: (-p.count, p.word)  # most frequent first" in main
    assert 'Pair = namedtuple("Pair", "word count")' in main
    # a constant redefined after a statement used it: both bindings, in the notebook's order
    main = corpus["constant-redefined-after-use"]["notebook"]["main"]
    first, short, second = main.index("LIMIT = 3"), main.index("SHORT = "), main.index("LIMIT = 10")
    assert first < short < second
    # made in a loop: written back from the value
    main = corpus["bound-by-for-loop"]["notebook"]["main"]
    assert "STEP = timedelta(seconds=7200)" in main and 'LAST_UNIT = "h"' in main
    main = corpus["numpy-in-a-loop"]["notebook"]["main"]
    assert 'GRID = np.array([[0, 1, 2], [3, 4, 5]], dtype="int32")' in main
