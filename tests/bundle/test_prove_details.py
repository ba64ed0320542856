"""The proof of an export in detail: which interpreters it starts and with what, what it answers
for each node (messages, locations, hints), its cache, its time limit and its cancellation."""

from __future__ import annotations

import os
import signal

import pytest

from krtlab.bundle import prove
from krtlab.bundle.prove import Proof, prove_imports
from krtlab.spec.findings import ERROR, Finding

GOOD = b"\n\nasync def handler(ctx, data):\n    return data\n"
IMPORT_HINT = (
    "the node's folder must hold everything it imports: install the package in the node's "
    "image, or keep the module beside the notebook so it is copied with the node"
)
STATE_HINT = (
    "the node's module runs on its own on the runner, without the notebook's state; move work "
    "that needs files or the notebook into init(ctx)"
)


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.setattr(prove, "_CACHE", {})


@pytest.fixture
def spawned(monkeypatch):
    """The (batch, shared) of every interpreter the proofs start."""
    calls: list[tuple[list[str], dict[str, list[str]]]] = []
    spawn = prove._Job._spawn

    def record(self, batch, shared):
        calls.append((list(batch), shared))
        return spawn(self, batch, shared)

    monkeypatch.setattr(prove._Job, "_spawn", record)
    return calls


def _failed(name: str, file: str, line: int | None, error: str, hint: str) -> Finding:
    base = file.rsplit("/", 1)[-1]
    at = f" at line {line}" if line else ""
    message = f"node {name!r}: {base} fails when kre-py imports it{at}: {error}"
    return Finding(ERROR, "src.import_failed", message, (), file, line, hint=hint)


def test_a_root_level_node_is_located_at_its_own_failing_line():
    # the node's own files are the whole bundle then; a library frame is not one of them
    main = b"import json\nX = 1\njson.loads('no json')\n" + GOOD
    found = prove_imports({"main.py": main, "data.txt": b"d"}, {"r": "main.py"})
    error = "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"
    assert found == [_failed("r", "main.py", 3, error, STATE_HINT)]


def test_a_root_level_node_runs_beside_every_file_of_the_bundle():
    main = b"with open('conf/data.txt') as f:\n    DATA = f.read()\n" + GOOD
    files = {"main.py": main, "conf/data.txt": b"d", "src/other/x.py": b"1 / 0\n"}
    assert prove_imports(files, {"r": "main.py"}) == []


def test_hints_tell_a_missing_import_from_other_failures():
    files = {
        "src/a/main.py": b"import not_installed_anywhere\n" + GOOD,
        "src/b/main.py": b"from json import no_such_name\n" + GOOD,
        "src/c/main.py": b"X = 1\nraise ValueError('state')\n" + GOOD,
    }
    found = prove_imports(files, {n: f"src/{n}/main.py" for n in "abc"})
    assert found == [
        _failed("a", "src/a/main.py", 1,
                "ModuleNotFoundError: No module named 'not_installed_anywhere'", IMPORT_HINT),
        _failed("b", "src/b/main.py", 1,
                "ImportError: cannot import name 'no_such_name' from 'json' "
                f"({os.path.dirname(os.__file__)}/json/__init__.py)", IMPORT_HINT),
        _failed("c", "src/c/main.py", 2, "ValueError: state", STATE_HINT),
    ]  # fmt: skip


def test_nodes_after_one_that_imports_are_proven_too():
    files = {"src/a/main.py": b"X = 1\n" + GOOD, "src/b/main.py": b"X = 1\n"}
    found = prove_imports(files, {"a": "src/a/main.py", "b": "src/b/main.py"})
    assert found == [
        _failed("b", "src/b/main.py", None, "the module defines no handler", STATE_HINT)
    ]


def test_a_node_the_interpreter_says_nothing_about_has_no_answer(monkeypatch):
    class Silent:
        def __init__(self, files, srcs):
            pass

        def results(self):
            return {}

    monkeypatch.setattr(prove, "_Job", Silent)
    found = prove_imports({"src/a/main.py": GOOD}, {"a": "src/a/main.py"})
    assert found == [_failed("a", "src/a/main.py", None, "no answer", STATE_HINT)]


def test_the_cache_follows_the_files_of_the_node_folder(monkeypatch):
    files = {"main.py": b"X = 1\n" + GOOD, "src/a/main.py": b"Y = 2\n" + GOOD}
    nodes = {"r": "main.py"}
    assert prove_imports(files, nodes) == []
    # a root-level node's folder is the whole bundle: any change proves it again
    files["src/a/main.py"] = b"1 / 0\n"
    files["main.py"] = b"X = 1\nimport src_a_missing\n" + GOOD
    (f,) = prove_imports(files, nodes)
    assert (f.file, f.line) == ("main.py", 2)
    # a node in a folder: a change elsewhere keeps its proof
    files["src/a/main.py"] = b"Y = 2\n" + GOOD
    assert prove_imports(files, {"a": "src/a/main.py"}) == []

    def no_second_run(*args, **kwargs):
        raise AssertionError("proved again")

    monkeypatch.setattr(prove, "_Job", no_second_run)
    files["main.py"] = b"changed\n"
    files["src/b/main.py"] = b"changed\n"
    assert prove_imports(files, {"a": "src/a/main.py"}) == []


def test_one_interpreter_proves_every_node_with_identical_pb2_loaded_once(spawned):
    pb2 = b"MESSAGE = 'shared'\n"
    main = b"import time\nimport public_input_pb2\ntime.sleep(0.3)\n" + GOOD
    files = {
        "src/a/main.py": main,
        "src/a/public_input_pb2.py": pb2,
        "src/b/main.py": main,
        "src/b/public_input_pb2.py": pb2,
        "src/b/other_pb2.py": b"",
    }
    assert prove_imports(files, {"a": "src/a/main.py", "b": "src/b/main.py"}) == []
    assert spawned == [(["src/a/main.py", "src/b/main.py"], {"src/a": ["public_input_pb2"]})]


def test_a_failure_in_a_shared_pb2_is_located_at_the_node_own_line():
    # identical in both folders, the module is loaded once, from the first folder: b's own
    # files show no failing line but the one in its main.py
    pb2 = b"def check():\n    raise ValueError('bad')\n"
    main = b"import x_pb2\nX = 1\nx_pb2.check()\n" + GOOD
    files = {f"src/{n}/{f}": d for n in "ab" for f, d in (("main.py", main), ("x_pb2.py", pb2))}
    found = prove_imports(files, {"a": "src/a/main.py", "b": "src/b/main.py"})
    assert found == [
        _failed("a", "src/a/x_pb2.py", 2, "ValueError: bad", STATE_HINT),
        _failed("b", "src/b/main.py", 3, "ValueError: bad", STATE_HINT),
    ]


def test_without_fork_each_node_has_its_own_interpreter(monkeypatch, spawned):
    monkeypatch.delattr(os, "fork")
    pb2 = b"MESSAGE = 'shared'\n"
    files = {
        "src/a/main.py": b"import public_input_pb2\n" + GOOD,
        "src/a/public_input_pb2.py": pb2,
        "src/b/main.py": b"X = 1\nimport nothing_here_either\n" + GOOD,
        "src/b/public_input_pb2.py": pb2,
    }
    found = prove_imports(files, {"a": "src/a/main.py", "b": "src/b/main.py"})
    assert found == [
        _failed("b", "src/b/main.py", 2,
                "ModuleNotFoundError: No module named 'nothing_here_either'", IMPORT_HINT),
    ]  # fmt: skip
    assert spawned == [(["src/a/main.py"], {}), (["src/b/main.py"], {})]


def test_the_interpreter_ignores_pythonpath(monkeypatch, tmp_path):
    (tmp_path / "only_on_pythonpath.py").write_text("X = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    files = {"src/a/main.py": b"import only_on_pythonpath\n" + GOOD}
    (f,) = prove_imports(files, {"a": "src/a/main.py"})
    assert f.message.endswith("ModuleNotFoundError: No module named 'only_on_pythonpath'")


def test_an_interpreter_that_fails_reports_the_end_of_its_stderr():
    boom = b"raise RuntimeError('" + b"x" * 1000 + b"')\n"
    files = {f"src/{n}/{f}": d for n in "ab" for f, d in (("main.py", GOOD), ("boom_pb2.py", boom))}
    found = prove_imports(files, {"a": "src/a/main.py", "b": "src/b/main.py"})
    assert found == [
        _failed(n, f"src/{n}/main.py", None, "x" * 500, STATE_HINT) for n in "ab"
    ]  # fmt: skip
    quiet = b"import os\nos._exit(0)\n"
    files = {f"src/{n}/{f}": d for n in "ab" for f, d in (("main.py", GOOD), ("q_pb2.py", quiet))}
    found = prove_imports(files, {"a": "src/a/main.py", "b": "src/b/main.py"})
    assert found == [
        _failed(n, f"src/{n}/main.py", None, "no answer", STATE_HINT) for n in "ab"
    ]  # fmt: skip


def test_the_time_limit_counts_from_the_start_of_the_proof():
    files = {"src/a/main.py": b"import time\ntime.sleep(0.5)\n" + GOOD}
    proof = Proof(files, {"a": "src/a/main.py"})
    assert proof._job is not None
    proof._job.started -= 1000  # long over: what is left is a last glance
    text = "importing it did not finish in 120 s (a long computation at import?)"
    assert proof.findings() == [_failed("a", "src/a/main.py", None, text, STATE_HINT)]


def test_a_cancelled_proof_stops_its_interpreter_and_cleans_up():
    slow = b"import time\ntime.sleep(3)\n"  # loaded once, before the forks
    files = {f"src/{n}/{f}": d for n in "ab" for f, d in (("main.py", GOOD), ("s_pb2.py", slow))}
    proof = Proof(files, {"a": "src/a/main.py", "b": "src/b/main.py"})
    job = proof._job
    assert job is not None
    proof.cancel()
    assert job.procs[0].returncode == -signal.SIGKILL
    assert not job.root.exists()
    proof.cancel()  # nothing left to stop
    assert proof._job is None


@pytest.mark.parametrize(
    ("files", "folders", "shared"),
    [
        ({"a/x_pb2.py": b"1"}, ["a"], {}),
        ({"a/x_pb2.py": b"1", "b/x_pb2.py": b"1"}, ["a", "b"], {"a": ["x_pb2"]}),
        ({"a/x_pb2.py": b"1", "b/x_pb2.py": b"2"}, ["a", "b"], {}),
        ({"a/x_pb2.py": b"1", "b/x_pb2.py": b"1", "c/x_pb2.py": b"2"}, ["a", "b", "c"], {}),
        (
            {"a/y_pb2.py": b"1", "a/x_pb2.py": b"1", "a/h.py": b"", "b/x_pb2.py": b"1",
             "b/y_pb2.py": b"1", "b/h.py": b"", "c/x_pb2.py": b"1", "c/y_pb2.py": b"1",
             "c/h.py": b"", "x_pb2.py": b"1", "a/d/z_pb2.py": b"1", "b/d/z_pb2.py": b"1"},
            ["a", "b", "c"],
            {"a": ["x_pb2", "y_pb2"]},
        ),
        ({"a/h.py": b"", "b/h.py": b""}, ["a", "b"], {}),
    ],
    ids=["one-folder", "two-same", "two-differ", "third-differs", "several", "no-pb2"],
)  # fmt: skip
def test_shared_pb2_are_those_identical_in_every_node_folder(files, folders, shared):
    assert prove._shared_pb2(files, folders) == shared
