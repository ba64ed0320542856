"""Small naming helpers shared by the proto modules."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from krtlab.errors import MessageTypeError
from krtlab.spec.suggest import did_you_mean

__all__ = ["check_ident", "close_matches", "module_stem"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def close_matches(name: str, candidates: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" (up to 3 suggestions) or "" when nothing is close: the
    sentence form of :func:`krtlab.spec.suggest.did_you_mean`, to append to a message."""
    hint = did_you_mean(name, candidates)
    return f" D{hint[1:]}" if hint else ""


def module_stem(proto_file: str) -> str:
    """Return the Python module name generated for a proto file: ``a/b-c.proto`` -> ``b_c_pb2``.

    Only the base name counts (KRT node folders are flat: the ``_pb2.py`` files sit next to
    ``main.py``); ``-`` becomes ``_`` as protoc does, so the result is importable.
    """
    stem = os.path.basename(proto_file)
    if stem.endswith(".proto"):
        stem = stem[: -len(".proto")]
    return stem.replace("-", "_") + "_pb2"


def check_ident(name: str, what: str) -> None:
    """Raise MessageTypeError unless ``name`` is an ASCII proto identifier."""
    if not _IDENT.fullmatch(name):
        raise MessageTypeError(
            f"{what} is not a proto identifier: use ASCII letters, digits and _ "
            "(snake_case for fields)"
        )
