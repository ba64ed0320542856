"""Reading krt.yml with line numbers, and writing it back deterministically."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from krtlab.spec.findings import Location

__all__ = ["ParsedYaml", "YamlSyntaxError", "dump_krt_yml", "parse_yaml"]


class YamlSyntaxError(Exception):
    """krt.yml is not valid YAML (``line`` is 1-based when known)."""

    def __init__(self, message: str, line: int | None) -> None:
        self.message, self.line = message, line
        super().__init__(message)


@dataclass
class ParsedYaml:
    """Plain Python data plus where each value came from.

    ``lines`` maps a YAML path to the 1-based line of its value; ``key_lines`` to the line of its
    key; ``duplicates`` lists paths whose key appears twice in one mapping (yaml.v2 keeps the last);
    ``scalars`` maps the path of each scalar to its resolved tag and its text as written (what
    yaml.v2 puts in a Go string, and shows in its type errors).
    """

    data: Any
    lines: dict[Location, int] = field(default_factory=dict)
    key_lines: dict[Location, int] = field(default_factory=dict)
    duplicates: list[Location] = field(default_factory=list)
    scalars: dict[Location, tuple[str, str]] = field(default_factory=dict)

    def line(self, loc: Location) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that exists."""
        loc = tuple(loc)
        while True:
            if loc in self.key_lines:
                return self.key_lines[loc]
            if loc in self.lines:
                return self.lines[loc]
            if not loc:
                return None
            loc = loc[:-1]


class _Loader(yaml.SafeLoader):
    """SafeLoader (YAML 1.1 like Go's yaml.v2: ``yes``/``no`` are booleans)."""


def parse_yaml(text: str) -> ParsedYaml:
    """Parse krt.yml text keeping line numbers. Raises :class:`YamlSyntaxError`."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlSyntaxError(str(problem), mark.line + 1 if mark else None) from None
    except (ValueError, RecursionError) as exc:  # e.g. absurd nesting
        raise YamlSyntaxError(str(exc) or type(exc).__name__, None) from None
    if len(nodes) > 1:
        raise YamlSyntaxError("krt.yml holds several YAML documents; KRE reads one", None)
    parsed = ParsedYaml(None)
    if not nodes or nodes[0] is None:
        return parsed
    loader = _Loader("")
    try:
        parsed.data = _convert(nodes[0], (), parsed, loader, 0)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(str(getattr(exc, "problem", exc)), line) from None
    except RecursionError:
        raise YamlSyntaxError("krt.yml nests too deeply", None) from None
    return parsed


def _convert(node: yaml.Node, loc: Location, out: ParsedYaml, loader: _Loader, depth: int) -> Any:
    if depth > 64:
        raise YamlSyntaxError("krt.yml nests too deeply", node.start_mark.line + 1)
    out.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                key = str(key)
            sub = (*loc, key if isinstance(key, str) else str(key))
            if key in result:
                out.duplicates.append(sub)
            out.key_lines[sub] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, sub, out, loader, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*loc, i), out, loader, depth + 1) for i, item in enumerate(node.value)
        ]
    out.scalars[loc] = (node.tag, node.value)
    return loader.construct_object(node, deep=True)


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return text.removesuffix("...").strip()


def dump_krt_yml(data: dict[str, Any]) -> str:
    """Render a krt.yml mapping in KRE's conventional layout: block style, keys in the given
    order, lists of nodes/workflows as ``- name: ...`` items. Deterministic, LF newlines."""
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(value: Any, indent: int, lines: list[str], first_prefix: str | None = None) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for i, (key, item) in enumerate(value.items()):
            prefix = first_prefix if (i == 0 and first_prefix is not None) else pad
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{prefix}{key}:")
                _emit(item, indent + 2, lines)
            else:
                lines.append(f"{prefix}{key}: {_scalar(item)}")
        return
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                _emit(item, indent + 2, lines, first_prefix=f"{pad}- ")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return
    lines.append(f"{pad}{_scalar(value)}")
