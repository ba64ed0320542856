"""Values for source capture (internal): which can be written back as source, which must be
refused, and which calls may change an object in place.

* :func:`value_source` writes an expression that re-creates a value exactly, for the types that
  have one: compiled regexes, the ``datetime`` family, ``Decimal``, ``Fraction``, ``UUID``,
  ``pathlib`` paths, enum members, ``functools.partial``, dataclass and namedtuple instances,
  protobuf messages, modest numpy arrays and scalars, ``range``, ``bytearray``, and containers of
  all these. Capture uses it when no single statement made the value (a loop, a ``with`` block,
  ``exec``, a cell gone from history).
* :func:`live_reason` says why an open file, a socket, a generator or another live resource
  cannot travel to the runner, and what to do instead.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import io
import types
from collections.abc import Callable, Sequence
from typing import Any

from krtlab.authoring.handler_py import literal_source

__all__ = ["MAX_ARRAY", "is_builtin", "live_reason", "value_source"]

#: numpy arrays with more elements belong in an asset file, not in main.py
MAX_ARRAY = 10_000
_SCALARS = (type(None), bool, int, float, complex, str, bytes)

#: names an object that ``value_source`` may use: a class, function or module -> expression,
#: registering whatever import or definition it needs; None when it cannot be named
Namer = Callable[[Any], "str | None"]


def _kind(value: Any) -> str:
    t = type(value)
    return f"{t.__module__}.{t.__qualname__}"


def value_source(value: Any, namer: Namer, *, width: int = 100) -> str | None:
    """An expression that re-creates ``value`` exactly, or None when there is none."""
    try:
        return _src(value, namer, 0, width)
    except (RecursionError, ValueError, TypeError, AttributeError):
        return None


def _src(value: Any, namer: Namer, depth: int, width: int = 100) -> str | None:
    if depth > 30:
        return None
    if isinstance(value, _Raw):
        return str(value)
    kind = type(value)
    if kind in _SCALARS:
        return literal_source(value)
    if kind in (list, tuple, set, frozenset, dict):
        return _container(value, namer, depth, width)
    if kind is range:
        return f"range({value.start}, {value.stop}, {value.step})"
    if kind is bytearray:
        return f"bytearray({literal_source(bytes(value))})"
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType)):
        return namer(value)
    full = _kind(value)
    maker = _MAKERS.get(full)
    if maker is not None:
        return maker(value, namer, depth)
    if isinstance(value, enum.Enum):
        cls = namer(kind)
        if cls is None:
            return None
        name = value._name_
        if isinstance(name, str) and name.isidentifier() and getattr(kind, name, None) is value:
            return f"{cls}.{name}"
        inner = _src(value._value_, namer, depth + 1)
        return f"{cls}({inner})" if inner is not None else None
    if kind.__module__ == "numpy" or kind.__module__.startswith("numpy."):
        return _numpy(value, namer)
    if _is_message(value):
        cls = namer(kind)
        data = value.SerializeToString(deterministic=True)
        return f"{cls}.FromString({literal_source(data)})" if cls else None
    if dataclasses.is_dataclass(value):
        return _dataclass(value, namer, depth)
    if isinstance(value, tuple) and isinstance(getattr(kind, "_fields", None), tuple):
        return _call(namer(kind), [], dict(zip(kind._fields, value, strict=True)), namer, depth)
    return None


def _container(value: Any, namer: Namer, depth: int, width: int) -> str | None:
    kind = type(value)
    if kind is dict:
        pairs = [(_src(k, namer, depth + 1), _src(v, namer, depth + 1)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        items = [f"{k}: {v}" for k, v in pairs]
    else:
        texts = [_src(v, namer, depth + 1) for v in value]
        if any(t is None for t in texts):
            return None
        written = [t for t in texts if t is not None]
        items = sorted(written) if kind in (set, frozenset) else written
    if not items and kind in (set, frozenset):
        return f"{kind.__name__}()"
    brackets: dict[type, Sequence[str]] = {list: "[]", tuple: "()", set: "{}", dict: "{}"}
    opener, closer = brackets.get(kind, ("frozenset({", "})"))
    comma = "," if kind is tuple and len(items) == 1 else ""
    one = opener + ", ".join(items) + comma + closer
    if len(one) <= width and "\n" not in one:
        return one
    body = "".join(f"    {item.replace(chr(10), chr(10) + '    ')},\n" for item in items)
    return f"{opener}\n{body}{closer}"


def _call(func: str | None, args: list[Any], kwargs: dict[str, Any], namer: Namer,
          depth: int) -> str | None:  # fmt: skip
    if func is None:
        return None
    parts = [_src(a, namer, depth + 1) for a in args]
    parts += [
        f"{k}={t}" if k.isidentifier() and t is not None else None
        for k, t in ((k, _src(v, namer, depth + 1)) for k, v in kwargs.items())
    ]
    if None in parts:
        return None
    return f"{func}({', '.join(parts)})"  # type: ignore[arg-type]


# -- standard-library types ---------------------------------------------------------------------


def _pattern(value: Any, namer: Namer, depth: int) -> str | None:
    import re

    module = namer(re)
    if module is None:
        return None
    flags = value.flags & ~(re.UNICODE if isinstance(value.pattern, str) else 0)
    names = [f"{module}.{f.name}" for f in re.RegexFlag if f.name and flags & f.value == f.value
             and f.value and bin(f.value).count("1") == 1]  # fmt: skip
    args = [literal_source(value.pattern)]
    if names:
        args.append(" | ".join(names))
    return f"{module}.compile({', '.join(args)})"  # type: ignore[arg-type]


def _trimmed(values: list[int], keep: int) -> list[int]:
    while len(values) > keep and values[-1] == 0:
        values.pop()
    return values


def _tz(value: Any, namer: Namer, depth: int) -> str | None:
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, dt.timezone):
        cls = namer(dt.timezone)
        if cls is None:
            return None
        if value == dt.timezone.utc:
            return f"{cls}.utc"
        offset = value.utcoffset(None)
        delta = _timedelta(offset, namer, depth)
        if delta is None:
            return None
        name = value.tzname(None)
        default = dt.timezone(offset).tzname(None)
        return f"{cls}({delta})" if name == default else f"{cls}({delta}, {literal_source(name)})"
    if _kind(value) == "zoneinfo.ZoneInfo" and isinstance(getattr(value, "key", None), str):
        cls = namer(type(value))
        return f"{cls}({literal_source(value.key)})" if cls else None
    return None


def _date(value: Any, namer: Namer, depth: int) -> str | None:
    cls = namer(type(value))
    return f"{cls}({value.year}, {value.month}, {value.day})" if cls else None


def _datetime(value: Any, namer: Namer, depth: int) -> str | None:
    cls = namer(type(value))
    if cls is None:
        return None
    parts = [value.year, value.month, value.day, value.hour, value.minute, value.second]
    args = [str(n) for n in _trimmed([*parts, value.microsecond], 3)]
    return _with_tz(cls, args, value, namer, depth)


def _time(value: Any, namer: Namer, depth: int) -> str | None:
    cls = namer(type(value))
    if cls is None:
        return None
    parts = [value.hour, value.minute, value.second, value.microsecond]
    return _with_tz(cls, [str(n) for n in _trimmed(parts, 1)], value, namer, depth)


def _with_tz(cls: str, args: list[str], value: Any, namer: Namer, depth: int) -> str | None:
    if value.tzinfo is not None:
        tz = _tz(value.tzinfo, namer, depth)
        if tz is None:
            return None
        args.append(f"tzinfo={tz}")
    if value.fold:
        args.append("fold=1")
    return f"{cls}({', '.join(args)})"


def _timedelta(value: Any, namer: Namer, depth: int) -> str | None:
    cls = namer(type(value))
    if cls is None:
        return None
    parts = [("days", value.days), ("seconds", value.seconds), ("microseconds", value.microseconds)]
    args = [f"{k}={v}" for k, v in parts if v]
    return f"{cls}({', '.join(args) or '0'})"


def _decimal(value: Any, namer: Namer, depth: int) -> str | None:
    cls = namer(type(value))
    return f"{cls}({literal_source(str(value))})" if cls else None


def _fraction(value: Any, namer: Namer, depth: int) -> str | None:
    cls = namer(type(value))
    return f"{cls}({value.numerator}, {value.denominator})" if cls else None


def _uuid(value: Any, namer: Namer, depth: int) -> str | None:
    cls = namer(type(value))
    return f"{cls}({literal_source(str(value))})" if cls else None


def _path(value: Any, namer: Namer, depth: int) -> str | None:
    import pathlib

    kind = pathlib.Path if type(value) is type(pathlib.Path()) else type(value)
    cls = namer(kind)
    return f"{cls}({literal_source(str(value))})" if cls else None


def _partial(value: Any, namer: Namer, depth: int) -> str | None:
    if type(value).__dict__.get("__module__") != "functools" or vars(value):
        return None  # a subclass, or attributes set on it
    func = _src(value.func, namer, depth + 1)
    if func is None:
        return None
    return _call(namer(type(value)), [_Raw(func), *value.args], dict(value.keywords), namer, depth)


class _Raw(str):
    """Already an expression (a name)."""


_MAKERS: dict[str, Callable[[Any, Namer, int], str | None]] = {
    "re.Pattern": _pattern,
    "datetime.date": _date,
    "datetime.datetime": _datetime,
    "datetime.time": _time,
    "datetime.timedelta": _timedelta,
    "datetime.timezone": _tz,
    "zoneinfo.ZoneInfo": _tz,
    "decimal.Decimal": _decimal,
    "fractions.Fraction": _fraction,
    "uuid.UUID": _uuid,
    "pathlib.PosixPath": _path,
    "pathlib.WindowsPath": _path,
    "pathlib.PurePosixPath": _path,
    "pathlib.PureWindowsPath": _path,
    "pathlib._local.PosixPath": _path,  # Python 3.13
    "pathlib._local.WindowsPath": _path,
    "pathlib._local.PurePosixPath": _path,
    "pathlib._local.PureWindowsPath": _path,
    "functools.partial": _partial,
}


def _is_message(value: Any) -> bool:
    try:
        return callable(getattr(value, "SerializeToString", None)) and hasattr(
            type(value), "DESCRIPTOR"
        )
    except Exception:
        return False


def _numpy(value: Any, namer: Namer) -> str | None:
    import numpy as np  # only reached for numpy values, so numpy is there

    if type(value) is np.ndarray:
        dtype = value.dtype
        if dtype.fields is not None or dtype.kind not in "biufcSU" or value.size > MAX_ARRAY:
            return None
        module = namer(np)
        if module is None:
            return None
        name = dtype.str if dtype.kind in "SU" else dtype.name  # "<U5", "float64"
        if value.size == 0:
            return f"{module}.empty({value.shape!r}, dtype={literal_source(name)})"
        data = literal_source(value.tolist(), width=10**9)
        if data is None:
            return None
        return f"{module}.array({data}, dtype={literal_source(name)})"
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        cls = namer(type(value))
        inner = literal_source(value.item())
        return f"{cls}({inner})" if cls and inner else None
    return None


def _dataclass(value: Any, namer: Namer, depth: int) -> str | None:
    kind = type(value)
    fields = dataclasses.fields(value)
    if any(not f.init for f in fields):
        return None  # set by __post_init__ or a default: re-running __init__ may differ
    extra = set(getattr(value, "__dict__", {})) - {f.name for f in fields}
    if extra:
        return None  # attributes added after __init__
    kwargs = {f.name: getattr(value, f.name) for f in fields}
    return _call(namer(kind), [], kwargs, namer, depth)


# -- what cannot travel -------------------------------------------------------------------------

_LIVE_MODULES = ("socket", "_socket", "ssl", "sqlite3", "subprocess", "threading", "_thread",
                 "multiprocessing", "mmap", "selectors", "asyncio", "concurrent.futures",
                 "http.client", "urllib3", "requests.sessions", "psycopg2", "pymongo")  # fmt: skip


def live_reason(value: Any) -> str | None:
    """Why ``value`` cannot be re-created on the runner at all (with what to do), or None."""
    if isinstance(value, io.IOBase) or _kind(value).startswith("tempfile."):
        return (
            "it is an open file; open it inside the function, or attach the file with "
            "v.asset(...) and open ctx.path(...) in init(ctx)"
        )
    if isinstance(value, (types.GeneratorType, types.AsyncGeneratorType, types.CoroutineType)):
        return (
            f"it is a {type(value).__name__}: on the runner it would start again from the "
            "beginning, not where the notebook left it; make a list of it (list(...)) or "
            "create it inside the function"
        )
    module = type(value).__module__ or ""
    if any(module == m or module.startswith(m + ".") for m in _LIVE_MODULES):
        return (
            f"it is a live {_kind(value)} (a connection, process, thread or lock), which "
            "cannot be copied into code; create it in init(ctx) and keep it with ctx.set(...)"
        )
    try:
        is_iterator = hasattr(type(value), "__next__") and iter(value) is value
    except Exception:
        is_iterator = False
    if is_iterator:
        return (
            f"it is an iterator ({_kind(value)}), perhaps partly consumed; make a list of it "
            "(list(...)) or create it inside the function"
        )
    return None


def is_builtin(value: Any) -> str | None:
    """The builtin's name when ``value`` is one (``round``), else None."""
    name = getattr(value, "__name__", None)
    return name if isinstance(name, str) and getattr(builtins, name, None) is value else None
