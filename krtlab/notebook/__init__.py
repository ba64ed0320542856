"""Jupyter support: graphs of versions, workflows and runs that render themselves.

:class:`Graph` is what ``v.graph()``, ``workflow.graph()`` and :func:`run_graph` return. Its model
comes from :mod:`krtlab.notebook.graph`; python-graphviz builds it as a ``graphviz.Digraph``
and renders it with Graphviz's ``dot`` when that is installed (:mod:`krtlab.notebook.dot`), and
krtlab's own layout draws it otherwise (:mod:`krtlab.notebook.svg`), so a notebook always shows
a picture. graphviz is imported when a graph is first built or drawn, never on import; IPython
never.

In a notebook a graph is the SVG itself in the page (``text/html``; ``image/svg+xml`` beside it
for front ends that prefer it): at its own size when the cell is wide enough, scaled down to
the cell's width when not (``max-width:100%``, the viewBox keeping it in proportion and sharp),
with its tooltips, and never underlined by the page's link styles (:func:`fit_svg`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from krtlab.errors import ExecutableNotFound, SpecError

from .graph import GraphModel, build_model, first_line, names_only_model

if TYPE_CHECKING:
    import graphviz

    from krtlab.authoring.version import Version, Workflow

__all__ = [
    "FALLBACK_NOTE",
    "Graph",
    "display_bundle",
    "fit_svg",
    "run_graph",
    "version_graph",
    "workflow_graph",
]

FALLBACK_NOTE = "simple layout: install Graphviz (`apt install graphviz`) for the full layout"
SVG_MIME, HTML_MIME, TEXT_MIME = "image/svg+xml", "text/html", "text/plain"
PICTURES = (SVG_MIME, HTML_MIME)
_SVG_TAG = re.compile(r"<svg\b")
# the root's own style: no wider than its container, the height following the viewBox's ratio
_FIT = 'style="max-width:100%;height:auto"'


def fit_svg(svg: str) -> str:
    """``svg`` ready for a page: the root scaled down to its container's width when it is wider
    (never up: it keeps its width and height, and the viewBox its proportions), and the
    ``<a>`` elements that carry Graphviz's tooltips kept from the page's link styles (no
    underline on hover). The XML prolog stays: an ``image/svg+xml`` document keeps it, and
    :func:`svg_element` drops it for HTML."""
    svg = _SVG_TAG.sub(f"<svg {_FIT}", svg, count=1) if _FIT not in svg else svg
    return svg.replace("<a ", '<a style="text-decoration:none" ')


def svg_element(svg: str) -> str:
    """The ``<svg>`` element of an SVG document, for HTML (no XML prolog, doctype or comment)."""
    found = _SVG_TAG.search(svg)
    return svg[found.start() :] if found else svg


class Graph:
    """A drawable graph of a version, a workflow or a run.

    :meth:`digraph` is the graph as a ``graphviz.Digraph`` and ``source`` its DOT text;
    :meth:`svg` renders with Graphviz ``dot`` when it is installed and with krtlab's own layout
    when it is not; :meth:`save` writes ``.svg``, ``.png``, ``.pdf`` or ``.dot``. In Jupyter it
    displays itself as SVG and never raises.

    Example:
        >>> import krtlab as krt
        >>> g = krt.load("templates/greeter").graph()  # doctest: +SKIP
        >>> print(repr(g))  # doctest: +SKIP
        greeter-v1: Greets whoever asks, one Python node.
          py-greeting: rpc PyGreet: Request -> py-greeter -> Response
    """

    def __init__(self, model: GraphModel) -> None:
        self.model = model
        self._svg: dict[str, str] = {}
        self._note = ""  # why the last display used the simple layout

    def digraph(self) -> graphviz.Digraph:
        """The graph as a new ``graphviz.Digraph`` (yours to change, render or save)."""
        from .dot import digraph

        return digraph(self.model)

    @property
    def source(self) -> str:
        """The DOT text (rendering it needs Graphviz; building it does not)."""
        return self.digraph().source

    def svg(self, *, layout: Literal["auto", "dot", "python"] = "auto") -> str:
        """The SVG text: ``dot -Tsvg`` when available (``"auto"``), else the simple layout.

        Raises:
            ExecutableNotFound: ``layout="dot"`` and Graphviz is not installed.
            RenderError: ``dot`` ran and failed.
        """
        if layout not in ("auto", "dot", "python"):
            raise SpecError(f"unknown layout {layout!r} (must be 'auto', 'dot' or 'python')")
        if layout not in self._svg:
            from .svg import render_svg

            if layout == "python":
                self._svg[layout] = render_svg(self.model)
            else:
                from .dot import pipe

                try:
                    self._svg[layout] = pipe(self.digraph(), "svg").decode("utf-8", "replace")
                except ExecutableNotFound:
                    if layout == "dot":
                        raise
                    self._svg[layout] = render_svg(self.model, note=FALLBACK_NOTE)
                    self._note = FALLBACK_NOTE
        return self._svg[layout]

    @property
    def note(self) -> str:
        """Why the last SVG used the simple layout (Graphviz missing or failing), else ``""``."""
        return self._note

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        layout: Literal["auto", "dot", "python"] = "auto",
    ) -> Path:
        """Write the graph; the format comes from the suffix unless ``format`` is given.

        ``.svg`` always works (the simple layout without Graphviz; ``layout`` as in
        :meth:`svg`); ``.png`` and ``.pdf`` need Graphviz; ``.dot``/``.gv`` write the DOT source.

        Raises:
            ExecutableNotFound: a png/pdf was asked for and ``dot`` is not installed.
            SpecError: the format is not one of those above.
        """
        target = Path(path)
        fmt = (format or target.suffix.lstrip(".")).lower()
        if fmt == "svg":
            data = self.svg(layout=layout).encode("utf-8")
        elif fmt in ("dot", "gv"):
            data = self.source.encode("utf-8")
        elif fmt in ("png", "pdf"):
            from .dot import pipe

            data = pipe(self.digraph(), fmt)
        else:
            raise SpecError(
                f"cannot save a graph as {fmt or target.name!r}; use .svg, .png, .pdf or .dot"
            )
        target.write_bytes(data)
        return target

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None, **kwargs: Any
    ) -> dict[str, str]:
        """Jupyter display: SVG, the SVG in HTML (what JupyterLab shows: it fits the cell), and
        text, honouring include/exclude; never raises."""
        wanted = _wanted(include, exclude)
        bundle: dict[str, str] = {}
        if wanted & set(PICTURES):
            svg = self._display_svg()
            bundle |= _pictures(svg, wanted)
        if TEXT_MIME in wanted:
            bundle[TEXT_MIME] = repr(self) + (f"\n({self._note})" if self._note else "")
        return bundle

    def _display_svg(self) -> str:
        from .svg import error_svg, render_svg

        try:
            return fit_svg(self.svg())
        except Exception as exc:  # dot crashed or a bug: a picture beats a traceback here
            self._note = f"Graphviz failed ({first_line(exc)}); simple layout shown"
            try:
                return fit_svg(render_svg(self.model, note=self._note))
            except Exception as inner:  # the last resort still answers with an SVG
                return fit_svg(error_svg(f"cannot draw {self.model.title}: {first_line(inner)}"))

    def __repr__(self) -> str:
        from .svg import outline

        return outline(self.model)


def _wanted(include: Any, exclude: Any) -> set[str]:
    known = {*PICTURES, TEXT_MIME}
    wanted = known if include is None else set(include)
    return (wanted & known) - set(exclude or ())


def _pictures(svg: str, wanted: set[str]) -> dict[str, str]:
    """The picture mimetypes asked for: the SVG document, and the same SVG in HTML."""
    out = {SVG_MIME: svg} if SVG_MIME in wanted else {}
    if HTML_MIME in wanted:
        out[HTML_MIME] = f'<div class="krtlab-graph">{svg_element(svg)}</div>'
    return out


def version_graph(version: Version, *, workflow: str | None = None, run: Any = None) -> Graph:
    """The graph of ``version`` (one workflow, by workflow or rpc name, when given)."""
    return Graph(build_model(version, workflow=workflow, run=run))


def workflow_graph(workflow: Workflow, version: Version | None = None) -> Graph:
    """The graph of one workflow; its version is found when not given (names only if not)."""
    owner = version if version is not None else _owner_of(workflow)
    if owner is not None:
        return version_graph(owner, workflow=workflow.name)
    return Graph(names_only_model(workflow))


def run_graph(version: Version, result: Any) -> Graph:
    """The workflow a run went through, nodes coloured by status (ok, failed, not reached).

    ``result`` is duck-typed: ``.trace`` (items with ``node``, ``duration_ms``, ``error``,
    ``logs``), ``.ok`` and ``.error.node``; ``.workflow`` (a name) is used when present.
    """
    return version_graph(version, run=result)


def display_bundle(obj: Any, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """The mimebundle of a Version or Workflow: its graph (SVG, and the SVG in HTML) and
    ``repr(obj)``; never raises."""
    from .svg import error_svg

    wanted = _wanted(include, exclude)
    bundle: dict[str, str] = {}
    if wanted & set(PICTURES):
        try:
            svg = obj.graph()._display_svg()
        except Exception as exc:  # display must degrade, never fail the cell
            svg = fit_svg(error_svg(f"cannot draw this graph: {first_line(exc)}"))
        bundle |= _pictures(svg, wanted)
    if TEXT_MIME in wanted:
        try:
            bundle[TEXT_MIME] = repr(obj)
        except Exception as exc:
            bundle[TEXT_MIME] = f"<{type(obj).__name__}: repr failed: {first_line(exc)}>"
    return bundle


def _owner_of(workflow: Workflow) -> Version | None:
    """The Version this workflow was defined in (``Workflow.version``)."""
    return workflow.version
