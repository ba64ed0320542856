"""python-graphviz builds and renders krtlab's graphs: the DOT text comes from a
``graphviz.Digraph``, user text survives its quoting and Graphviz's own decoding (HTML-like
labels and tooltips), its errors become krtlab's, and the simple layout takes over when ``dot``
is not on PATH. Everything here runs the real ``dot``."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import graphviz
import pytest

import krtlab as krt
from krtlab.errors import ExecutableNotFound, RenderError
from krtlab.notebook import FALLBACK_NOTE, Graph, run_graph
from krtlab.notebook.svg import MARKER
from tests.notebook.test_graph import GRAPHVIZ_MARKER, group_with_text, texts, tooltip
from tests.support import REPO

PE = REPO / "templates" / "price-estimator"
XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"
# quotes, markup, an entity, DOT escapes (\N is the node's name, \G the graph's, \l a line
# end), a Windows path, doubled and trailing backslashes; short enough for a node's name
SPECIAL = '"q" <b>&amp;</b> & \\N\\G\\l C:\\New \\\\s\\'


@pytest.fixture(autouse=True)
def dot_installed():
    """Fail (not skip) without Graphviz: a skipped test proves nothing."""
    assert shutil.which("dot"), "Graphviz `dot` is not installed (.ci/run installs graphviz)"


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """A `dot` of our own first on PATH (or alone): ``fake_dot(script, mode)`` writes it."""
    folder = tmp_path / "bin"
    folder.mkdir()

    def write(script: str, mode: int = 0o755, *, alone: bool = False) -> None:
        monkeypatch.setenv("PATH", str(folder) + ("" if alone else os.pathsep + os.environ["PATH"]))
        path = folder / "dot"
        path.write_text(script)
        path.chmod(mode)

    return write


@dataclass
class Trace:
    node: str
    duration_ms: float = 0.0
    logs: list[str] = field(default_factory=list)
    error: Any = None


@dataclass
class Failed:
    node: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Run:
    trace: list[Trace]
    error: Failed | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def titles(svg: str) -> list[str]:
    return [e.get(XLINK_TITLE) for e in ET.fromstring(svg).iter() if e.get(XLINK_TITLE)]


def test_the_dot_source_is_a_graphviz_digraph(tmp_path):
    g = krt.load(PE).graph()
    d = g.digraph()
    assert isinstance(d, graphviz.Digraph) and d.name == "krtlab"
    assert g.source == d.source and d is not g.digraph()  # a new one each time: yours to change
    assert d.graph_attr["rankdir"] == "LR"
    # clusters are graphviz subgraphs, edges leave the entrypoint's rpc rows through ports
    assert "\tsubgraph cluster_0 {" in g.source and "\tsubgraph cluster_1 {" in g.source
    assert "\tep:r0:e -> w0n0:w [label=<Request>" in g.source
    assert g.save(tmp_path / "pe.dot").read_text() == d.source
    # what graphviz renders from it is what krtlab shows
    assert d.pipe(format="svg", encoding="utf-8", quiet=True) == g.svg()


def test_special_characters_in_names_survive_quoting_and_rendering():
    wf = krt.Workflow('flow "one" <&>', "Ask&Tell", (f"a{SPECIAL}", 'b "<c>"\\'))
    g = wf.graph()
    svg = g.svg(layout="dot")
    assert GRAPHVIZ_MARKER in svg  # dot parsed the DOT text: no fallback
    shown = texts(svg)
    for text in (f"a{SPECIAL}", 'b "<c>"\\', 'flow "one" <&>', "Ask&Tell"):
        assert text in shown, f"{text!r} not shown exactly: {shown}"
    hovers = titles(svg)
    for text in (f"a{SPECIAL}", 'b "<c>"\\', 'workflow flow "one" <&> serves rpc Ask&Tell'):
        assert text in hovers, f"{text!r} not in the tooltips exactly: {hovers}"


def test_special_characters_in_a_description_and_a_runs_error_and_logs():
    v = krt.load(PE)
    error = ValueError(f"{SPECIAL}\nsecond line")
    run = Run(
        [
            Trace("etl", 1.0, logs=[f"log {SPECIAL}"]),
            Trace("model", 2.0, logs=['"quoted" <log>'], error=error),
        ],
        Failed("model", f"node 'model' failed: {SPECIAL}"),
    )
    g = run_graph(v, run)
    svg = g.svg(layout="dot")
    assert GRAPHVIZ_MARKER in svg
    # labels: one line each, every character as given
    assert f"run failed at model: node 'model' failed: {SPECIAL}" in texts(svg)
    assert "✗ " + f"ValueError: {SPECIAL}"[:47] + "…" in texts(svg)  # the node's note: 48 at most
    # tooltips: newlines kept, nothing decoded or substituted
    model = tooltip(group_with_text(svg, "node", "model"))
    assert f'ValueError: {SPECIAL}\nsecond line\nlogs:\n"quoted" <log>' in model
    assert f"ok in 1.00 ms\nlogs:\nlog {SPECIAL}" in tooltip(group_with_text(svg, "node", "etl"))


def test_special_characters_in_a_version_description():
    v = krt.Version("chain-v1", description=SPECIAL)
    pb = v.proto(
        'syntax = "proto3";\npackage entrypoint;\nmessage Request { string name = 1; }\n'
        "service Entrypoint { rpc Greet (Request) returns (Request) {}; }\n"
    )

    @v.node(name="echo")
    def echo(req: pb.Request) -> pb.Request:
        return pb.Request(name=req.name)

    v.workflow("main", entrypoint="Greet", sequential=[echo])
    for layout in ("dot", "python"):
        assert SPECIAL in texts(v.graph().svg(layout=layout)), layout


def test_dot_off_path_the_source_still_builds_and_the_simple_layout_draws(tmp_path, monkeypatch):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    g = krt.load(PE).graph()
    assert "digraph krtlab {" in g.source  # graphviz builds text without the binary
    with pytest.raises(graphviz.ExecutableNotFound):
        g.digraph().pipe(format="svg")  # graphviz is what would run dot ...
    with pytest.raises(ExecutableNotFound, match=r"'dot' was not found on PATH; install Graphviz"):
        g.svg(layout="dot")  # ... and krtlab says it its own way
    svg = g.svg()
    assert MARKER in svg and GRAPHVIZ_MARKER not in svg and g.note == FALLBACK_NOTE
    assert {"etl", "model", "output", "save-metric"} <= set(" ".join(texts(svg)).split())


def test_a_dot_that_fails_is_a_render_error_with_its_stderr(fake_dot, tmp_path):
    fake_dot("#!/bin/sh\necho 'Error: out of cheese' >&2\nexit 3\n")
    g = krt.load(PE).graph()
    with pytest.raises(RenderError, match="dot -Tpng exited with 3: Error: out of cheese"):
        g.save(tmp_path / "pe.png")
    assert not (tmp_path / "pe.png").exists()
    svg = g._repr_mimebundle_()["image/svg+xml"]  # a cell still gets a picture
    assert MARKER in svg and "Graphviz failed (RenderError: dot -Tsvg exited with 3" in g.note


def test_a_dot_that_cannot_run_is_a_render_error(fake_dot):
    fake_dot("#!/bin/sh\n", mode=0o644, alone=True)  # on PATH, not executable
    with pytest.raises(RenderError, match="cannot run dot: Permission denied"):
        Graph(krt.load(PE).graph().model).svg(layout="dot")


def test_dot_warnings_stay_out_of_the_cell(fake_dot, capfd):
    real = shutil.which("dot")
    fake_dot(f'#!/bin/sh\necho "Warning: just so you know" >&2\nexec {real} "$@"\n')
    svg = krt.load(PE).graph().svg(layout="dot")
    assert GRAPHVIZ_MARKER in svg
    assert "Warning" not in capfd.readouterr().err
