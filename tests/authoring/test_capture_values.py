"""Values written back as source, values refused, and which later calls change an object."""

from __future__ import annotations

import collections
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


def stable_id(value) -> str:
    """A test id without memory addresses (``<function f at 0x...>``), the same in every run:
    mutmut selects tests by id from one process to another."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


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
    ids=stable_id,
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


class Base:
    def tally(self, x):
        self.n = x

    def ping(self):
        self.pong()

    def pong(self):
        self.ping()


class Child(Base):  # a class of the notebook's whose methods are in its base
    def look(self, items, box):
        items.append(1)  # changes the argument, not self
        box.v = 1
        a, b = self.n, str(1).strip()
        return a, b

    def bump(self):
        self.tally(1)  # through another method whose name says nothing

    def flip(self):
        self.items.reverse()

    def train_on(self, x):
        self.model.fit(x)

    def tweak(self):
        setattr(self, "n", 1)  # noqa: B010 - the call form is what is read

    def forget(self):
        delattr(self, "n")

    def poke(self, other):
        setattr(other, "n", 1)  # noqa: B010

    def helper():  # a def without self
        return 1


class Outside(Base):  # not the notebook's own class: only Base is read
    pass


def own_classes(cls):
    import ast
    import inspect
    import textwrap

    if cls not in (Base, Child):
        return None
    return ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]


def _used(method, **kw):
    return _call(method, discarded=False, **kw)  # its result used: unknown means "no change"


@pytest.mark.parametrize(
    ("value", "change", "changes"),
    [
        (Child(), _used("tally"), True),  # found in the base class
        (Outside(), _used("tally"), True),  # the own base class of a class read from elsewhere
        (Child(), _used("look"), False),
        (Child(), _used("bump"), True),
        (Child(), _used("flip"), True),  # a builtin container's method on an attribute
        (Child(), _used("train_on"), True),  # a method whose name changes things
        (Child(), _used("tweak"), True),
        (Child(), _used("forget"), True),
        (Child(), _used("poke"), False),
        (Child(), _used("ping"), False),  # calls that go round in circles change nothing
        (Child(), _call("helper"), False),
        (Child(), _used("__Set_Thing"), True),  # names read without underscores, any case
        (Child(), _call("__Get_Thing"), False),
        (object(), _used("append", path=("missing",)), True),  # attribute gone: by its name
        (collections.deque([1]), _used("rotate"), True),
        (collections.deque([1]), _used("frobnicate"), False),
        (np.zeros(2), _used("fill"), True),
        (np.int32(1), _used("resize"), False),  # numpy, but not an array
    ],
    ids=lambda x: x.method if isinstance(x, Change) else type(x).__name__,  # no addresses
)
def test_own_classes_are_read_for_what_changes_self(value, change, changes):
    assert may_change(value, change, own_classes) is changes


# -- the exact text written back: what a user reads in the exported main.py -----------------


def plain_namer(obj):
    if isinstance(obj, ModuleType):
        return "np" if obj.__name__ == "numpy" else obj.__name__
    return getattr(obj, "__name__", None)


class Flag(enum.IntFlag):
    A = 1
    B = 2


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (re.compile("x"), 're.compile("x")'),
        (re.compile("x", re.I | re.M | re.S | re.X),
         're.compile("x", re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE)'),
        (re.compile(b"x", re.I), 're.compile(b"x", re.IGNORECASE)'),
        (re.compile("x", re.ASCII), 're.compile("x", re.ASCII)'),
        (dt.datetime(2024, 1, 2), "datetime(2024, 1, 2)"),
        (dt.datetime(2024, 1, 2, 3), "datetime(2024, 1, 2, 3)"),
        (dt.datetime(2024, 1, 2, 0, 0, 0, 5), "datetime(2024, 1, 2, 0, 0, 0, 5)"),
        (dt.datetime(2024, 1, 2, fold=1), "datetime(2024, 1, 2, fold=1)"),
        (dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))),
         "datetime(2024, 1, 2, tzinfo=timezone(timedelta(seconds=7200)))"),
        (dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2), "X")),
         'datetime(2024, 1, 2, tzinfo=timezone(timedelta(seconds=7200), "X"))'),
        (dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc),
         "datetime(2024, 1, 2, tzinfo=timezone.utc)"),
        (dt.date(2024, 12, 31), "date(2024, 12, 31)"),
        (dt.time(0), "time(0)"),
        (dt.time(1, 2), "time(1, 2)"),
        (dt.time(1, 2, 3, 4), "time(1, 2, 3, 4)"),
        (dt.time(1, fold=1), "time(1, fold=1)"),
        (dt.timedelta(seconds=1), "timedelta(seconds=1)"),
        (dt.timedelta(microseconds=-1), "timedelta(days=-1, seconds=86399, microseconds=999999)"),
        (dt.timedelta(0), "timedelta(0)"),
        (dt.timezone(dt.timedelta(minutes=-30)), "timezone(timedelta(days=-1, seconds=84600))"),
        (Decimal("1.50"), 'Decimal("1.50")'),
        (Fraction(-2, 4), "Fraction(-1, 2)"),
        (uuid.UUID(int=1), 'UUID("00000000-0000-0000-0000-000000000001")'),
        (pathlib.Path("a/b"), 'Path("a/b")'),
        (pathlib.PurePosixPath("/x"), 'PurePosixPath("/x")'),
        (Tier.LOW, "Tier.LOW"),
        (Flag.A | Flag.B, "Flag(3)"),
        (functools.partial(int, base=2), "partial(int, base=2)"),
        (functools.partial(max, 1), "partial(max, 1)"),
        ((1,), "(1,)"),
        ((1, 2), "(1, 2)"),
        ((), "()"),
        ([], "[]"),
        ({}, "{}"),
        (set(), "set()"),
        (frozenset(), "frozenset()"),
        ({3, 1, 2}, "{1, 2, 3}"),
        (frozenset({"b", "a"}), 'frozenset({"a", "b"})'),
        ({"k": (1, 2)}, '{"k": (1, 2)}'),
        (range(3), "range(0, 3, 1)"),
        (range(1, 5, 2), "range(1, 5, 2)"),
        (bytearray(), 'bytearray(b"")'),
        (bytearray(b"a"), 'bytearray(b"a")'),
        (np.array([1, 2], dtype=np.uint8), 'np.array([1, 2], dtype="uint8")'),
        (np.array([True]), 'np.array([True], dtype="bool")'),
        (np.array([1j]), 'np.array([1j], dtype="complex128")'),
        (np.array([b"ab"]), 'np.array([b"ab"], dtype="|S2")'),
        (np.array(["ab"]), 'np.array(["ab"], dtype="<U2")'),
        (np.empty((2, 0), dtype="U3"), 'np.empty((2, 0), dtype="<U3")'),
        (np.float64(1.5), "float64(1.5)"),
        (np.int8(-3), "int8(-3)"),
        (np.complex64(1j), "complex64(1j)"),
        (Settings(), "Settings(tier=Tier.LOW, scale=1.0, tags=())"),
        (Pair("the", 2), 'Pair(word="the", count=2)'),
    ],
    ids=stable_id,
)  # fmt: skip
def test_values_are_written_as_a_person_would_write_them(value, text):
    assert value_source(value, plain_namer) == text


def test_long_values_are_laid_out_one_item_a_line():
    assert value_source(list(range(10)), plain_namer, width=20) == (
        "[\n" + "".join(f"    {i},\n" for i in range(10)) + "]"
    )
    assert value_source(list(range(3)), plain_namer, width=9) == "[0, 1, 2]"  # exactly fits
    assert value_source(list(range(3)), plain_namer, width=8) == "[\n    0,\n    1,\n    2,\n]"
    assert value_source({"key": "v" * 120}, plain_namer) == '{\n    "key": "' + "v" * 120 + '",\n}'
    nested = [[1, 2], ["a" * 95]]
    assert value_source(nested, plain_namer) == ('[\n    [1, 2],\n    ["' + "a" * 95 + '"],\n]')
    # an inner value laid out on several lines is indented with its container
    inner = {"rows": list(range(40))}
    assert value_source(inner, plain_namer) == (
        '{\n    "rows": [\n' + "".join(f"        {i},\n" for i in range(40)) + "    ],\n}"
    )
    assert value_source(tuple(range(40)), plain_namer).endswith("    39,\n)")


def test_values_nested_deeper_than_30_have_no_source():
    def nest(depth):
        value = 1
        for _ in range(depth):
            value = [value]
        return value

    assert value_source(nest(30), plain_namer) == "[" * 30 + "1" + "]" * 30
    assert value_source(nest(31), plain_namer) is None


def test_what_cannot_be_named_has_no_source():
    nobody = lambda obj: None  # noqa: E731
    for value in (re.compile("x"), dt.date(2024, 1, 1), dt.datetime(2024, 1, 1), dt.time(1),
                  dt.timedelta(1), Decimal(1), Fraction(1), uuid.UUID(int=1), pathlib.Path("x"),
                  functools.partial(int), Settings(), Pair("a", 1), np.zeros(1), np.int8(1),
                  dt.timezone(dt.timedelta(hours=1))):  # fmt: skip
        assert value_source(value, nobody) is None, value
    only_modules = lambda obj: "re" if obj is re else None  # noqa: E731
    assert value_source(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
                        lambda o: "datetime" if o is dt.datetime else None) is None  # fmt: skip
    assert value_source(re.compile("x"), only_modules) == 're.compile("x")'


def test_partials_with_attributes_or_subclasses_have_no_source():
    class MyPartial(functools.partial):
        pass

    assert value_source(MyPartial(int), plain_namer) is None
    marked = functools.partial(int)
    marked.note = "set later"
    assert value_source(marked, plain_namer) is None
    assert value_source(functools.partial(int, **{"not an identifier": 1}), plain_namer) is None
    assert value_source(functools.partial(lambda: 1), lambda o: None) is None  # func unnamed


def test_builtins_are_recognised_by_name():
    from krtlab.authoring.capture_values import is_builtin

    assert is_builtin(round) == "round" and is_builtin(len) == "len"
    assert is_builtin(plain_namer) is None and is_builtin(1) is None
    assert is_builtin(np.sum) is None  # named "sum", but not the builtin


def test_live_objects_are_refused_with_exact_advice(tmp_path):
    with open(tmp_path / "f.txt", "w") as f:
        assert live_reason(f) == (
            "it is an open file; open it inside the function, or attach the file with "
            "v.asset(...) and open ctx.path(...) in init(ctx)"
        )
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        inner = tempfile.TemporaryDirectory(dir=folder)
        assert live_reason(inner).startswith("it is an open file")
        inner.cleanup()
    assert live_reason(x for x in [1]) == (
        "it is a generator: on the runner it would start again from the beginning, not where the "
        "notebook left it; make a list of it (list(...)) or create it inside the function"
    )

    async def agen():
        yield 1

    assert live_reason(agen()).startswith("it is a async_generator: ")
    assert live_reason(threading.Lock()) == (
        "it is a live _thread.lock (a connection, process, thread or lock), which cannot be "
        "copied into code; create it in init(ctx) and keep it with ctx.set(...)"
    )
    assert live_reason(iter([1])) == (
        "it is an iterator (builtins.list_iterator), perhaps partly consumed; make a list of it "
        "(list(...)) or create it inside the function"
    )

    class Broken:
        def __next__(self):
            return 1

        def __iter__(self):
            raise RuntimeError("no")

    assert live_reason(Broken()) is None  # not an iterator after all: nothing to say


def test_protobuf_messages_are_written_as_their_bytes():
    from google.protobuf.timestamp_pb2 import Timestamp

    stamp = Timestamp(seconds=5, nanos=7)
    text, back = roundtrip(stamp)
    assert text == f"Timestamp.FromString({stamp.SerializeToString()!r})".replace("'", '"')
    assert back == stamp
    assert value_source(stamp, lambda o: None) is None

    class LooksLikeOne:  # serializes, but is no message class (no DESCRIPTOR)
        def SerializeToString(self, deterministic=False):
            return b"x"

    assert value_source(LooksLikeOne(), plain_namer) is None


def test_zoneinfo_time_zones_are_written_by_their_key():
    from zoneinfo import ZoneInfo

    when = dt.datetime(2024, 1, 2, 3, tzinfo=ZoneInfo("Europe/Madrid"))
    text, back = roundtrip(when)
    assert text == 'datetime(2024, 1, 2, 3, tzinfo=ZoneInfo("Europe/Madrid"))'
    assert back == when and back.tzinfo == when.tzinfo
    unnamed = lambda o: None if o is ZoneInfo else plain_namer(o)  # noqa: E731
    assert value_source(when, unnamed) is None

    class Keyed(dt.tzinfo):  # a key, but not a ZoneInfo: no exact form
        key = "Europe/Madrid"

        def utcoffset(self, when):
            return dt.timedelta(0)

    assert value_source(dt.datetime(2024, 1, 2, tzinfo=Keyed()), plain_namer) is None


def test_dataclasses_with_slots_are_written_as_calls():
    @dataclasses.dataclass(slots=True)
    class Slotted:
        a: int
        b: str = "x"

    assert value_source(Slotted(1), plain_namer) == 'Slotted(a=1, b="x")'


def test_dict_keys_and_values_are_written_with_the_names_they_need():
    assert value_source({Tier.LOW: Tier.HIGH}, plain_namer) == "{Tier.LOW: Tier.HIGH}"
    assert value_source({object(): 1}, plain_namer) is None  # a key without a source
    assert value_source({"a": object()}, plain_namer) is None  # a value without one


def test_dict_keys_and_values_count_towards_the_depth_limit():
    def nest(depth, make):
        value = 1
        for _ in range(depth):
            value = make(value)
        return value

    deep_key = nest(29, lambda v: (v,))  # its 1 at depth 30 once the dict holds it
    assert value_source({deep_key: 1}, plain_namer) is not None
    assert value_source({(deep_key,): 1}, plain_namer) is None
    deep_value = nest(29, lambda v: [v])
    assert value_source({"k": deep_value}, plain_namer) is not None
    assert value_source({"k": [deep_value]}, plain_namer) is None


def test_set_items_are_sorted_so_the_source_is_stable():
    words = {f"w{i}" for i in range(12)}
    expected = "{" + ", ".join(f'"{w}"' for w in sorted(words)) + "}"
    assert value_source(words, plain_namer) == expected
    assert value_source(frozenset(words), plain_namer) == f"frozenset({expected})"


def test_an_item_laid_out_on_several_lines_lays_out_its_container_too():
    inner = list(range(30))  # over the 100 columns an inner value gets: several lines
    text = value_source([inner], plain_namer, width=1000)
    assert text == "[\n    [\n" + "".join(f"        {i},\n" for i in range(30)) + "    ],\n]"


def test_an_object_whose_attributes_raise_has_no_source():
    class Weird:
        def __getattr__(self, name):
            raise RuntimeError(f"no {name}")

    assert value_source(Weird(), plain_namer) is None


def test_objects_of_the_live_modules_submodules_are_refused():
    import asyncio
    import concurrent.futures

    assert live_reason(concurrent.futures.Future()) == (
        "it is a live concurrent.futures._base.Future (a connection, process, thread or lock), "
        "which cannot be copied into code; create it in init(ctx) and keep it with ctx.set(...)"
    )
    assert live_reason(asyncio.Event()).startswith("it is a live asyncio.locks.Event ")


def nested(depth, inner):
    for _ in range(depth):
        inner = [inner]
    return inner


def test_partial_arguments_are_written_with_the_names_they_need():
    text, back = roundtrip(functools.partial(scale, Tier.HIGH, k=Tier.LOW))
    assert text == "partial(scale, Tier.HIGH, k=Tier.LOW)"
    assert back.args == (Tier.HIGH,) and back.keywords == {"k": Tier.LOW}


def test_call_arguments_count_towards_the_depth_limit():
    # a dataclass's fields, a partial's arguments and its function are one level below it
    assert value_source(Settings(tags=nested(29, 1)), plain_namer) is not None
    assert value_source(Settings(tags=nested(30, 1)), plain_namer) is None
    assert value_source(functools.partial(scale, nested(29, 1)), plain_namer) is not None
    assert value_source(functools.partial(scale, nested(30, 1)), plain_namer) is None
    assert value_source(nested(29, functools.partial(int)), plain_namer) is not None
    assert value_source(nested(30, functools.partial(int)), plain_namer) is None


def test_a_keyword_value_without_a_source_is_never_written_as_none():
    # it was: Settings(tags=<no source>) came back as "Settings(..., tags=None)", a silent change
    assert value_source(Settings(tags=(object(),)), plain_namer) is None
    assert value_source(functools.partial(scale, k=object()), plain_namer) is None
    assert value_source(Pair("the", object()), plain_namer) is None


# -- values written back by capture(): what a user reads in main.py, or the refusal -------------

WRITTEN_BACK_PY = """\
import enum
from collections import namedtuple
from decimal import Decimal

import numpy as np


class Tier(enum.Enum):
    LOW = 1
    HIGH = 2


class Label(str):
    pass


class Plain:
    def __init__(self, x):
        self.x = x


class Model:
    def __init__(self):
        self.ready = False

    def get_ready(self):
        self.ready = True


Pair = namedtuple("Pair", "a b")
WORD = Plain(0)
for _ in range(1):
    RATE = Decimal("1.5")
    SHARE = Decimal("0.5")
    PAIR = Pair(1, 2)
    MIXED = [object()]
    LABEL = Label("x")
    PLAIN = Plain(1)
    BIG = np.zeros(10_001)
    THING = object()
    FITS = bytearray(b"x" * 99_986)
    TOO_BIG = bytearray(b"x" * 99_987)
    FITS_ROW = [Decimal("1")] * 5 + [Decimal("999999")]
    WRAP_ROW = [Decimal("1")] * 5 + [Decimal("9999999")]
    A_ROW_WITH_A_NAME_OF_SIXTY_CHARACTERS_FOR_THE_WRAP_RULE_OK = [
        Decimal("1"), Decimal("99999999999999")
    ]
MODEL = Model()
MODEL.get_ready()
exec("CHOICE = Tier.HIGH")


def rate(req):
    return WORD, RATE


def twice(req):
    return RATE, SHARE, helper()


def helper():
    return RATE, SHARE


def choice(req):
    return CHOICE


def rows(req):
    return FITS_ROW, WRAP_ROW, A_ROW_WITH_A_NAME_OF_SIXTY_CHARACTERS_FOR_THE_WRAP_RULE_OK


def fits(req):
    return FITS


def too_big(req):
    return TOO_BIG


def pair(req):
    return PAIR


def model(req):
    return MODEL.ready


def mixed(req):
    return MIXED


def label(req):
    return LABEL


def plain(req):
    return PLAIN


def big(req):
    return BIG


def thing(req):
    return THING


def foreign(req):
    return FOREIGN
"""

#: a second module, whose names clash with the first one's
WRITTEN_BACK_B_PY = """\
from collections import namedtuple
from decimal import Decimal

Pair = namedtuple("Pair", "x y")
for _ in range(1):
    RATE = Decimal("2.5")


def rate_b(req):
    return RATE


def pair_b(req):
    return Pair


def annotated(req: RATE):
    return helper(req)


def helper(req):
    return RATE * 2
"""


class WrittenBack:
    """The two modules, and where their lines are (``at(module, "text")``: the first line with
    that text)."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def at(self, module, text: str) -> str:
        from krtlab.authoring.capture_source import location

        source = WRITTEN_BACK_PY if module is self.a else WRITTEN_BACK_B_PY
        line = next(i for i, t in enumerate(source.splitlines(), 1) if text in t)
        return location(module.__file__, line)


@pytest.fixture
def written_back(tmp_path, monkeypatch):
    import importlib
    import sys

    (tmp_path / "capture_written_back.py").write_text(WRITTEN_BACK_PY)
    (tmp_path / "capture_written_back_b.py").write_text(WRITTEN_BACK_B_PY)
    monkeypatch.syspath_prepend(str(tmp_path))
    a = importlib.import_module("capture_written_back")
    b = importlib.import_module("capture_written_back_b")
    # no statement of the module binds it: set from outside, of a class of the __main__ script
    a.FOREIGN = type("Foreign", (), {"__module__": "__main__"})()
    yield WrittenBack(a, b)
    del sys.modules["capture_written_back"], sys.modules["capture_written_back_b"]


def _refusal(root, **kw):
    from krtlab.authoring.capture import capture
    from krtlab.errors import CaptureError

    with pytest.raises(CaptureError) as info:
        capture(root if isinstance(root, list) else [root], node="n", **kw)
    err = info.value
    return str(err), err.node, err.name, err.where, err.reason


_HINT = (
    "load it in init(ctx) with ctx.set(...) and read it with ctx.get(...), or attach the file as "
    "an asset and read it with ctx.path(...)"
)


@pytest.mark.parametrize(
    ("root", "reason"),
    [
        ("mixed", f"it holds values that are not literals; {_HINT}"),
        ("label", "it is a capture_written_back.Label object, which has no source form; convert "
                  "it to a plain int, float or str"),
        ("plain", "it is a capture_written_back.Plain object, which has no source form; create "
                  "it inside the function, or in init(ctx) with ctx.set(...)"),
        ("big", f"it is a numpy.ndarray object, which has no source form; {_HINT} (small arrays "
                "can become plain lists with .tolist())"),
        ("thing", f"it is a object object, which has no source form; {_HINT}"),  # builtins
        ("foreign", f"it is a Foreign object, which has no source form; {_HINT}"),  # __main__
        ("too_big", "its value is too large to inline (100001 characters); save it to a file, "
                    "attach it as an asset and load it in init(ctx) with ctx.path()"),
    ],
)  # fmt: skip
def test_values_no_statement_made_are_refused_with_what_to_do(written_back, root, reason):
    name = root.upper()
    where = written_back.at(written_back.a, f"    return {name}")
    assert _refusal(getattr(written_back.a, root)) == (
        f"cannot export {name!r}, used by node 'n' ({where}): {reason}",
        "n",
        name,
        where,
        reason,
    )


def test_values_up_to_100000_characters_are_written_back(written_back):
    from krtlab.authoring.capture import capture

    cap = capture([written_back.a.fits], node="n")
    text = 'bytearray(b"' + "x" * 99_986 + '")'
    assert len(text) == 100_000
    assert cap.definitions == (f"FITS = {text}", "def fits(req):\n    return FITS")


def test_values_written_back_fill_100_columns_then_one_item_a_line(written_back):
    from krtlab.authoring.capture import capture

    cap = capture([written_back.a.rows], node="n")
    long = "A_ROW_WITH_A_NAME_OF_SIXTY_CHARACTERS_FOR_THE_WRAP_RULE_OK"
    ones = '    Decimal("1"),\n' * 5
    fits = "FITS_ROW = [" + 'Decimal("1"), ' * 5 + 'Decimal("999999")]'
    assert len(fits) == 100
    assert cap.definitions[0] == "\n".join(
        [
            fits,
            f'WRAP_ROW = [\n{ones}    Decimal("9999999"),\n]',  # 101 columns: one too many
            # a long name still gets 40 columns: 41 is one too many
            f'{long} = [\n    Decimal("1"),\n    Decimal("99999999999999"),\n]',
        ]
    )
    assert len('[Decimal("1"), Decimal("99999999999999")]') == 41


def test_a_value_comes_in_the_notebooks_order_after_what_it_names(written_back):
    from krtlab.authoring.capture import capture

    a = written_back.a
    cap = capture([a.rate], node="n")  # WORD's statement ran before the loop that made RATE
    assert cap.definitions == (
        "class Plain:\n    def __init__(self, x):\n        self.x = x",
        'WORD = Plain(0)\nRATE = Decimal("1.5")',
        "def rate(req):\n    return WORD, RATE",
    )
    assert cap.imports == ("from __future__ import annotations", "from decimal import Decimal")
    assert cap.origins[1] == (written_back.at(a, "WORD = Plain(0)"), "")
    # no statement made CHOICE (exec did): it still comes after the class it names
    cap = capture([a.choice], node="n")
    assert cap.definitions == (
        "class Tier(enum.Enum):\n    LOW = 1\n    HIGH = 2",
        "CHOICE = Tier.HIGH",
        "def choice(req):\n    return CHOICE",
    )
    cap = capture([a.pair], node="n")  # a class a statement made: that statement first
    assert cap.definitions == (
        'Pair = namedtuple("Pair", "a b")\nPAIR = Pair(a=1, b=2)',
        "def pair(req):\n    return PAIR",
    )


def test_a_value_used_by_several_functions_is_written_once(written_back):
    from krtlab.authoring.capture import capture

    cap = capture([written_back.a.twice], node="n")
    assert cap.definitions == (
        'RATE = Decimal("1.5")\nSHARE = Decimal("0.5")',
        "def helper():\n    return RATE, SHARE",
        "def twice(req):\n    return RATE, SHARE, helper()",
    )


def test_two_modules_values_of_one_name_are_refused_where_the_second_is_used(written_back):
    a, b = written_back.a, written_back.b
    first_rate = written_back.at(a, "return WORD, RATE")

    def clash(name, where, first):
        message = (
            f"cannot export {name!r}, used by node 'n' ({where}): the exported module would need "
            f"this name for two different objects (also used at {first}); rename one of them"
        )
        return message, "n", name, where, message.split(": ", 1)[1]

    where = written_back.at(b, "    return RATE")
    assert _refusal([a.rate, b.rate_b]) == clash("RATE", where, first_rate)
    # the same when the second module used it in an annotation first
    where = written_back.at(b, "return RATE * 2")
    assert _refusal([a.rate, b.annotated]) == clash("RATE", where, first_rate)
    # a class a written-back value names is claimed where the value is used
    where = written_back.at(b, "    return Pair")
    assert _refusal([a.pair, b.pair_b]) == clash("Pair", where, written_back.at(a, "return PAIR"))


def test_an_own_class_is_read_for_what_its_methods_change(written_back):
    a = written_back.a
    changed = written_back.at(a, "MODEL.get_ready()")
    reason = (
        f"it is made by {written_back.at(a, 'MODEL = Model()')} (`MODEL = Model()`), and "
        f"{changed} may change it afterwards (`MODEL.get_ready()`); the runner would only re-run "
        "the first. Make the change part of the statement that creates it (or do it in "
        "init(ctx) with ctx.set(...)) and export again"
    )  # get_ready reads like a getter, but it assigns to self
    where = written_back.at(a, "return MODEL.ready")
    assert _refusal(a.model) == (
        f"cannot export 'MODEL', used by node 'n' ({where}): {reason}",
        "n",
        "MODEL",
        changed,
        reason,
    )
