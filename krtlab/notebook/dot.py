"""The graph model as DOT text, and the one place krtlab runs Graphviz's ``dot``.

Building the text never starts a process, so ``Graph.source`` works without Graphviz; only
:func:`run_dot` (through :func:`run_check`) needs the binary. User text goes into HTML-like
labels (escaped as XML) and tooltips (escaped as XML entities too, because ``dot`` decodes
entities and passes them through to SVG untouched, which sidesteps DOT's backslash rules).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING

from krtlab.errors import ExecutableNotFound, RenderError

if TYPE_CHECKING:
    from .graph import Arrow, Box, Cluster, GraphModel

__all__ = ["COLORS", "DOT_HINT", "RenderError", "dot_source", "run_check", "run_dot"]

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


def run_check(
    argv: Sequence[str], *, input: bytes | None = None, timeout: float = 60, hint: str = ""
) -> bytes:
    """Run ``argv`` and return its stdout.

    Raises:
        ExecutableNotFound: the program is not on PATH (``hint`` says how to install it).
        RenderError: it could not be started, timed out, or exited non-zero (with stderr).
    """
    try:
        proc = subprocess.run(
            list(argv), input=input, capture_output=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise ExecutableNotFound(argv[0], hint) from None
    except subprocess.TimeoutExpired:
        raise RenderError(f"{argv[0]} did not finish within {timeout:g} s") from None
    except OSError as exc:  # not executable, and the like: the program exists but cannot run
        raise RenderError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        raise RenderError(f"{' '.join(argv)} exited with {proc.returncode}", stderr=stderr)
    return proc.stdout


def run_dot(source: str, fmt: str) -> bytes:
    """``dot -T<fmt>`` on ``source`` (``svg``, ``png``, ``pdf``)."""
    return run_check(["dot", f"-T{fmt}"], input=source.encode("utf-8"), hint=DOT_HINT)


# -- DOT text --------------------------------------------------------------------------------------


def html(text: str) -> str:
    """Text for an HTML-like label (one line)."""
    one = " ".join(text.split("\n"))
    return (
        one.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def quoted(text: str) -> str:
    """A quoted escString (tooltips): XML entities throughout, so no DOT escape applies."""
    s = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = s.replace('"', "&quot;").replace("\\", "&#92;&#92;").replace("\n", "&#10;")
    return f'"{s}"'


def _attrs(**attrs: str) -> str:
    return "[" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "]"


def _font(text: str, size: int, color: str, bold: bool = False) -> str:
    body = f"<B>{html(text)}</B>" if bold else html(text)
    return f'<FONT POINT-SIZE="{size}" COLOR="{color}">{body}</FONT>'


def dot_source(model: GraphModel) -> str:
    """The DOT text of ``model``: left to right, one cluster per workflow."""
    graph = _attrs(
        rankdir="LR", fontname=f'"{FONT}"', fontsize="11", labelloc="t", labeljust="l",
        nodesep="0.25", ranksep="0.45", newrank="true", bgcolor='"white"',
        label=_title(model), tooltip=quoted(model.title),
    )  # fmt: skip
    lines = [
        "digraph krtlab {",
        f"  graph {graph}",
        f'  node [fontname="{FONT}", fontsize=11, shape=box, style="rounded,filled", '
        'margin="0.14,0.06"]',
        f'  edge [fontname="{FONT}", fontsize=9, arrowsize=0.7, color="{COLORS["edge"][0]}", '
        f'fontcolor="{COLORS["edge"][2]}"]',
        "  ep "
        + _attrs(
            shape="plain", style='"solid"', label=_entrypoint(model), tooltip=_ep_tooltip(model)
        ),
    ]  # fmt: skip
    if model.config:
        fill, border, ink = COLORS["config"]
        label = "<<B>config</B>" + "".join(f'<BR ALIGN="LEFT"/>{html(c)}' for c in model.config)
        tip = "config: values are set in KRE, not in the bundle\n" + "\n".join(model.config)
        lines.append(
            "  cfg "
            + _attrs(
                shape="note", style="filled", fillcolor=f'"{fill}"', color=f'"{border}"',
                fontcolor=f'"{ink}"', fontsize="10", label=label + '<BR ALIGN="LEFT"/>>',
                tooltip=quoted(tip),
            )
        )  # fmt: skip
        # same column as the entrypoint, below it (the invisible edge orders the two)
        lines.append("  { rank=same; ep -> cfg [style=invis] }")
    for k, cluster in enumerate(model.clusters):
        lines += _cluster(k, cluster)
    for cluster in model.clusters:
        lines += [_arrow(a) for a in cluster.arrows]
    lines.append("}")
    return "\n".join(lines) + "\n"


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
    rows = [
        f'<TR><TD ALIGN="LEFT">{_font("entrypoint", 11, ink, bold=True)}</TD></TR>',
        f'<TR><TD ALIGN="LEFT">{_font(model.entrypoint_image, 8, "#666666")}</TD></TR>',
    ]
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
    lines = [f"entrypoint ({model.entrypoint_image})"] + [r.tooltip or r.name for r in model.rpcs]
    return quoted("\n".join(lines))


def _cluster(k: int, cluster: Cluster) -> list[str]:
    fill, border, ink = COLORS["cluster"]
    label = f"workflow <B>{html(cluster.name)}</B>  ·  rpc {html(cluster.rpc)}"
    if cluster.note:
        label += '<BR ALIGN="LEFT"/>' + _font(cluster.note, 9, COLORS["bad"][2])
    tip = quoted(f"workflow {cluster.name} serves rpc {cluster.rpc}")
    lines = [
        f"  subgraph cluster_{k} {{",
        f'    style="rounded,filled"; fillcolor="{fill}"; fontsize=10; fontcolor="{ink}";',
        f'    color="{COLORS["bad"][1] if cluster.bad else border}"; labeljust=l;',
        f"    label=<{label}>; tooltip={tip};",
    ]
    lines += [f"    {box.id} {_box(box)}" for box in cluster.boxes]
    fill, border, ink = COLORS["exit"]
    lines.append(
        f"    {cluster.exit_id} "
        + _attrs(
            label='"response"', style='"rounded,dashed"', fillcolor=f'"{fill}"',
            color=f'"{border}"', fontcolor=f'"{ink}"', fontsize="9",
            tooltip=quoted(f"the reply to the {cluster.rpc} caller"),
        )
    )  # fmt: skip
    lines.append("  }")
    return lines


def _box(box: Box) -> str:
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
    return _attrs(
        label=f"<{label}>", style=f'"{style}"', fillcolor=f'"{fill}"', color=f'"{border}"',
        fontcolor=f'"{ink}"', tooltip=quoted(box.tooltip or box.name),
        penwidth="2.4" if box.status == "failed" or box.missing else "1.2",
    )  # fmt: skip


def _arrow(a: Arrow) -> str:
    src = f"ep:{a.port}:e" if a.port else a.src
    attrs: dict[str, str] = {"tooltip": quoted(a.tooltip or a.label or "message")}
    if a.label:
        attrs["label"] = f"<{html(a.label)}>"
    if a.bad:
        color = COLORS["bad"][0]
        attrs |= {"color": f'"{color}"', "fontcolor": f'"{color}"', "penwidth": "2"}
    return f"  {src} -> {a.dst}:w {_attrs(**attrs)}"
