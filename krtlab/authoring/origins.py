"""Where the user wrote each part of an authored version, so findings point at the cell (or
script line) first and at ``krt.yml`` second."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import TYPE_CHECKING

from krtlab.authoring.capture_source import location
from krtlab.spec.findings import Finding, Report

if TYPE_CHECKING:
    from .version import Version

__all__ = ["caller", "with_origins"]

_KRTLAB = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def caller(depth: int = 2) -> str | None:
    """``cell In[5], line 3``: the line that called the caller of this function (None outside
    the user's code, e.g. krtlab calling itself)."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return None
    name = frame.f_code.co_filename
    if os.path.abspath(name).startswith(_KRTLAB):
        return None
    return location(name, frame.f_lineno)


def _node_origin(v: Version, index: int) -> str | None:
    nodes = list(v._nodes.values())
    if not 0 <= index < len(nodes):
        return None
    func = nodes[index].func
    code = getattr(getattr(func, "__wrapped__", func), "__code__", None)
    return location(code.co_filename, code.co_firstlineno) if code is not None else None


def _origin(v: Version, f: Finding) -> str | None:
    where = v._defined
    if f.file and f.file != "krt.yml":
        if f.line is not None and f.file in v._origins:
            return v._origins[f.file].get(f.line)
        if f.file.endswith(".proto"):
            return where.get("proto")
    loc = f.loc
    if loc[:1] == ("nodes",) and len(loc) > 1 and isinstance(loc[1], int):
        return _node_origin(v, loc[1])
    if loc[:1] == ("workflows",) and len(loc) > 1 and isinstance(loc[1], int):
        names = list(v._workflows)
        return where.get(f"workflow:{names[loc[1]]}") if loc[1] < len(names) else None
    if loc[:1] == ("config",):
        return where.get("config")
    if loc[:1] in (("version",), ("description",), ("entrypoint",)) or not loc:
        return where.get("version")
    return None


def with_origins(v: Version, report: Report) -> Report:
    """``report`` with each finding's ``origin`` set where the user's line is known."""
    if v._base is not None:  # loaded from a bundle: krt.yml is the user's own file
        return report
    findings = []
    for f in report.findings:
        origin = f.origin or _origin(v, f)
        findings.append(dataclasses.replace(f, origin=origin) if origin else f)
    return Report.of(findings, report.subject)
