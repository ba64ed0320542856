"""Reading krt.yml with line numbers, and writing it back deterministically."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from krtlab.errors import YamlSyntaxError  # defined there; re-exported here
from krtlab.spec.findings import Location
from krtlab.spec.model import GO_TYPES

__all__ = ["MAX_ALIASED_VALUES", "ParsedYaml", "YamlSyntaxError", "dump_krt_yml", "parse_yaml"]


@dataclass
class ParsedYaml:
    """Plain Python data plus where each value came from.

    ``lines`` maps a YAML path to the 1-based line of its value; ``key_lines`` to the line of its
    key; ``duplicates`` lists paths whose key appears twice in one mapping (yaml.v2 keeps the last);
    ``scalars`` maps the path of each scalar to its resolved tag and its text as written (what
    yaml.v2 puts in a Go string, and shows in its type errors).

    Where KRE's struct has a Go string (:data:`~krtlab.spec.model.GO_TYPES`), ``data`` holds the
    scalar's text as written, whatever YAML resolves it to (``1.10``, ``0x1F``, ``2023-01-01``,
    a 5,000-digit number: yaml.v2 copies the text); elsewhere the YAML 1.1 value. A value reached
    through an alias is the same object as its anchor's.
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


#: Values krtlab reads through aliases before it gives up on a krt.yml (a real one has hundreds
#: of values; a 380-byte "billion laughs" expands to billions).
MAX_ALIASED_VALUES = 100_000
_MAX_DEPTH = 64
_TOO_DEEP = f"krt.yml nests deeper than {_MAX_DEPTH} levels"


class _Loader(yaml.SafeLoader):
    """SafeLoader (YAML 1.1 like Go's yaml.v2: ``yes``/``no`` are booleans) that stops at
    absurd nesting while scanning (PyYAML's scanner takes quadratic time in flow levels)."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= _MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, _TOO_DEEP, self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= _MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, _TOO_DEEP, self.get_mark())
        return super().add_indent(column)


_CORE = "tag:yaml.org,2002:"
_CONSTRUCTED = {_CORE + t for t in ("bool", "int", "float", "str", "timestamp", "binary")}
# Longer numbers keep their text: Python's int() refuses over 4,300 digits, and a YAML 1.1
# sexagesimal int (1:00:00:...) costs quadratic time.
_NUMBERS, _LONGEST_NUMBER = {_CORE + t for t in ("int", "float", "timestamp")}, 1000
# What may go wrong turning hostile scalar text into a value (a 5,000-digit int, 2023-13-45,
# `!!bool x`: a KeyError in PyYAML).
_SCALAR_ERRORS = (
    yaml.YAMLError, ValueError, OverflowError, TypeError, ArithmeticError, LookupError
)  # fmt: skip
_TOO_LARGE = (
    f"krt.yml expands to more than {MAX_ALIASED_VALUES:,} values through its YAML aliases, so "
    "krtlab stops reading it (KRE's yaml.v2 refuses a krt.yml whose fields it reads are mostly "
    'alias expansions: "yaml: document contains excessive aliasing")'
)


def parse_yaml(text: str) -> ParsedYaml:
    """Parse krt.yml text keeping line numbers. Raises :class:`YamlSyntaxError`.

    The cost is bounded by the text's size: each YAML node is converted once, and aliases may
    add at most :data:`MAX_ALIASED_VALUES` values (``yaml.too_large`` beyond).
    """
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line = mark.line + 1 if mark else None
        if line is None and isinstance(getattr(exc, "position", None), int):  # a ReaderError
            line = text.count("\n", 0, exc.position) + 1  # type: ignore[attr-defined]
        raise YamlSyntaxError(str(problem), line) from None
    except RecursionError:
        raise YamlSyntaxError(_TOO_DEEP, None) from None
    except ValueError as exc:
        raise YamlSyntaxError(str(exc) or type(exc).__name__, None) from None
    if len(nodes) > 1:
        raise YamlSyntaxError("krt.yml holds several YAML documents; KRE reads one", None)
    parsed = ParsedYaml(None)
    if not nodes or nodes[0] is None:
        return parsed
    try:
        parsed.data = _Reader(parsed, text).walk(nodes[0], (), (), 0)
    except RecursionError:
        raise YamlSyntaxError(_TOO_DEEP, None) from None
    return parsed


class _Reader:
    """Composed YAML nodes to data, as yaml.v2 decodes them: merge keys applied where they
    stand, scalars of Go strings kept as written, tags it does not know keep the text.

    Every path is recorded (lines, scalars), also through aliases, and counted there; the values
    themselves are built once per node and place in KRE's struct (``pos``, a
    :data:`~krtlab.spec.model.GO_TYPES` key, or None outside it)."""

    def __init__(self, out: ParsedYaml, text: str) -> None:
        self.out, self.text = out, text
        self.seen: set[int] = set()  # nodes met so far: meeting one again is through an alias
        self.active: dict[int, Any] = {}  # containers being filled: an alias to one recurses
        self.built: dict[tuple[int, Any], Any] = {}
        self.aliased = 0
        self.constructor = _Loader("")

    def walk(
        self, node: yaml.Node, loc: Location, pos: Any, depth: int, via_alias: bool = False
    ) -> Any:
        line = node.start_mark.line + 1
        if depth > _MAX_DEPTH:
            raise YamlSyntaxError(_TOO_DEEP, line)
        nid = id(node)
        if nid in self.seen:
            via_alias = True
        self.seen.add(nid)
        if via_alias:
            self.count(loc)
        self.out.lines[loc] = line
        if isinstance(node, yaml.ScalarNode):
            self.out.scalars[loc] = (node.tag, node.value)
            return self.scalar(node, pos)
        if nid in self.active:  # an alias inside its own anchor's value
            return self.active[nid]
        built = self.built.get((nid, pos))
        container: Any = {} if isinstance(node, yaml.MappingNode) else []
        self.active[nid] = container
        try:
            if isinstance(node, yaml.MappingNode):
                self.mapping(node, loc, pos, depth, via_alias, container)
            else:
                for i, item in enumerate(node.value):
                    value = self.walk(item, (*loc, i), _child(pos, "#"), depth + 1, via_alias)
                    if built is None:
                        container.append(value)
        finally:
            del self.active[nid]
        if built is None:
            built = self.built[(nid, pos)] = container
        return built

    def mapping(
        self, node: yaml.MappingNode, loc: Location, pos: Any, depth: int, via_alias: bool,
        into: dict[Any, Any],
    ) -> None:  # fmt: skip
        written: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge" and key_node.value == "<<":
                self.merge(value_node, loc, pos, depth, into)
                continue
            key = self.key(key_node)
            sub = (*loc, key)
            if key in written and not via_alias:
                self.out.duplicates.append(sub)
            written.add(key)
            self.out.key_lines[sub] = key_node.start_mark.line + 1
            into[key] = self.walk(value_node, sub, _child(pos, key), depth + 1, via_alias)

    def merge(
        self, value: yaml.Node, loc: Location, pos: Any, depth: int, into: dict[Any, Any]
    ) -> None:
        """yaml.v2's ``<<``: the mapping's keys set here, over what is set already; of a list
        of mappings, the first wins (yaml.v2 applies them last to first)."""
        if isinstance(value, yaml.MappingNode):
            sources = [value]
        elif isinstance(value, yaml.SequenceNode) and all(
            isinstance(v, yaml.MappingNode) for v in value.value
        ):
            sources = list(reversed(value.value))
        else:  # yaml.v2's words (decode.go failWantMap)
            line = value.start_mark.line + 1
            raise YamlSyntaxError("map merge requires map or sequence of maps as the value", line)
        for source in sources:
            nid = id(source)
            if nid in self.active:  # merging a mapping into itself
                continue
            via_alias = nid in self.seen
            self.seen.add(nid)
            if via_alias:
                self.count(loc)
            self.active[nid] = into
            try:
                self.mapping(source, loc, pos, depth + 1, via_alias, into)
            finally:
                del self.active[nid]

    def count(self, loc: Location) -> None:
        """One more value read through an alias; too many is ``yaml.too_large``."""
        self.aliased += 1
        if self.aliased > MAX_ALIASED_VALUES:  # located at the key it happens under
            while loc and loc not in self.out.key_lines:
                loc = loc[:-1]
            raise YamlSyntaxError(_TOO_LARGE, self.out.key_lines.get(loc), "yaml.too_large")

    def key(self, node: yaml.Node) -> str:
        """A key as yaml.v2 matches it against struct fields: its text (a list or mapping as
        a key is shown as written, shortened)."""
        if isinstance(node, yaml.ScalarNode):
            text: str = node.value
            return text
        written = " ".join(self.text[node.start_mark.index : node.end_mark.index].split())
        return written if len(written) <= 40 else written[:39] + "…"

    def scalar(self, node: yaml.ScalarNode, pos: Any) -> Any:
        if node.tag == _CORE + "null":
            return None
        if GO_TYPES.get(pos) == "string":  # yaml.v2 copies the text into a Go string
            if node.tag == _CORE + "binary":
                try:
                    return self.constructor.construct_object(node).decode("utf-8", "replace")
                except _SCALAR_ERRORS:
                    pass
            return node.value
        if node.tag not in _CONSTRUCTED:  # yaml.v2 keeps the text of a tag it does not resolve
            return node.value
        if node.tag in _NUMBERS and len(node.value) > _LONGEST_NUMBER:
            return node.value
        try:
            return self.constructor.construct_object(node)
        except _SCALAR_ERRORS:  # the text stays (yaml.v2 shows it in its type errors)
            return node.value


def _child(pos: Any, key: Any) -> Any:
    if pos is None:
        return None
    sub = (*pos, key)
    return sub if sub in GO_TYPES else None


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=sys.maxsize, allow_unicode=True)
    return text.rstrip().removesuffix("\n...")  # a plain scalar's document end marker


def dump_krt_yml(data: dict[str, Any]) -> str:
    """Render a krt.yml mapping in KRE's conventional layout: block style, keys in the given
    order, lists of nodes/workflows as ``- name: ...`` items. Deterministic, LF newlines."""
    lines: list[str] = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


def _emit(
    value: dict[str, Any] | list[Any],
    indent: int,
    lines: list[str],
    first_prefix: str | None = None,
) -> None:
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
    for item in value:
        if isinstance(item, dict) and item:
            _emit(item, indent + 2, lines, first_prefix=f"{pad}- ")
        else:
            lines.append(f"{pad}- {_scalar(item)}")
