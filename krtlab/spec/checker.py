"""The finding collector every validation rule writes to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from krtlab.spec.findings import ERROR, WARNING, Finding, Location, Severity
from krtlab.spec.model import GO_TYPES
from krtlab.spec.yamlsrc import ParsedYaml

__all__ = ["Checker", "go_path", "go_text", "unmarshal_error"]


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


_YAML_TAG_PREFIX = "tag:yaml.org,2002:"


def go_text(check: Checker, loc: Location, value: Any) -> str:
    """The text yaml.v2 puts in a Go string for ``value``: a scalar as written (``1.10`` stays
    ``1.10``, ``true`` stays ``true``), whatever Python made of it."""
    if isinstance(value, str):
        return value
    scalar = check.parsed.scalars.get(tuple(loc)) if check.parsed is not None else None
    return scalar[1] if scalar is not None else str(value)


def unmarshal_error(check: Checker, loc: Location, value: Any) -> str | None:
    """KRE 7's message when yaml.v2 cannot decode ``value`` at ``loc`` into its Go type, exactly
    as ``createVersion`` returns it (``parser.go`` ``generateKrt`` wrapped by ``ParseKrtYaml``;
    the text after ``yaml:`` is yaml.v2 2.4's ``TypeError``: ``decode.go`` ``terror``). It names
    this value only; yaml.v2 lists every such value of the file, one line each. None when KRE
    would decode it after all, or the value's place in the file is not known."""
    loc = tuple(loc)
    go_type = GO_TYPES.get(tuple("#" if isinstance(p, int) else p for p in loc))
    if value is None or go_type is None or check.parsed is None or loc not in check.parsed.lines:
        return None
    if isinstance(value, dict):
        shown = "!!map"
    elif isinstance(value, list):
        shown = "!!seq"
    else:
        tag, text = check.parsed.scalars.get(loc, ("", ""))
        if go_type == "string" or (go_type == "bool" and text in ("y", "Y", "n", "N")):
            return None  # yaml.v2 keeps any scalar as a string's text; y/n are its booleans
        raw = text.encode()
        text = raw.decode() if len(raw) <= 10 else raw[:7].decode(errors="replace") + "..."
        short = "!!" + tag[len(_YAML_TAG_PREFIX) :] if tag.startswith(_YAML_TAG_PREFIX) else tag
        shown = f"{short} `{text}`"
    return (
        "KRE 7: error on KRT Yaml parsing: error Unmarshal yaml file: yaml: unmarshal errors:\n"
        f"  line {check.parsed.lines[loc]}: cannot unmarshal {shown} into {go_type}"
    )
