"""The graph model as a :class:`graphviz.Digraph`, and the one place krtlab runs ``dot``.

python-graphviz builds the DOT text (identifiers and attribute values quoted, clusters as
subgraphs, ports on edges) and runs Graphviz (``graphviz.pipe``, see :func:`pipe`); building
never starts a process, so ``Graph.source`` works without the binary. What stays here is what
graphviz leaves to its caller:

- HTML-like labels: graphviz passes ``<...>`` through verbatim, so the user text inside them
  is escaped here (:func:`html`: XML, and backslashes for the escString pass ``dot`` still
  makes over label text);
- tooltips: :func:`graphviz.escape` prepares a string for DOT's escString pass, but ``dot``
  reads a tooltip through two more (HTML entities, then ``interpretCRNL``, which drops one
  level of backslashes), so :func:`tooltip` prepares it for those too (else ``&amp;`` shows
  as ``&``, ``\\N`` as the node's name);
- krtlab's own errors (:class:`~krtlab.errors.ExecutableNotFound` with the install command,
  :class:`~krtlab.errors.RenderError` with dot's stderr) in place of graphviz's. There is no
  timeout any more (graphviz has none; ``dot`` lays out these few dozen boxes in milliseconds).

graphviz is imported inside the functions: ``import krtlab`` stays light, and the colours
below serve krtlab's own layout (:mod:`krtlab.notebook.svg`) too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from krtlab.errors import ExecutableNotFound, RenderError

if TYPE_CHECKING:
    import graphviz

    from .graph import Arrow, Box, Cluster, GraphModel

__all__ = ["COLORS", "DOT_HINT", "RenderError", "digraph", "html", "pipe", "tooltip"]

DOT_HINT = (
    "install Graphviz (`apt install graphviz`, `brew install graphviz` or "
    "`conda install graphviz`); .svg files work without it"
)
FONT = "Helvetica,Arial,sans-serif"

# (fill, border, text) per kind of box; the simple SVG layout uses the same colours.
COLORS: dict[str, tuple[str, str, str]] = {
    "python": ("#e8f0fe", "#4a6fa5", "#1a1a1a"),
    "go": ("#e3f4f1", "#2f7d6d", "#1a1a1a"),
    "ok": ("#dff3e4", "#2e7d32", "#1a1a1a"),
    "failed": ("#fde2e1", "#c62828", "#7f0000"),
    "skipped": ("#f2f2f2", "#a0a0a0", "#808080"),
    "missing": ("#ffffff", "#c62828", "#c62828"),
    "entrypoint": ("#fff6dd", "#b8860b", "#1a1a1a"),
    "config": ("#fffde7", "#c9b037", "#1a1a1a"),
    "cluster": ("#fafafa", "#c8c8c8", "#333333"),
    "exit": ("#ffffff", "#9e9e9e", "#666666"),
    "edge": ("#555555", "#555555", "#444444"),
    "bad": ("#d62728", "#d62728", "#d62728"),
    "muted": ("#ffffff", "#9e9e9e", "#777777"),
}
STATUS_MARK = {"ok": "✓", "failed": "✗", "skipped": "–"}


def pipe(graph: graphviz.Digraph, fmt: str) -> bytes:
    """``graph`` rendered by Graphviz (``svg``, ``png``, ``pdf``), with krtlab's errors.

    Raises:
        ExecutableNotFound: ``dot`` is not on PATH (the message says how to install it).
        RenderError: ``dot`` could not be started or exited non-zero (with its stderr).
    """
    import graphviz

    # graphviz.pipe with the whole source, not graph.pipe(): that one writes the source line by
    # line and fails with BrokenPipeError, hiding dot's message, when dot stops reading early
    # (`-Tpng` on a Graphviz built without it). quiet: dot's warnings stay out of the cell.
    try:
        return graphviz.pipe("dot", fmt, graph.source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise ExecutableNotFound("dot", DOT_HINT) from None
    except graphviz.CalledProcessError as exc:
        stderr = (exc.stderr or b"").decode("utf-8", "replace")
        raise RenderError(f"dot -T{fmt} exited with {exc.returncode}", stderr=stderr) from None
    except OSError as exc:  # not executable, and the like: the program exists but cannot run
        raise RenderError(f"cannot run dot: {exc.strerror or exc}") from None


# -- text graphviz passes through ------------------------------------------------------------------


def html(text: str) -> str:
    """Text for an HTML-like label (one line): escaped as XML, and its backslashes doubled,
    because ``dot`` also reads label text as an escString (``\\N`` is the node's name)."""
    one = " ".join(text.split("\n")).replace("\\", "\\\\")
    return (
        one.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def tooltip(text: str) -> str:
    """A tooltip value that ``dot`` shows exactly as ``text`` (newlines kept).

    graphviz quotes it (``"`` becomes ``\\"``); entities are written out first, and
    :func:`graphviz.escape` runs twice, once per backslash pass, so a backslash survives both.
    """
    import graphviz

    escaped = graphviz.escape(graphviz.escape(text.replace("&", "&amp;")))
    return graphviz.nohtml(escaped.replace("\n", "\\n"))  # nohtml: "<b>" is no HTML label


def _font(text: str, size: int, color: str, bold: bool = False) -> str:
    body = f"<B>{html(text)}</B>" if bold else html(text)
    return f'<FONT POINT-SIZE="{size}" COLOR="{color}">{body}</FONT>'


# -- the graph -------------------------------------------------------------------------------------


def digraph(model: GraphModel) -> graphviz.Digraph:
    """``model`` as a :class:`graphviz.Digraph`: left to right, one cluster per workflow."""
    import graphviz

    g = graphviz.Digraph(
        "krtlab",
        graph_attr={
            "rankdir": "LR", "fontname": FONT, "fontsize": "11", "labelloc": "t",
            "labeljust": "l", "nodesep": "0.25", "ranksep": "0.45", "newrank": "true",
            "bgcolor": "white", "label": _title(model), "tooltip": tooltip(model.title),
        },
        node_attr={
            "fontname": FONT, "fontsize": "11", "shape": "box", "style": "rounded,filled",
            "margin": "0.14,0.06",
        },
        edge_attr={
            "fontname": FONT, "fontsize": "9", "arrowsize": "0.7", "color": COLORS["edge"][0],
            "fontcolor": COLORS["edge"][2],
        },
    )  # fmt: skip
    g.node("ep", _entrypoint(model), shape="plain", style="solid", tooltip=_ep_tooltip(model))
    if model.config:
        fill, border, ink = COLORS["config"]
        label = "<<B>config</B>" + "".join(f'<BR ALIGN="LEFT"/>{html(c)}' for c in model.config)
        tip = "config: values are set in KRE, not in the bundle\n" + "\n".join(model.config)
        g.node(
            "cfg", label + '<BR ALIGN="LEFT"/>>', shape="note", style="filled", fillcolor=fill,
            color=border, fontcolor=ink, fontsize="10", tooltip=tooltip(tip),
        )  # fmt: skip
        with g.subgraph() as same:  # same column as the entrypoint, below it
            same.attr(rank="same")
            same.edge("ep", "cfg", style="invis")
    for k, cluster in enumerate(model.clusters):
        with g.subgraph(name=f"cluster_{k}") as sub:
            _cluster(sub, cluster)
    for cluster in model.clusters:
        for arrow in cluster.arrows:
            _arrow(g, arrow)
    return g


def _title(model: GraphModel) -> str:
    parts = [_font(model.title, 14, "#1a1a1a", bold=True)]
    if model.description:
        parts.append(_font(model.description, 10, "#555555"))
    if model.run:
        parts.append(_font(model.run, 10, COLORS["ok" if model.run_ok else "failed"][1], True))
    parts += [_font(n, 9, "#8a6d00") for n in model.notes]
    return "<" + '<BR ALIGN="LEFT"/>'.join(parts) + '<BR ALIGN="LEFT"/>>'


def _entrypoint(model: GraphModel) -> str:
    fill, border, ink = COLORS["entrypoint"]
    rows = [f'<TR><TD ALIGN="LEFT">{_font("entrypoint", 11, ink, bold=True)}</TD></TR>']
    if model.entrypoint_image:  # an empty <FONT></FONT> is a syntax error to dot
        rows.append(f'<TR><TD ALIGN="LEFT">{_font(model.entrypoint_image, 8, "#666666")}</TD></TR>')
    for rpc in model.rpcs:
        color = ink if rpc.used else COLORS["muted"][2]
        rows.append(
            f'<TR><TD PORT="{rpc.port}" ALIGN="LEFT" BORDER="1" SIDES="T" COLOR="{border}">'
            f"{_font(rpc.name, 10, color)}</TD></TR>"
        )
    return (
        f'<<TABLE BORDER="1" STYLE="rounded" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" '
        f'BGCOLOR="{fill}" COLOR="{border}">' + "".join(rows) + "</TABLE>>"
    )


def _ep_tooltip(model: GraphModel) -> str:
    head = f"entrypoint ({model.entrypoint_image})" if model.entrypoint_image else "entrypoint"
    lines = [head] + [r.tooltip or r.name for r in model.rpcs]
    return tooltip("\n".join(lines))


def _cluster(sub: graphviz.Digraph, cluster: Cluster) -> None:
    fill, border, ink = COLORS["cluster"]
    # no-break spaces: dot writes each run of text as its own <text>, and SVG drops a plain
    # space that starts one (the header read "word-count·  rpc")
    label = f"workflow <B>{html(cluster.name)}</B>&#160;&#160;·&#160;&#160;rpc {html(cluster.rpc)}"
    if cluster.note:
        label += '<BR ALIGN="LEFT"/>' + _font(cluster.note, 9, COLORS["bad"][2])
    sub.attr(
        style="rounded,filled", fillcolor=fill, fontsize="10", fontcolor=ink,
        color=COLORS["bad"][1] if cluster.bad else border, labeljust="l", label=f"<{label}>",
        tooltip=tooltip(f"workflow {cluster.name} serves rpc {cluster.rpc}"),
    )  # fmt: skip
    for box in cluster.boxes:
        _box(sub, box)
    fill, border, ink = COLORS["exit"]
    sub.node(
        cluster.exit_id, "response", style="rounded,dashed", fillcolor=fill, color=border,
        fontcolor=ink, fontsize="9", tooltip=tooltip(f"the reply to the {cluster.rpc} caller"),
    )  # fmt: skip


def _box(sub: graphviz.Digraph, box: Box) -> None:
    key = "missing" if box.missing else box.status or box.kind
    fill, border, ink = COLORS.get(key, COLORS["python"])
    label = f"<B>{html(box.name)}</B>"
    if box.badges:
        label += "<BR/>" + " ".join(
            _font(b, 8, "#8e24aa" if b == "gpu" else "#555555", bold=b == "gpu") for b in box.badges
        )
    if box.status or box.note:
        mark = STATUS_MARK.get(box.status or "", "")
        label += "<BR/>" + _font(f"{mark} {box.note}".strip(), 8, border, bold=True)
    style = "rounded,filled" + (",dashed" if box.missing or box.status == "skipped" else "")
    # a run's status as a class too (``<g class="node status-failed">``), for CSS and tests
    extra = {"class": f"status-{box.status}"} if box.status else {}
    sub.node(
        box.id, f"<{label}>", style=style, fillcolor=fill, color=border, fontcolor=ink,
        tooltip=tooltip(box.tooltip or box.name),
        penwidth="2.4" if box.status == "failed" or box.missing else "1.2", **extra,
    )  # fmt: skip


def _arrow(g: graphviz.Digraph, a: Arrow) -> None:
    attrs = {"tooltip": tooltip(a.tooltip or a.label or "message")}
    if a.label:
        attrs["label"] = f"<{html(a.label)}>"
    if a.bad:
        color = COLORS["bad"][0]
        attrs |= {"color": color, "fontcolor": color, "penwidth": "2"}
    g.edge(f"ep:{a.port}:e" if a.port else a.src, f"{a.dst}:w", **attrs)
