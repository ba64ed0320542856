"""The finding collector every validation rule writes to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from krtlab.spec.findings import ERROR, WARNING, Finding, Location, Severity
from krtlab.spec.yamlsrc import ParsedYaml

__all__ = ["Checker", "go_path"]


@dataclass
class Checker:
    """Collects findings; knows where krt.yml values are so each finding gets its line."""

    parsed: ParsedYaml | None
    manifest_file: str = "krt.yml"
    findings: list[Finding] = field(default_factory=list)

    def add(
        self,
        severity: Severity,
        code: str,
        message: str,
        loc: Location = (),
        *,
        hint: str | None = None,
        kre: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        if file is None:
            file = self.manifest_file
            if line is None and self.parsed is not None:
                line = self.parsed.line(loc)
        self.findings.append(Finding(severity, code, message, tuple(loc), file, line, hint, kre))

    def error(self, code: str, message: str, loc: Location = (), **kw: Any) -> None:
        self.add(ERROR, code, message, loc, **kw)

    def warning(self, code: str, message: str, loc: Location = (), **kw: Any) -> None:
        self.add(WARNING, code, message, loc, **kw)


def go_path(loc: Location) -> str:
    """KRE reports locations with Go field names: ``nodes[0].name`` → ``Nodes[0].Name``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part[:1].upper() + part[1:]
    return out
