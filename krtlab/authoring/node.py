"""Nodes: a Python function (or a Go binary, or a loaded ``src``) with its KRT settings."""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from krtlab.errors import SpecError
from krtlab.spec.facts import NodeContract
from krtlab.spec.model import NodeSpec
from krtlab.spec.rules import check_resource_name, to_resource_name

if TYPE_CHECKING:
    from google.protobuf.message import Message

__all__ = ["Node", "check_name", "is_message_class"]


def is_message_class(obj: Any) -> TypeGuard[type[Message]]:
    """A generated protobuf message class (from ``v.proto()``, ``@v.message`` or a ``_pb2``)."""
    desc = getattr(obj, "DESCRIPTOR", None)
    return (
        isinstance(obj, type)
        and desc is not None
        and hasattr(desc, "full_name")
        and hasattr(desc, "fields")
    )


def check_name(name: str, what: str) -> str:
    """Raise :class:`SpecError` now, not at deploy time, when ``name`` breaks KRE's rules."""
    if not isinstance(name, str) or not name:
        raise SpecError(f"{what} must be a non-empty string, got {name!r}")
    reason = check_resource_name(name)
    if reason:
        raise SpecError(f"{what} {name!r} {reason}; try {to_resource_name(name)!r}")
    return name


def _contract_types(
    func: Callable[..., Any], node: str
) -> tuple[int, type[Message] | None, type[Message] | None]:
    """(number of parameters, input class, output class) from the signature and type hints."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"node {node!r}: cannot read the signature of {func!r}: {exc}") from None
    params = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(params) not in (1, 2):
        raise SpecError(
            f"node {node!r}: {func.__name__}{sig} must take (ctx, request) or (request); "
            "KRE passes one message per call"
        )
    hints = _type_hints(func, node)
    inp = hints.get(params[-1].name)
    out = hints.get("return")
    for label, t in (("input", inp), ("output", out)):
        if t is not None and not isinstance(t, str) and not is_message_class(t):
            raise SpecError(
                f"node {node!r}: the {label} type of {func.__name__} is {t!r}; it must be a "
                "protobuf message class (from v.proto(...) or @v.message)"
            )
    return (
        len(params),
        (inp if is_message_class(inp) else None),
        (out if is_message_class(out) else None),
    )


def _type_hints(func: Callable[..., Any], node: str) -> dict[str, Any]:
    """Type hints, resolving string ones (``from __future__ import annotations``) against the
    function's globals and the variables it closes over (a node defined inside a function)."""
    local: dict[str, Any] = {}
    closure = getattr(func, "__closure__", None) or ()
    for name, cell in zip(func.__code__.co_freevars, closure, strict=False):
        try:
            local[name] = cell.cell_contents
        except ValueError:  # an empty cell: the variable is not assigned yet
            continue
    try:
        return typing.get_type_hints(func, localns=local)
    except NameError as exc:
        raise SpecError(
            f"node {node!r}: cannot resolve a type hint of {func.__name__}: {exc}; use message "
            "classes visible where the function is defined"
        ) from None
    except Exception:  # exotic annotations: keep whatever is not a string
        raw = dict(getattr(func, "__annotations__", {}))
        return {k: v for k, v in raw.items() if not isinstance(v, str)}


class Node:
    """One node of a version.

    Authored Python nodes wrap a function: calling the node calls the function, so it stays
    testable in the notebook (``greet(ctx, pb.Request(name="x"))``). Go nodes point at a compiled
    binary; loaded nodes carry their ``src`` file as it is.
    """

    __krt_node__ = True

    def __init__(
        self,
        name: str,
        *,
        func: Callable[..., Any] | None = None,
        image: str,
        gpu: bool = False,
        src: str | None = None,
        source: bytes | None = None,
        input_type: type[Message] | None = None,
        output_type: type[Message] | None = None,
        executable: bool = False,
    ) -> None:
        self.name = name
        self.image = image
        self.gpu = bool(gpu)
        self.func = func
        self.init_func: Callable[..., Any] | None = None
        self.source = source  # file content for Go binaries and loaded nodes
        self.executable = executable
        self.takes_ctx = True
        self.input_type, self.output_type = input_type, output_type
        if func is not None:
            n, inp, out = _contract_types(func, name)
            self.takes_ctx = n == 2
            self.input_type, self.output_type = inp, out
            self.__wrapped__ = func
            self.__doc__ = func.__doc__
        self.src = src or f"src/{name}/main.py"
        self.requirements: tuple[str, ...] = ()  # packages beyond the stock image
        self.runner: str | None = None  # the stock kre-py image its code runs on

    # -- notebook ergonomics -------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.func is None:
            raise SpecError(f"node {self.name!r} has no Python function to call (src {self.src})")
        return self.func(*args, **kwargs)

    def init(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: run ``fn(ctx)`` once when the node starts (kre-py's ``init``)."""
        try:
            params = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            params = 1
        if params != 1:
            raise SpecError(f"node {self.name!r}: init function {fn.__name__} must take (ctx)")
        self.init_func = fn
        return fn

    @property
    def is_async(self) -> bool:
        return self.func is not None and inspect.iscoroutinefunction(self.func)

    @property
    def kind(self) -> str:
        """``"python"`` or ``"go"``."""
        return self.spec.runtime

    @property
    def spec(self) -> NodeSpec:
        return NodeSpec(self.name, self.image, self.src, self.gpu)

    @property
    def contract(self) -> NodeContract | None:
        """The message types from hints (or declared for Go nodes), when known."""
        if self.input_type is None and self.output_type is None and self.func is None:
            return None
        return NodeContract(
            _full(self.input_type),
            _full(self.output_type),
            "hints" if self.func is not None else "declared",
        )

    def __repr__(self) -> str:
        extra = ", gpu=True" if self.gpu else ""
        what = f"func={self.func.__name__}" if self.func else f"src={self.src!r}"
        return f"Node({self.name!r}, image={self.image!r}, {what}{extra})"

    def __str__(self) -> str:
        i = self.input_type.__name__ if self.input_type else "?"
        o = self.output_type.__name__ if self.output_type else "?"
        return f"{self.name}({i}) -> {o}"


def _full(t: type[Message] | None) -> str | None:
    return t.DESCRIPTOR.full_name if t is not None else None


def read_binary(path: str | os.PathLike[str], node: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SpecError(f"Go node {node!r}: cannot read binary {path}: {exc.strerror}") from None
