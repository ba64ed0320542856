"""Jupyter display of versions, workflows and graphs: the mimebundle honours include/exclude,
works without Graphviz (``dot`` off PATH) and never raises; saving svg/png."""

from __future__ import annotations

import shutil
import subprocess
import sys
from xml.etree import ElementTree

import pytest

import krtlab as krt
import krtlab.notebook.dot as dotmod
import krtlab.notebook.svg as svgmod
from krtlab.errors import ExecutableNotFound
from krtlab.notebook import FALLBACK_NOTE
from krtlab.notebook.dot import RenderError
from krtlab.notebook.svg import MARKER
from tests.notebook.test_graph import GRAPHVIZ_MARKER, texts
from tests.support import REPO

SVG, HTML, TEXT = "image/svg+xml", "text/html", "text/plain"


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """Graphviz uninstalled, as on Binder or a fresh laptop: PATH is an empty folder."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture
def dot_installed():
    """Fail (not skip) without Graphviz: a skipped test proves nothing."""
    assert shutil.which("dot"), "Graphviz `dot` is not installed (.ci/run installs graphviz)"


@pytest.fixture
def greeter():
    return krt.load(REPO / "templates" / "greeter")


@pytest.fixture
def price_estimator():
    return krt.load(REPO / "templates" / "price-estimator")


def test_version_bundle_is_graphviz_svg_and_its_repr(greeter, dot_installed):
    bundle = greeter._repr_mimebundle_()
    assert set(bundle) == {SVG, HTML, TEXT}
    assert GRAPHVIZ_MARKER in bundle[SVG]
    assert "py-greeter" in texts(bundle[SVG])
    assert bundle[TEXT] == repr(greeter)


@pytest.mark.parametrize("layout", ["dot", "python"])
def test_the_picture_fits_the_cell_and_stays_vector(price_estimator, layout, request):
    """In a page the SVG is scaled down to the cell when wider (never up), its viewBox kept,
    and the links carrying tooltips are not underlined by the page's styles."""
    request.getfixturevalue("dot_installed" if layout == "dot" else "no_dot")
    bundle = price_estimator._repr_mimebundle_()
    html = bundle[HTML]
    assert html.startswith('<div class="krtlab-graph"><svg ') and "<?xml" not in html
    root = ElementTree.fromstring(html.removeprefix('<div class="krtlab-graph">')[:-6])
    assert root.get("style") == "max-width:100%;height:auto"
    assert root.get("width") and root.get("viewBox")  # its own size, and its proportions
    assert texts(html[html.index("<svg") : -6]) == texts(bundle[SVG])
    links = [e for e in root.iter() if e.tag.endswith("}a")]
    assert all(a.get("style") == "text-decoration:none" for a in links)
    assert (layout == "dot") == bool(links)  # Graphviz's tooltips are links; krtlab's, titles


def test_without_dot_the_bundle_is_the_simple_layout_with_a_hint(price_estimator, no_dot):
    bundle = price_estimator._repr_mimebundle_()
    svg = bundle[SVG]
    assert MARKER in svg and GRAPHVIZ_MARKER not in svg
    words = " ".join(texts(svg)).split()
    for name in ("etl", "model", "output", "save-metric", "ny-room-price", "MakePrediction"):
        assert name in words
    assert FALLBACK_NOTE in texts(svg)
    g = price_estimator.graph()
    assert g._repr_mimebundle_()[TEXT].endswith(f"({FALLBACK_NOTE})")
    assert g.note == FALLBACK_NOTE


def test_without_dot_workflows_and_graphs_display_too(price_estimator, no_dot):
    wf = price_estimator.workflows["save-metrics"]
    assert "save-metric" in texts(wf._repr_mimebundle_()[SVG])
    assert MARKER in price_estimator.graph()._repr_mimebundle_()[SVG]


def test_asking_for_dot_without_it_names_the_install_command(greeter, no_dot):
    with pytest.raises(ExecutableNotFound, match="apt install graphviz"):
        greeter.graph().svg(layout="dot")


@pytest.mark.parametrize(
    "include, exclude, keys",
    [
        (None, None, {SVG, HTML, TEXT}),
        ([SVG], None, {SVG}),
        ([HTML], None, {HTML}),
        ([TEXT], None, {TEXT}),
        (None, [SVG], {HTML, TEXT}),
        ([SVG, TEXT], [TEXT], {SVG}),
        (["image/png"], None, set()),
        (None, [SVG, HTML, TEXT], set()),
    ],
)
def test_bundle_honours_include_and_exclude(greeter, include, exclude, keys):
    for obj in (greeter, greeter.graph(), greeter.workflows["py-greeting"]):
        bundle = obj._repr_mimebundle_(include=include, exclude=exclude)
        assert isinstance(bundle, dict) and set(bundle) == keys


def test_text_only_display_never_runs_dot(greeter, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("dot ran for a text/plain display")

    monkeypatch.setattr(dotmod, "pipe", forbidden)
    assert set(greeter.graph()._repr_mimebundle_(include=[TEXT])) == {TEXT}


def test_a_failing_dot_falls_back_with_a_note(greeter, monkeypatch):
    def crash(graph, fmt):
        raise RenderError("dot -Tsvg exited with 1", stderr="Error: syntax error in line 3")

    monkeypatch.setattr(dotmod, "pipe", crash)
    g = greeter.graph()
    svg = g._repr_mimebundle_()[SVG]
    assert MARKER in svg and "py-greeter" in texts(svg)
    assert "Graphviz failed (RenderError: dot -Tsvg exited with 1" in " ".join(texts(svg))
    with pytest.raises(RenderError, match="syntax error in line 3"):
        g.svg()  # outside the display, the error is not hidden


def test_display_never_raises_even_when_drawing_breaks(greeter, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("layout bug")

    monkeypatch.setattr(dotmod, "pipe", crash)
    monkeypatch.setattr(svgmod, "render_svg", crash)
    svg = greeter.graph()._repr_mimebundle_()[SVG]
    assert "cannot draw greeter-v1: RuntimeError: layout bug" in texts(svg)

    monkeypatch.setattr(type(greeter), "graph", crash)
    bundle = greeter._repr_mimebundle_()
    assert "cannot draw this graph: RuntimeError: layout bug" in texts(bundle[SVG])
    assert bundle[TEXT] == repr(greeter)


def test_save_svg_and_png(price_estimator, tmp_path, dot_installed):
    g = price_estimator.graph()
    svg = g.save(tmp_path / "pe.svg")
    assert GRAPHVIZ_MARKER in svg.read_text() and "etl" in texts(svg.read_text())
    png = g.save(tmp_path / "pe.png")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "digraph krtlab" in g.save(tmp_path / "pe.dot").read_text()
    simple = g.save(tmp_path / "simple.svg", layout="python")
    assert MARKER in simple.read_text()
    with pytest.raises(krt.SpecError, match=r"use \.svg, \.png, \.pdf or \.dot"):
        g.save(tmp_path / "pe.jpg")


def test_save_without_dot_writes_svg_and_refuses_png(price_estimator, tmp_path, no_dot):
    g = price_estimator.graph()
    assert MARKER in g.save(tmp_path / "pe.svg").read_text()
    with pytest.raises(ExecutableNotFound, match=r"'dot' was not found on PATH; install Graphviz"):
        g.save(tmp_path / "pe.png")
    assert not (tmp_path / "pe.png").exists()


def test_graphviz_is_imported_to_draw_and_ipython_never():
    # loading a version leaves graphviz alone; drawing it imports graphviz (which builds and
    # renders the graph) but still neither IPython nor ipywidgets
    code = (
        "import sys, krtlab as krt; v = krt.load(sys.argv[1]); "
        "mods = lambda: [m for m in ('IPython', 'graphviz', 'ipywidgets') if m in sys.modules]; "
        "print(mods()); v._repr_mimebundle_(); print(mods())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "templates" / "greeter")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split("\n")[:2] == ["[]", "['graphviz']"]
