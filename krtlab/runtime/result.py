"""What ``v.run`` returns: the response (or the failing node) and a trace of every node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.message import Message

if TYPE_CHECKING:
    from .errors import NodeFailed

__all__ = ["NodeTrace", "RunResult", "format_ms", "short_type"]


def format_ms(ms: float) -> str:
    """One duration, as precise as it needs to be: ``0.046 ms``, ``4.2 µs``, ``12.3 ms``; a
    node that ran never reads 0."""
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    if ms >= 1:
        return f"{ms:.2f} ms"
    if ms >= 0.01:
        return f"{ms:.3f} ms"
    return f"{ms * 1000:.1f} µs"


# Inline styles: notebook front ends (JupyterLab, widgets' HTML) strip or restyle bare tables.
_TABLE = 'style="border-collapse:collapse;margin:4px 0"'
_CELL = 'style="border-bottom:1px solid #ddd;padding:2px 10px;text-align:left"'

# -- results -----------------------------------------------------------------------------------


@dataclass(slots=True)
class NodeTrace:
    """What one node did in a run.

    Attributes:
        node: node name.
        input: the message it received (decoded), None if it never got one.
        output: the message it returned, None if it failed.
        duration_ms: wall time of the node, its Unpack and Pack included.
        logs: ``ctx.logger`` lines, in KRE's format.
        error: ``error in '<node>': ...`` when it failed.
        replied: it answered the request early (``ctx.reply``).
        where: the line of the node's own code that raised (``cell In[4], line 7: code``).
    """

    node: str
    input: Any
    output: Any
    duration_ms: float
    logs: list[str]
    error: str | None = None
    replied: bool = False
    where: str | None = None

    def __repr__(self) -> str:
        flow = f"{short_type(self.input)} → {short_type(self.output)}"
        state = "replied early" if self.replied else "ok"
        state = f"failed: {self.error}" if self.error else state
        count = len(self.logs)
        logs = f", {count} log line{'s' if count != 1 else ''}" if count else ""
        return f"<{self.node} {format_ms(self.duration_ms)} {flow} {state}{logs}>"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data (messages as dicts)."""
        return {
            "node": self.node,
            "input": _as_dict(self.input),
            "output": _as_dict(self.output),
            "input_type": short_type(self.input),
            "output_type": short_type(self.output),
            "duration_ms": self.duration_ms,
            "logs": list(self.logs),
            "error": self.error,
            "where": self.where,
            "replied": self.replied,
        }


class RunResult:
    """The outcome of ``v.run``: the response (or the failing node) and a per-node trace.

    Attributes:
        version: version name.
        rpc: the rpc served. workflow: the workflow that ran.
        trace: one :class:`NodeTrace` per node that ran, in order.
        error: the :class:`NodeFailed` that stopped the workflow, or None.
        duration_ms: wall time of the whole run.
        warnings: e.g. config values missing.
        replied_by: the node that answered early with ``ctx.reply``, if any.
    """

    def __init__(self, *, version: str, rpc: str, workflow: str, trace: list[NodeTrace],
                 response: Any, error: NodeFailed | None, duration_ms: float,
                 warnings: list[str], replied_by: str | None) -> None:  # fmt: skip
        self.version, self.rpc, self.workflow = version, rpc, workflow
        self.trace, self._response, self.error = trace, response, error
        self.duration_ms, self.warnings, self.replied_by = duration_ms, warnings, replied_by
        self.source: Any = None  # the Version that ran, so the result can draw itself

    def graph(self) -> Any:
        """The workflow that ran, nodes coloured by status with their durations."""
        return self.source._run_graph(self)  # drawn by the notebook stage, through the Version

    @property
    def ok(self) -> bool:
        """No node failed."""
        return self.error is None

    @property
    def response(self) -> Any:
        """What KRE's entrypoint would answer: the early reply if a node sent one (even if a
        later node failed: on KRE that error reaches no one), else the last node's output.

        Raises:
            NodeFailed: a node failed before any reply (``error in '<node>': ...``).
        """
        if self.error is not None and self.replied_by is None:
            raise self.error
        return self._response

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data."""
        return {
            "version": self.version,
            "rpc": self.rpc,
            "workflow": self.workflow,
            "ok": self.ok,
            "response": _as_dict(self._response),
            "error": None if self.error is None else str(self.error),
            "replied_by": self.replied_by,
            "duration_ms": self.duration_ms,
            "warnings": list(self.warnings),
            "trace": [t.to_dict() for t in self.trace],
        }

    def _status(self) -> str:
        state = "ok" if self.ok else "FAILED"
        return f"{self.rpc} ({self.workflow}) {state} in {format_ms(self.duration_ms)}"

    def __repr__(self) -> str:
        import json

        lines = [f"<RunResult {self._status()}"]
        width = max((len(t.node) for t in self.trace), default=0)
        for t in self.trace:
            flow = f"{short_type(t.input)} → {short_type(t.output)}"
            extra = " (replied)" if t.replied else ""
            lines.append(f"  {t.node:<{width}}  {format_ms(t.duration_ms):>9}  {flow}{extra}")
            lines += [f"    ! {t.error}"] if t.error else []
            lines += [f"      at {t.where}"] if t.where else []
            lines += [f"    | {line}" for text in t.logs for line in text.splitlines()[:1]]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self._response is not None:
            lines.append(f"  response: {json.dumps(_as_dict(self._response), default=str)}")
        return "\n".join(lines) + ">"

    def _repr_html_(self) -> str:
        import json
        from html import escape

        picture = ""
        if self.source is not None:
            try:  # the graph is a bonus: a table always shows
                svg = self.graph()._repr_mimebundle_(include=["image/svg+xml"])["image/svg+xml"]
                picture = svg[svg.find("<svg") :] if "<svg" in svg else ""  # no XML prolog in HTML
            except Exception:
                picture = ""

        rows = []
        for t in self.trace:
            cells = [escape(c) for c in (t.node, short_type(t.input), short_type(t.output),
                                         format_ms(t.duration_ms))]  # fmt: skip
            # a node's log lines (first line of each: tracebacks stay in .logs) and its error
            logs = "<br>".join(escape(text.splitlines()[0]) for text in t.logs if text)
            cells.append(f'<span style="font-family:monospace;font-size:90%">{logs}</span>')
            error = escape(t.error or "")
            if t.where:
                error += f"<br><small>at {escape(t.where)}</small>"
            cells.append(error)
            # the theme's own text colour, a red mark: readable in light and dark themes
            style = ' style="border-left:3px solid #d33"' if t.error else ""
            tds = "".join(f"<td {_CELL}>{c}</td>" for c in cells)
            rows.append(f"<tr{style}>{tds}</tr>")
        names = ("node", "in", "out", "time", "logs", "error")
        head = "".join(f"<th {_CELL}>{h}</th>" for h in names)
        parts = [f"<p><b>{escape(self._status())}</b></p>", picture,
                 f"<table {_TABLE}><tr>{head}</tr>{''.join(rows)}</table>"]  # fmt: skip
        parts += [f"<p>warning: {escape(w)}</p>" for w in self.warnings]
        if self._response is not None:
            text = json.dumps(_as_dict(self._response), indent=1, default=str)
            parts.append(f"<pre>{escape(text)}</pre>")
        return "".join(parts)


def short_type(msg: Any) -> str:
    if isinstance(msg, Message):
        return msg.DESCRIPTOR.name
    return "-" if msg is None else type(msg).__name__


def _as_dict(msg: Any) -> Any:
    if not isinstance(msg, Message):
        return None if msg is None else repr(msg)
    try:
        return json_format.MessageToDict(
            msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    except TypeError:  # protobuf < 5.26 names that option differently
        return json_format.MessageToDict(  # type: ignore[call-arg]  # protobuf < 5.26's name
            msg, preserving_proto_field_name=True, including_default_value_fields=True
        )
