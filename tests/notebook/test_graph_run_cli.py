"""Graphs after a run (nodes coloured by status, durations, the failing node's error) and the
``krtlab graph`` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

import krtlab as krt
from krtlab.cli import main
from krtlab.notebook import run_graph
from krtlab.notebook.dot import COLORS
from krtlab.notebook.svg import MARKER
from tests.notebook.test_graph import GRAPHVIZ_MARKER, group_with_text, paint, texts, tooltip
from tests.support import REPO

PE = REPO / "templates" / "price-estimator"
LAYOUTS = ("dot", "python")


@dataclass
class NodeTrace:
    """Stands in for krtlab.runtime's NodeTrace (same attributes)."""

    node: str
    input: Any = None
    output: Any = None
    duration_ms: float = 0.0
    logs: list[str] = field(default_factory=list)
    error: Any = None


@dataclass
class NodeFailed:
    node: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class RunResult:
    """Stands in for krtlab.runtime's RunResult: ``trace``, ``ok``, ``error.node``."""

    trace: list[NodeTrace]
    error: NodeFailed | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@pytest.fixture
def dot_installed():
    """Fail (not skip) without Graphviz: a skipped test proves nothing."""
    assert shutil.which("dot"), "Graphviz `dot` is not installed (.ci/run installs graphviz)"


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def failed_run() -> RunResult:
    boom = ZeroDivisionError("division by zero <in model & co>")
    return RunResult(
        trace=[
            NodeTrace("etl", duration_ms=1.25, logs=["features ready"]),
            NodeTrace("model", duration_ms=12.5, error=boom, logs=["loading weights"]),
        ],
        error=NodeFailed("model", "node 'model' failed: ZeroDivisionError: division by zero"),
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_failed_run_colours_nodes_by_status(layout, dot_installed):
    g = run_graph(krt.load(PE), failed_run())
    svg = g.svg(layout=layout)
    words = " ".join(texts(svg))
    assert "run failed at model" in words
    etl, model, output = (group_with_text(svg, "node", n) for n in ("etl", "model", "output"))
    assert COLORS["ok"][0] in paint(etl, "fill") and "1.25 ms" in words
    assert COLORS["failed"][0] in paint(model, "fill")
    assert COLORS["failed"][1] in paint(model, "stroke")
    assert COLORS["skipped"][0] in paint(output, "fill") and "not reached" in words
    # and each node's status as a class, for styles and for tests reading the page
    assert [g.get("class") for g in (etl, model, output)] == [
        "node status-ok", "node status-failed", "node status-skipped"
    ]  # fmt: skip
    assert "ZeroDivisionError: division by zero <in model & co>" in tooltip(model)
    assert "loading weights" in tooltip(model)
    assert "save-metric" not in words.split()  # only the workflow that ran


def test_run_outline_and_ok_run():
    v = krt.load(PE)
    outline = repr(run_graph(v, failed_run()))
    assert "run failed at model: node 'model' failed: ZeroDivisionError" in outline
    assert "etl [ok 1.25 ms] -> EtlOutput -> model [failed ZeroDivisionError" in outline
    assert "output [not reached]" in outline
    ok = RunResult(trace=[NodeTrace("save-metric", duration_ms=3.0)])
    g = run_graph(v, ok)
    assert g.model.run == "run ok in 3.00 ms" and g.model.run_ok is True
    assert [c.name for c in g.model.clusters] == ["save-metrics"]
    assert g.model.clusters[0].boxes[0].status == "ok"


def test_run_graph_displays_without_dot(no_dot):
    bundle = run_graph(krt.load(PE), failed_run())._repr_mimebundle_()
    svg = bundle["image/svg+xml"]
    assert MARKER in svg
    assert COLORS["failed"][0] in paint(group_with_text(svg, "node", "model"), "fill")


def test_cli_graph_writes_svg_and_png(tmp_path, capsys, dot_installed):
    assert main(["graph", str(PE), "-o", str(tmp_path / "pe.svg")]) == 0
    assert GRAPHVIZ_MARKER in (tmp_path / "pe.svg").read_text()
    assert main(["graph", str(PE), "-o", str(tmp_path / "pe.png"), "-w", "save-metrics"]) == 0
    assert (tmp_path / "pe.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {tmp_path / 'pe.png'}" in capsys.readouterr().out
    assert main(["graph", str(PE)]) == 0
    assert "ny-room-price: rpc MakePrediction: Request -> etl" in capsys.readouterr().out


def test_cli_graph_without_dot(tmp_path, no_dot):
    argv = [sys.executable, "-m", "krtlab.cli", "graph", str(PE), "-o"]
    svg = subprocess.run([*argv, str(tmp_path / "pe.svg")], capture_output=True, text=True)
    assert svg.returncode == 0, svg.stderr
    assert "simple layout" in svg.stdout and MARKER in (tmp_path / "pe.svg").read_text()
    png = subprocess.run([*argv, str(tmp_path / "pe.png")], capture_output=True, text=True)
    assert png.returncode == 2
    assert png.stderr.strip().splitlines() == [
        "krtlab graph: 'dot' was not found on PATH; install Graphviz (`apt install graphviz`, "
        "`brew install graphviz` or `conda install graphviz`); .svg files work without it"
    ]
    assert not (tmp_path / "pe.png").exists()
