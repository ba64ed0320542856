"""Validation findings: what is wrong, how bad, where, and how to fix it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["ERROR", "WARNING", "Finding", "Location", "Report", "format_path"]

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

Location = tuple[str | int, ...]

# Who a quoted message comes from (see Finding.kre).
_SPEAKER = re.compile(r"KRE [0-9]+|kli|kre-py [0-9.]+(?:-[0-9.]+)?")


def format_path(loc: Location) -> str:
    """``('workflows', 0, 'sequential', 1)`` → ``workflows[0].sequential[1]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in a version.

    Attributes:
        severity: ``"error"`` (KRE refuses it, or it breaks at run time) or ``"warning"``.
        code: a stable machine-readable slug such as ``name.invalid`` or ``key.unknown``.
        message: what is wrong, in one or two sentences.
        loc: the YAML path inside krt.yml (``('nodes', 0, 'name')``); empty for file-level issues.
        file: the file the problem is in (``krt.yml``, ``public_input.proto``, ``src/x/main.py``).
        line: 1-based line in ``file`` when known.
        hint: how to fix it ("did you mean 'gpu'?").
        kre: the exact message KRE (or kli, or KRE's kre-py runner) prints for this problem,
            prefixed by who says it: ``KRE 7: ...`` (KRE 3 and 5 say the same), ``KRE 8: ...``
            (only KRE 8 refuses it), ``kli: ...``, ``kre-py 1.22-2.0: ...``. Placeholders are
            filled the way KRE fills them (Go field paths like ``Workflows[0].Name``); a
            multi-line message keeps its newlines. None when no KRE version reports it.
        origin: where the user wrote the thing at fault, for a version authored in Python
            (``cell In[5], line 3``); shown before the bundle location.
    """

    severity: Severity
    code: str
    message: str
    loc: Location = ()
    file: str | None = None
    line: int | None = None
    hint: str | None = None
    kre: str | None = None
    origin: str | None = None

    @property
    def path(self) -> str:
        """The YAML path as text, e.g. ``workflows[0].sequential[1]``."""
        return format_path(self.loc)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def where(self) -> str:
        """``cell In[5], line 3 (krt.yml:12 workflows[0].entrypoint)``: the user's own line
        first when known, then the bundle location (whatever parts are known)."""
        bundle = self.bundle_where()
        if self.origin:
            return f"{self.origin} ({bundle})" if bundle else self.origin
        return bundle

    def bundle_where(self) -> str:
        """``krt.yml:12 workflows[0].entrypoint``: where it is in the bundle."""
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.loc:
            parts.append(self.path)
        return " ".join(parts)

    def format(self) -> str:
        """A readable multi-line rendering, used by the CLI and by exceptions."""
        text = (
            f"{self.severity}: {self.where()}: {self.message}"
            if self.where()
            else (f"{self.severity}: {self.message}")
        )
        if self.hint:
            text += f"\n    hint: {self.hint}"
        if self.kre:
            speaker, sep, said = self.kre.partition(": ")
            if not (sep and _SPEAKER.fullmatch(speaker)):
                speaker, said = "KRE", self.kre
            text += f"\n    {speaker} says: " + said.replace("\n", "\n      ")
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["loc"] = list(self.loc)
        data["path"] = self.path
        return data

    def __str__(self) -> str:
        return self.format()


def _sort_key(f: Finding) -> tuple[Any, ...]:
    # krt.yml first, then other files; inside a file by line, then by YAML path.
    return (
        f.file != "krt.yml",
        f.file or "",
        f.line if f.line is not None else 10**9,
        tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in f.loc),
        f.code,
    )


@dataclass(frozen=True)
class Report:
    """All findings for one version, errors and warnings, sorted by location.

    A report is truthy when there are no errors (``if v.validate(): ...``).
    """

    findings: tuple[Finding, ...] = ()
    subject: str = ""

    def __post_init__(self) -> None:
        unique = dict.fromkeys(self.findings)  # drop exact duplicates, keep order
        object.__setattr__(self, "findings", tuple(sorted(unique, key=_sort_key)))

    @classmethod
    def of(cls, findings: Iterable[Finding], subject: str = "") -> Report:
        return cls(tuple(findings), subject)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == WARNING)

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not self.errors

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def at(self, path: str) -> list[Finding]:
        """Findings located at a YAML path such as ``nodes[0].name``."""
        return [f for f in self.findings if f.path == path]

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def raise_for_errors(self) -> Report:
        """Raise :class:`krtlab.errors.ValidationError` if there is any error; else return self."""
        if self.errors:
            from krtlab.errors import ValidationError

            raise ValidationError(self, self.subject)
        return self

    def summary(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        name = f"{self.subject}: " if self.subject else ""
        if not e and not w:
            return f"{name}valid, no findings"
        return f"{name}{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}"

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f.format() for f in self.findings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Report {self.summary()}>"

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(
            {
                "subject": self.subject,
                "ok": self.ok,
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "findings": [f.to_dict() for f in self.findings],
            },
            **kwargs,
        )

    def _repr_html_(self) -> str:
        from html import escape

        # colours readable on light and dark themes; left-aligned (JupyterLab centres tables)
        colour = {"error": "#e0364f", "warning": "#d98a00"}
        cell = "style='text-align:left;vertical-align:top;padding:2px 8px'"
        rows = "".join(
            f"<tr><td {cell}><b style='color:{colour[f.severity]}'>{f.severity}</b></td>"
            f"<td {cell}>{escape(f.origin or '')}"
            + ("<br>" if f.origin and f.bundle_where() else "")
            + f"<code>{escape(f.bundle_where())}</code></td><td {cell}>{escape(f.message)}"
            + (f"<br><i>{escape(f.hint)}</i>" if f.hint else "")
            + "</td></tr>"
            for f in self.findings
        )
        head = "".join(f"<th {cell}>{h}</th>" for h in ("severity", "where", "problem"))
        table = (
            f"<table style='margin-left:0;border-collapse:collapse'><tr>{head}</tr>{rows}</table>"
            if rows
            else ""
        )
        return f"<div><b>{escape(self.summary())}</b>{table}</div>"
