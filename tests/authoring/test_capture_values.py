"""Values written back as source, values refused, and which later calls change an object."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import io
import logging
import pathlib
import re
import socket
import threading
import uuid
from collections import namedtuple
from decimal import Decimal
from fractions import Fraction
from types import ModuleType
from typing import NamedTuple

import numpy as np
import pytest

from krtlab.authoring.capture_changes import may_change
from krtlab.authoring.capture_history import Change
from krtlab.authoring.capture_values import MAX_ARRAY, live_reason, value_source


class Tier(enum.Enum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Settings:
    tier: Tier = Tier.LOW
    scale: float = 1.0
    tags: tuple = ()


@dataclasses.dataclass
class Derived:
    a: int
    b: int = dataclasses.field(init=False, default=0)


Pair = namedtuple("Pair", "word count")


class Point(NamedTuple):
    x: float
    y: float = 0.0


def scale(x, k=1):
    return x * k


def roundtrip(value):
    """value -> source -> value, with the names the source needs in a fresh namespace."""
    namespace: dict = {}

    def namer(obj):
        if isinstance(obj, ModuleType):
            name = "np" if obj.__name__ == "numpy" else obj.__name__
        else:
            name = obj.__name__
        namespace[name] = obj
        return name

    text = value_source(value, namer)
    assert text is not None, value
    return text, eval(text, {"__builtins__": __builtins__, **namespace})


@pytest.mark.parametrize(
    "value",
    [
        re.compile(r"[a-z]+"),
        re.compile(rb"\d+", re.IGNORECASE | re.MULTILINE),
        dt.date(2024, 1, 1),
        dt.datetime(2024, 2, 3, 4, 5, 6, 7),
        dt.datetime(2024, 2, 3, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 2, 3, 1, tzinfo=dt.timezone(dt.timedelta(hours=2), "CEST")),
        dt.time(12, 30),
        dt.time(0, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.timedelta(days=3, seconds=5, microseconds=7),
        dt.timedelta(0),
        Decimal("0.125"),
        Decimal("-0"),
        Decimal("NaN"),
        Fraction(1, 3),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        pathlib.Path("/data/models"),
        pathlib.PurePosixPath("a/b"),
        pathlib.PureWindowsPath(r"C:\data"),
        Tier.HIGH,
        functools.partial(round, ndigits=2),
        functools.partial(scale, 3, k=2),
        Settings(tier=Tier.HIGH, tags=(re.compile("x"),)),
        Pair("the", 2),
        Point(1.5),
        np.array([0.5, 0.25, 0.25]),
        np.array([[1, 2], [3, 4]], dtype=np.int16),
        np.array(["ab", "c"]),
        np.array([np.nan, np.inf]),
        np.zeros((0, 3)),
        np.float32(0.1),
        np.int64(7),
        range(1, 10, 2),
        bytearray(b"\x00ab"),
        {"when": dt.date(2024, 1, 1), "rates": [Decimal("1.5")], "kinds": {Tier.LOW}},
    ],
    ids=repr,
)
def test_values_with_an_exact_source_form_round_trip(value):
    text, back = roundtrip(value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape
        assert np.array_equal(back, value, equal_nan=value.dtype.kind == "f"), text
    elif isinstance(value, Decimal) and value.is_nan():
        assert back.is_nan()
    elif isinstance(value, functools.partial):
        assert (back.func, back.args, back.keywords) == (value.func, value.args, value.keywords)
    else:
        assert back == value and type(back) is type(value), text
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            assert back.tzinfo.tzname(None) == value.tzinfo.tzname(None)


def test_sources_read_like_code():
    text, _ = roundtrip(re.compile(r"[a-z]+", re.IGNORECASE))
    assert text == 're.compile("[a-z]+", re.IGNORECASE)'
    assert roundtrip(dt.timedelta(days=3))[0] == "timedelta(days=3)"
    assert roundtrip(Settings(tier=Tier.HIGH))[0] == "Settings(tier=Tier.HIGH, scale=1.0, tags=())"
    assert roundtrip(np.array([1.0, 2.0]))[0] == 'np.array([1.0, 2.0], dtype="float64")'


def test_arrays_are_written_back_up_to_the_limit_only():
    assert roundtrip(np.zeros(MAX_ARRAY))[1].shape == (MAX_ARRAY,)
    assert value_source(np.zeros(MAX_ARRAY + 1), lambda o: "np") is None
    assert value_source(np.array([object()]), lambda o: "np") is None  # object arrays
    structured = np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])
    assert value_source(structured, lambda o: "np") is None


def test_what_has_no_exact_form_is_none():
    namer = lambda o: getattr(o, "__name__", None)  # noqa: E731
    assert value_source(Derived(1), namer) is None  # a field set outside __init__
    extra = Settings()
    extra.note = "added later"
    assert value_source(extra, namer) is None
    assert value_source(object(), namer) is None
    assert value_source([1, object()], namer) is None
    assert value_source(dt.datetime(2024, 1, 1, tzinfo=_OddZone()), namer) is None
    assert value_source(Tier.LOW, lambda o: None) is None  # the class cannot be named


class _OddZone(dt.tzinfo):
    def utcoffset(self, d):
        return dt.timedelta(0)


def test_live_objects_are_refused_with_what_to_do(tmp_path):
    with open(tmp_path / "f.txt", "w") as f:
        assert "open file" in live_reason(f) and "ctx.path(" in live_reason(f)
    assert "open file" in live_reason(io.StringIO())
    sock = socket.socket()
    try:
        assert "live socket.socket" in live_reason(sock) and "init(ctx)" in live_reason(sock)
    finally:
        sock.close()
    assert "generator" in live_reason(x for x in [1])
    assert "iterator" in live_reason(iter([1, 2])) and "list(...)" in live_reason(iter([1]))
    assert "live" in live_reason(threading.Lock())
    for fine in (1, "x", [1], re.compile("x"), Settings(), np.zeros(2), logging.getLogger("x")):
        assert live_reason(fine) is None


class Counter:
    def __init__(self):
        self.n = 0
        self.seen = []

    def add(self, x):
        self.n += x

    def remember(self, x):
        self.seen.append(x)

    def bump(self):
        self.add(1)

    def peek(self):
        return self.n


def _call(method, *, path=(), shown=False, discarded=True, inplace=False):
    return Change("call", None, 1, tuple(path), method, frozenset(), inplace, shown, discarded)


def own(cls):
    import ast
    import inspect
    import textwrap

    return ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0] if cls is Counter else None


@pytest.mark.parametrize(
    ("value", "change", "changes"),
    [
        (Counter(), Change("store", None, 1, ("n",)), True),
        (Counter(), _call("add"), True),
        (Counter(), _call("remember"), True),  # self.seen.append(...)
        (Counter(), _call("bump"), True),  # through another method
        (Counter(), _call("peek"), False),
        (Counter(), _call("peek", inplace=True), True),
        (logging.getLogger("t"), _call("info"), False),
        (logging.getLogger("t"), _call("setLevel"), True),
        ([1], _call("append"), True),
        ([1], _call("count"), False),
        ({}, _call("update"), True),
        (re.compile("x"), _call("sub"), False),
        (dt.date(2024, 1, 1), _call("replace"), False),
        (np.zeros(2), _call("sort"), True),
        (np.zeros(2), _call("sum"), False),
        (Settings(), _call("append", path=("tags",)), False),  # a tuple attribute
        (object(), _call("fit"), True),  # a name that changes things
        (object(), _call("predict"), False),  # a name that reads
        (object(), _call("frobnicate"), True),  # unknown, result thrown away
        (object(), _call("frobnicate", shown=True), False),  # unknown, shown as a cell's output
        (object(), _call("frobnicate", discarded=False), False),  # its result is used
    ],
)
def test_which_later_statements_change_an_object(value, change, changes):
    assert may_change(value, change, own) is changes
