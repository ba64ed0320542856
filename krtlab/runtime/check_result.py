"""What ``v.check()`` / ``krtlab check`` return: per node, the runner's Python it was checked on
and whether it loaded; per request, whether the runner answered as the local run did."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any

__all__ = ["CheckResult", "NodeCheck", "RequestCheck"]

OK, FAILED, NOT_CHECKED, SKIPPED = "ok", "failed", "not checked", "skipped"
SAME, DIFFERENT, NOT_REPLAYED = "same", "different", "not replayed"
_TABLE = 'style="border-collapse:collapse;margin:4px 0"'
_CELL = 'style="border-bottom:1px solid #ddd;padding:2px 10px;text-align:left;vertical-align:top"'
_COLOUR = {OK: "#1a7f37", SAME: "#1a7f37", FAILED: "#b00020", DIFFERENT: "#b00020",
           NOT_CHECKED: "#a15c00", NOT_REPLAYED: "#a15c00", SKIPPED: "#666"}  # fmt: skip


@dataclass
class NodeCheck:
    """One node on its runner's Python.

    Attributes:
        node: node name. image: its image in krt.yml. runner: ``kre-py:1.23.0 (Python 3.7)``.
        status: ``ok``, ``failed`` (it does not load, or ``init`` fails), ``not checked`` (no
            interpreter or environment for it: ``reason`` says why) or ``skipped`` (a Go node).
        interpreter: the Python it ran on (path), ``python`` its version, ``found_by`` how it was
            found. venv: the environment, ``installed`` what it holds, ``protobuf`` its version.
        error: the import (or ``init``) error, ``stage`` which one, ``where``/``code`` the
            failing line, ``log`` what the runner logs (``error loading handler script ...``).
        warnings: e.g. an interpreter of another version given with ``--python``.
    """

    node: str
    image: str
    runner: str | None = None
    status: str = NOT_CHECKED
    reason: str = ""
    interpreter: str | None = None
    python: str | None = None
    found_by: str | None = None
    venv: str | None = None
    installed: list[str] = field(default_factory=list)
    protobuf: str | None = None
    stage: str | None = None
    error: str | None = None
    where: str | None = None
    code: str | None = None
    log: str | None = None
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = f"{self.node}  {self.runner or self.image}  {self.status}"
        out = [head + (f": {self.reason}" if self.reason else "")]
        if self.interpreter:
            out.append(f"    interpreter {self.interpreter} (Python {self.python}, "
                       f"{self.found_by}), protobuf {self.protobuf or '?'}")  # fmt: skip
        if self.venv:
            out.append(f"    venv {self.venv} ({' '.join(self.installed)})")
        if self.error:
            what = "init(ctx) failed" if self.stage == "init" else "import failed"
            out.append(f"    {what}{_at(self.where, self.code)}: {self.error}")
            first = (self.log or "").strip().splitlines()[:1]
            out += [f"    runner log: {first[0]}"] if first and self.stage != "init" else []
        out += [f"    warning: {w}" for w in self.warnings]
        return out


@dataclass
class RequestCheck:
    """One request replayed on the runners' Pythons and run locally.

    Attributes:
        rpc, workflow: what served it. request: the request (JSON-able).
        status: ``same`` (same answer, or the same node failed both times), ``different``
            (both answered, differently; or only the local run failed), ``failed`` (the runner
            failed where the local run answered) or ``not replayed`` (``reason``).
        local / local_error: the local answer (JSON-able) or its ``error in '<node>': ...``.
        runner / runner_error: the same on the runner's Python; ``node``, ``where`` and
            ``code`` locate a runner failure.
    """

    rpc: str
    workflow: str
    request: Any
    status: str = NOT_REPLAYED
    reason: str = ""
    local: Any = None
    local_error: str | None = None
    runner: Any = None
    runner_error: str | None = None
    node: str | None = None
    where: str | None = None
    code: str | None = None

    def lines(self) -> list[str]:
        head = f"{self.rpc} {_json(self.request)}: {self.status}"
        if self.status == NOT_REPLAYED:
            return [f"{head} ({self.reason})"]
        if self.status == SAME:
            answer = self.local_error or _json(self.local)
            return [f"{head}  {answer}"]
        out = [head]
        runner = self.runner_error or _json(self.runner)
        out.append(f"    runner: {runner}{_at(self.where, self.code)}")
        out.append(f"    local:  {self.local_error or _json(self.local)}")
        return out


class CheckResult:
    """A version's nodes run on their runners' Pythons (see :func:`krtlab.runtime.check`).

    ``status`` is ``ok`` (every Python node loaded, every replayed request answered the same),
    ``failed`` (a node does not load or a request differs or fails) or ``not checked`` (no
    interpreter or environment for some nodes, and nothing failed). Truthy when ``ok``;
    ``exit_code`` is 0, 1 or 2 accordingly.
    """

    def __init__(self, version: str) -> None:
        self.version = version
        self.nodes: list[NodeCheck] = []
        self.requests: list[RequestCheck] = []
        self.notes: list[str] = []

    @property
    def status(self) -> str:
        states = {n.status for n in self.nodes} | {r.status for r in self.requests}
        if states & {FAILED, DIFFERENT}:
            return FAILED
        checked = [n for n in self.nodes if n.status != SKIPPED]
        if not checked or NOT_CHECKED in states:
            return NOT_CHECKED
        return OK

    @property
    def ok(self) -> bool:
        return self.status == OK

    def __bool__(self) -> bool:
        return self.ok

    @property
    def exit_code(self) -> int:
        return {OK: 0, FAILED: 1}.get(self.status, 2)

    def summary(self) -> str:
        checked = sum(n.status in (OK, FAILED) for n in self.nodes)
        same = sum(r.status == SAME for r in self.requests)
        replayed = sum(r.status != NOT_REPLAYED for r in self.requests)
        state = {OK: "ok", FAILED: "FAILED"}.get(self.status, "NOT CHECKED")
        skipped = len(self.requests) - replayed
        return (
            f"{self.version}: {state}: {checked} of {len(self.nodes)} node(s) run on their "
            f"runner's Python, {same} of {replayed} replayed request(s) answered the same"
            + (f", {skipped} not replayed" if skipped else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "status": self.status,
            "ok": self.ok,
            "nodes": [asdict(n) for n in self.nodes],
            "requests": [asdict(r) for r in self.requests],
            "notes": list(self.notes),
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), default=str, **kwargs)

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  {line}" for n in self.nodes for line in n.lines()]
        if self.requests:
            lines.append("  requests:")
            lines += [f"    {line}" for r in self.requests for line in r.lines()]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CheckResult {self.summary()}>"

    def _repr_html_(self) -> str:
        def cell(text: str, state: str | None = None) -> str:
            style = f' style="color:{_COLOUR[state]}"' if state in _COLOUR else ""
            return f"<td {_CELL}><span{style}>{escape(text)}</span></td>"

        rows = []
        for n in self.nodes:
            where = f"{n.interpreter} (Python {n.python})" if n.interpreter else ""
            detail = n.reason or ""
            if n.error:
                detail = f"{n.stage} failed{_at(n.where, n.code)}: {n.error}"
            detail = "\n".join([detail, *n.warnings]).strip()
            rows.append("<tr>" + cell(n.node) + cell(n.runner or n.image) + cell(n.status, n.status)
                        + cell(where) + cell(n.venv or "") + cell(detail) + "</tr>")  # fmt: skip
        head = "".join(f"<th {_CELL}>{h}</th>" for h in
                       ("node", "runner", "status", "interpreter", "venv", "detail"))  # fmt: skip
        parts = [f"<p><b>{escape(self.summary())}</b></p>",
                 f"<table {_TABLE}><tr>{head}</tr>{''.join(rows)}</table>"]  # fmt: skip
        if self.requests:
            rrows = []
            for r in self.requests:
                runner = r.runner_error or (_json(r.runner) if r.status != NOT_REPLAYED else "")
                local = r.local_error or (_json(r.local) if r.status != NOT_REPLAYED else "")
                runner += _at(r.where, r.code) if r.runner_error else ""
                cells = [cell(r.rpc), cell(_json(r.request)), cell(r.status, r.status),
                         cell(runner or r.reason), cell(local)]  # fmt: skip
                rrows.append(f"<tr>{''.join(cells)}</tr>")
            rhead = "".join(f"<th {_CELL}>{h}</th>" for h in
                            ("rpc", "request", "status", "runner", "local"))  # fmt: skip
            parts.append(f"<table {_TABLE}><tr>{rhead}</tr>{''.join(rrows)}</table>")
        parts += [f"<p>note: {escape(note)}</p>" for note in self.notes]
        return "".join(parts)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _at(where: str | None, code: str | None) -> str:
    if not where:
        return ""
    return f" at {where}" + (f" `{code}`" if code else "")
