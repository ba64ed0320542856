"""A local run and a deployed version's answer to the same request, side by side."""

from __future__ import annotations

import json
from html import escape
from typing import Any

__all__ = ["Comparison"]

_CELL = 'style="border-bottom:1px solid #ddd;padding:2px 10px;text-align:left;vertical-align:top"'
# marks readable on light and dark themes; the text keeps the theme's colour
_GREEN, _RED = "#2da44e", "#e0364f"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class Comparison:
    """A local run and the deployed version's answer to the same request.

    Attributes:
        rpc: the rpc called. local, deployed: both responses as dicts. same: they are equal.
        differences: ``(field path, local value, deployed value)`` for each field that differs.
    """

    def __init__(self, rpc: str, local: dict[str, Any], deployed: dict[str, Any]) -> None:
        self.rpc, self.local, self.deployed = rpc, local, deployed
        self.differences: list[tuple[str, Any, Any]] = list(_diff(local, deployed, ""))
        self.same = not self.differences

    def __bool__(self) -> bool:
        return self.same

    def _verdict(self) -> str:
        if self.same:
            return "same answer locally and deployed"
        n = len(self.differences)
        return f"different answers: {n} field{'s' if n != 1 else ''} differ{'s' if n == 1 else ''}"

    def __str__(self) -> str:
        """What ``print`` shows: the verdict, both answers, and each difference."""
        lines = [
            f"{self.rpc}: {self._verdict()}",
            f"  local:    {_json(self.local)}",
            f"  deployed: {_json(self.deployed)}",
        ]
        lines += [
            f"  ≠ {p or '(the answer)'}: local {_json(a)}, deployed {_json(b)}"
            for p, a, b in self.differences
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        if self.same:
            return f"<Comparison {self.rpc}: same answer locally and deployed {self.local}>"
        lines = [f"<Comparison {self.rpc}: {len(self.differences)} difference(s)"]
        lines += [
            f"  {p or '(root)'}: local {a!r} != deployed {b!r}" for p, a, b in self.differences
        ]
        return "\n".join(lines) + ">"

    def _repr_html_(self) -> str:
        paths = {p for p, _, _ in self.differences}
        keys = sorted({*self.local, *self.deployed})
        rows = []
        for key in keys:
            cells = [_json(d[key]) if key in d else "—" for d in (self.local, self.deployed)]
            hit = any(p == key or p.startswith(f"{key}.") or p.startswith(f"{key}[") for p in paths)
            # a differing field: a red mark down the row and a ≠, the text in the theme's colour
            style = f' style="border-left:3px solid {_RED}"' if hit else ""
            name = escape(key) + (f' <b style="color:{_RED}">≠</b>' if hit else "")
            tds = "".join(f"<td {_CELL}><code>{escape(c)}</code></td>" for c in cells)
            rows.append(f"<tr{style}><th {_CELL}>{name}</th>{tds}</tr>")
        mark = f'<b style="color:{_GREEN}">✓</b>' if self.same else f'<b style="color:{_RED}">✗</b>'
        head = f"<tr><th {_CELL}>field</th><th {_CELL}>local</th><th {_CELL}>deployed</th></tr>"
        return (
            f"<p>{mark} <b>{escape(self.rpc)}</b>: {escape(self._verdict())}</p>"
            f'<table style="border-collapse:collapse">{head}{"".join(rows)}</table>'
        )


def _diff(a: Any, b: Any, path: str) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted({*a, *b}):
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                yield sub, a.get(key), b.get(key)
            else:
                yield from _diff(a[key], b[key], sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b
