"""Python ``enum.Enum`` classes as nested proto3 enums."""

from __future__ import annotations

import enum
import re
from typing import Any

from krtlab.errors import MessageTypeError
from krtlab.protos._names import check_ident

__all__ = ["enum_block", "enum_values", "is_enum"]


def is_enum(hint: Any) -> bool:
    """Tell whether ``hint`` is an ``enum.Enum`` subclass (IntEnum and StrEnum included)."""
    return isinstance(hint, type) and issubclass(hint, enum.Enum)


def enum_values(e: type[enum.Enum]) -> list[tuple[str | None, int, str]]:
    """Return (Python member name or None for an added zero, number, proto value name).

    proto3 enums must start with 0. Integer values are kept (they are often meaningful);
    when no member is 0, ``<ENUM>_UNSPECIFIED = 0`` is added first. Non-integer values are
    numbered 1.. in declaration order after that added zero.
    """
    members = list(e)
    if not members:
        raise MessageTypeError(f"Enum {e.__name__} has no members")
    for m in members:
        check_ident(m.name, f"Member {m.name!r} of Enum {e.__name__}")
    values = [m.value for m in members]
    ints = all(type(v) is int and -(2**31) <= v < 2**31 for v in values)
    if ints and 0 in values:
        first = values.index(0)
        order = [members[first], *members[:first], *members[first + 1 :]]
        return [(m.name, m.value, m.name) for m in order]
    zero = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", e.__name__).upper() + "_UNSPECIFIED"
    if zero in e.__members__:
        raise MessageTypeError(f"Enum {e.__name__}: give the member {zero} the value 0")
    numbered = [(m.name, m.value if ints else i, m.name) for i, m in enumerate(members, 1)]
    return [(None, 0, zero), *numbered]


def enum_block(e: type[enum.Enum], indent: str) -> list[str]:
    """Return the lines of the nested ``enum`` block for ``e``, indented by ``indent``."""
    values = enum_values(e)
    lines = [f"{indent}// from Python enum {e.__name__}"]
    if values[0][0] is None:
        lines.append(
            f"{indent}// {values[0][2]} was added: proto3 enums must start with a zero value"
        )
    lines.append(f"{indent}enum {e.__name__} {{")
    lines += [f"{indent}  {proto} = {number};" for _, number, proto in values]
    lines.append(f"{indent}}}")
    return lines
