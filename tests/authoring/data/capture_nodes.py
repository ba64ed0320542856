"""Node functions for the capture tests, written like a user's script.

Loaded by path as module ``capture_nodes``. Lines that tests locate carry a ``# mark: <name>``
comment. Everything below the proto setup plays the role of notebook cells.
"""

import functools
import io
import json
import math
import os.path as osp
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import StringIO
from json.decoder import JSONDecoder
from math import sqrt as square_root
from os import getcwd
from typing import Optional

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal import enum_type_wrapper


def _messages():
    """Request/Response like public_input.proto, built in a private pool (no protoc)."""
    fdp = descriptor_pb2.FileDescriptorProto(
        name="public_input.proto", package="entrypoint", syntax="proto3"
    )
    f = descriptor_pb2.FieldDescriptorProto
    req = fdp.message_type.add(name="Request")
    req.field.add(name="name", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    req.field.add(name="amount", number=2, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    req.field.add(name="currency", number=3, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    item = req.nested_type.add(name="Item")
    item.field.add(name="x", number=1, type=f.TYPE_INT32, label=f.LABEL_OPTIONAL)
    req.field.add(
        name="items", number=4, type=f.TYPE_MESSAGE, label=f.LABEL_REPEATED,
        type_name=".entrypoint.Request.Item",
    )  # fmt: skip
    req.enum_type.add(name="Kind").value.add(name="PLAIN", number=0)
    color = fdp.enum_type.add(name="Color")
    color.value.add(name="RED", number=0)
    color.value.add(name="BLUE", number=1)
    res = fdp.message_type.add(name="Response")
    res.field.add(name="text", number=1, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    res.field.add(name="value", number=2, type=f.TYPE_DOUBLE, label=f.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    get = message_factory.GetMessageClass
    return (
        get(pool.FindMessageTypeByName("entrypoint.Request")),
        get(pool.FindMessageTypeByName("entrypoint.Response")),
        enum_type_wrapper.EnumTypeWrapper(pool.FindEnumTypeByName("entrypoint.Color")),
        enum_type_wrapper.EnumTypeWrapper(pool.FindEnumTypeByName("entrypoint.Request.Kind")),
    )


Request, Response, Color, Kind = _messages()
pb = types.ModuleType("public_input_pb2")  # like krtlab's namespace from v.proto(...)
pb.__krt_pb2_module__ = "public_input_pb2"
pb.Request, pb.Response = Request, Response
Req = Request
Item = Request.Item


class FakeVersion:
    """Stands for krtlab's Version (its module says krtlab)."""

    def node(self, name=None):
        return FakeNode


class FakeNode:
    """Stands for krtlab's node wrapper: calls go to the function in __wrapped__."""

    __krt_node__ = True

    def __init__(self, fn):
        self.__wrapped__ = fn

    def __call__(self, *args):
        return self.__wrapped__(*args)

    def init(self, fn):
        return fn


FakeVersion.__module__ = FakeNode.__module__ = "krtlab.fake"
v = FakeVersion()

# ---- constants ------------------------------------------------------------------------------
RATES = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}
MISSING = float("nan")
LABELS = ["low", "mid", "high"]
GREETING = "Hello"
LIMITS = (float("-inf"), 0, float("inf"))
SIZES = frozenset({3, 1, 2})
BIG = list(range(40))
UNUSED_CONSTANT = 42
LIMIT_IN_INNER = 5
LABELS_IN_METHOD = "in method"


# ---- helpers ---------------------------------------------------------------------------------
def unused_helper():
    return UNUSED_CONSTANT


def clamp(x, lo=0.0, hi=1.0):
    return max(lo, min(hi, x))


def score(values):
    return clamp(square_root(sum(x * x for x in values)) / len(values))


@dataclass
class Quote:
    amount: float
    currency: str = "USD"
    tags: list = field(default_factory=list)


class Labeler:
    def __init__(self, i):
        self.i = i

    def text(self):
        return LABELS[self.i]


@functools.lru_cache(maxsize=8)
def parse(text):
    return JSONDecoder().decode(text)


# ---- nodes -----------------------------------------------------------------------------------
def uses_imports(req):
    names = [ThreadPoolExecutor.__name__, StringIO.__name__, getcwd.__name__]
    return json.dumps([osp.basename(req.name), math.pi, square_root(4.0), parse("1"), names])


limit = clamp  # the same function under a second name


def uses_alias(req):
    return limit(req.amount), clamp(2.0)


def uses_helpers(req):
    return score([req.amount, 1.0])


def uses_classes(req):
    quote = Quote(req.amount, req.currency)
    return round(quote.amount * RATES[quote.currency], 2), Labeler(0).text()


def uses_constants(req):
    return RATES, MISSING, LABELS, GREETING, LIMITS, SIZES, BIG


def uses_protos(req: pb.Request) -> Response:
    extra = Req(name=Color.Name(1) + Kind.Name(0))
    items = [Item(x=1), pb.Request.Item(x=2)]
    return Response(text=req.name + extra.name, value=len(items))


@v.node(name="decorated")
async def decorated(ctx, req: pb.Request) -> pb.Response:
    return pb.Response(text=GREETING)


@decorated.init
def decorated_setup(ctx):
    ctx.set("ready", True)


def scoping(ctx, req, *args, flag: Optional[bool] = None, **kwargs):  # noqa: UP045 - typing
    global COUNTER
    local = [x for x in range(3) if x]
    total = sum(y for y in local)
    lookup = {k: k for k in "ab"}

    def inner(z, default=GREETING):
        return z + total + LIMIT_IN_INNER

    class Body:
        attr = LABELS
        other = attr

        def method(self):
            return LABELS_IN_METHOD  # methods skip the class scope: the global, not Body.attr

    if (walrus := len(local)) > 1:
        COUNTER = walrus
    try:
        pass
    except ValueError as error:
        del error
    return inner, lookup, args, kwargs, flag, Body, ctx, req


def annotated(ctx, req: v, n: "Quote") -> FakeNode:  # krtlab-only annotations
    x: FakeVersion = None
    return x


def handler(req):
    return req


def init(ctx):
    ctx.set("init", "user")


def calls_reserved(ctx, req):
    obj = types.SimpleNamespace(handler=1)
    return handler(req), init(ctx), obj.handler, dict(handler=2)


# ---- nodes defined inside a function (closures) ----------------------------------------------
def make_node(greeting):
    local_v = FakeVersion()
    suffix = "!"

    def helper(text):
        return text + suffix

    @local_v.node(name="made")
    def made(req: pb.Request) -> pb.Response:
        return pb.Response(text=helper(f"{greeting} {req.name}"))

    return made


def make_counter():
    count = 0

    def counted(req):
        nonlocal count
        count += 1
        return count

    return counted


# ---- nodes the main.py tests run --------------------------------------------------------------
@v.node(name="price")
async def price(ctx, req: pb.Request) -> pb.Response:
    quote = Quote(req.amount, req.currency or "USD")
    ctx.logger.info("pricing %s", req.name)
    value = round(quote.amount * RATES[quote.currency], 2)
    label = Labeler(2 if score([value]) >= 1.0 else 0).text()
    return pb.Response(text=f"{ctx.get('greeting')} {req.name}: {label}", value=value)


@price.init
async def price_setup(ctx):
    ctx.set("greeting", GREETING)


def count_items(req: Request) -> Response:
    return Response(text=req.name.upper(), value=len(req.items))


def raw_any(ctx, data):
    req = Request()
    data.Unpack(req)
    return Response(text=data.type_url, value=req.amount)


def wrong_output(req: Request) -> Response:
    return Req(name="not a response")


def three_params(a, b, c):
    return a


def warm_up():
    return parse("{}")


# ---- things that cannot be exported ---------------------------------------------------------
scale = lambda x: x * 2  # noqa: E731 - the test: lambdas have no name to export
LOG = io.StringIO()
MODEL = Labeler(1)
Dynamic = type("Dynamic", (), {})  # a class without source
UNLITERAL = [1, Labeler(2)]


def uses_lambda(req):
    return scale(req.amount)  # mark: uses_lambda


def uses_live_object(req):
    LOG.write(req.name)  # mark: uses_live_object


def uses_instance(req):
    return MODEL.text()  # mark: uses_instance


def uses_undefined(req):
    return req.amount * NOT_DEFINED  # noqa: F821  # mark: uses_undefined


def uses_krtlab(req):
    return v.node(req)  # mark: uses_krtlab


def uses_dynamic_class(req):
    return Dynamic()  # mark: uses_dynamic_class


def uses_unliteral(req):
    return UNLITERAL  # mark: uses_unliteral


def helper_with_lambda(x):
    return scale(x)  # mark: helper_with_lambda


def uses_bad_helper(req):
    return helper_with_lambda(req.amount)
