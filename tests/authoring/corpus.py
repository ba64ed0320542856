"""Notebook patterns data scientists write every day, for the capture corpus test.

Each pattern is a list of cells defining a node ``n`` (and sometimes more) of a version whose
proto is :data:`PROTO`; :func:`notebook_cells` puts them between a header (krtlab, the version,
the proto) and a footer (the workflow, and the notebook's own ``v.run`` answer saved to
``answer.json``). A pattern either exports and answers like the notebook, or is refused with a
message that names the name, the cell and line, and what to do (``refuse``, ``refuse_at``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PROTO = """\
syntax = "proto3";
package entrypoint;
message Request { string text = 1; double number = 2; }
message Response { string text = 1; double value = 2; }
service Entrypoint { rpc Go (Request) returns (Response) {}; }
"""

HEADER = f'''\
import json
import krtlab as krt
from google.protobuf.json_format import MessageToDict

v = krt.Version("corpus", description="a notebook pattern")
pb = v.proto("""{PROTO}""")
'''

FOOTER = """\
v.workflow("wf", entrypoint="Go", sequential=SEQ)
_run = v.run("Go", **REQUEST)
with open(ANSWER, "w") as _out:
    json.dump(MessageToDict(_run.response, preserving_proto_field_name=True), _out)
"""


@dataclass(frozen=True)
class Pattern:
    name: str
    cells: tuple[str, ...]
    request: dict = field(default_factory=lambda: {"text": "The cat and the hat", "number": 2})
    files: dict[str, str] = field(default_factory=dict)
    seq: tuple[str, ...] = ("n",)
    refuse: str | None = None  # a regex the refusal must match
    refuse_at: tuple[int, int] | None = None  # (pattern cell index, line) the error points at
    notebook_only: bool = False  # uses IPython syntax (magics)
    expect: dict | None = None  # the answer, where the pattern is about a known value


def notebook_cells(p: Pattern, answer: str = "answer.json") -> list[str]:
    request = f"REQUEST = {json.dumps(p.request)}\nSEQ = {list(p.seq)!r}\nANSWER = {answer!r}\n"
    return [HEADER + request, *p.cells, FOOTER]


def script_text(p: Pattern, answer: str = "answer-script.json") -> str:
    return "\n\n".join(notebook_cells(p, answer)) + "\n"


def _p(name: str, *cells: str, **kw) -> Pattern:
    return Pattern(name, tuple(cells), **kw)


TEXTUTILS = '''\
"""Text helpers kept beside the notebook."""
import re

_SPACES = re.compile(r"\\s+")


def normalize(text):
    return _SPACES.sub(" ", text.strip().lower())
'''

PATTERNS: list[Pattern] = [
    # ---- the nine --------------------------------------------------------------------
    _p(
        "regex",
        'import re\nWORD = re.compile(r"[a-z]+")  # lower-case words\n',
        """\
@v.node(name="n")
def count(req: pb.Request) -> pb.Response:
    return pb.Response(text=",".join(WORD.findall(req.text)))
""",
        expect={"text": "he,cat,and,the,hat"},
    ),
    _p(
        "logger",
        'import logging\nlog = logging.getLogger("pricing")\n',
        """\
@v.node(name="n")
def count(req: pb.Request) -> pb.Response:
    log.info("pricing %s", req.text)
    return pb.Response(text=log.name, value=len(req.text))
""",
    ),
    _p(
        "dates-decimal",
        """\
from datetime import date, timedelta
from decimal import Decimal

START = date(2024, 1, 1)
GRACE = timedelta(days=3)
RATE = Decimal("0.125")
""",
        """\
@v.node(name="n")
def due(req: pb.Request) -> pb.Response:
    day = START + GRACE * int(req.number)
    return pb.Response(text=day.isoformat(), value=float(RATE * 8))
""",
        expect={"text": "2024-01-07", "value": 1.0},
    ),
    _p(
        "dataclass-instance",
        """\
from dataclasses import dataclass
from enum import Enum


class Tier(Enum):
    LOW = 1
    HIGH = 2


@dataclass
class Settings:
    tier: Tier = Tier.LOW
    factor: float = 1.5
""",
        "DEFAULTS = Settings(tier=Tier.HIGH)\n",
        """\
@v.node(name="n")
def tiered(req: pb.Request) -> pb.Response:
    return pb.Response(text=DEFAULTS.tier.name, value=DEFAULTS.factor * req.number)
""",
        expect={"text": "HIGH", "value": 3.0},
    ),
    _p(
        "namedtuple-partial-lambda",
        """\
from collections import namedtuple
from functools import partial

Pair = namedtuple("Pair", "word count")
round2 = partial(round, ndigits=2)
by_count = lambda p: (-p.count, p.word)  # most frequent first
""",
        """\
@v.node(name="n")
def top(req: pb.Request) -> pb.Response:
    words = req.text.lower().split()
    pairs = sorted({Pair(w, words.count(w)) for w in words}, key=by_count)
    return pb.Response(text=pairs[0].word, value=round2(1 / 3))
""",
        expect={"text": "the", "value": 0.33},
    ),
    _p(
        "numpy-array",
        "import numpy as np\nWEIGHTS = np.array([0.5, 0.25, 0.25])\n",
        """\
@v.node(name="n")
def weigh(req: pb.Request) -> pb.Response:
    return pb.Response(value=float(WEIGHTS @ np.array([req.number, 4.0, 8.0])))
""",
        expect={"value": 4.0},
    ),
    _p(
        "own-class-instance",
        """\
class Tokenizer:
    def __init__(self, lower):
        self.lower = lower

    @classmethod
    def default(cls):
        return cls(lower=True)

    def tokenize(self, text):
        return (text.lower() if self.lower else text).split()
""",
        'TOK = Tokenizer.default()\nTOK.tokenize("Shown In A Cell")  # looked at, not changed\n',
        """\
@v.node(name="n")
def tokens(req: pb.Request) -> pb.Response:
    return pb.Response(text="|".join(TOK.tokenize(req.text)))
""",
        expect={"text": "the|cat|and|the|hat"},
    ),
    _p(
        "local-module",
        "from textutils import normalize\n",
        """\
@v.node(name="n")
def clean(req: pb.Request) -> pb.Response:
    return pb.Response(text=normalize(req.text))
""",
        files={"textutils.py": TEXTUTILS},
        request={"text": "  The   CAT  "},
        expect={"text": "the cat"},
    ),
    _p(
        "closure-factory",
        """\
def make_scaler(k):
    def scale(x):
        return x * k
    return scale


scale = make_scaler(3)
""",
        """\
@v.node(name="n")
def scaled(req: pb.Request) -> pb.Response:
    return pb.Response(value=scale(req.number))
""",
        expect={"value": 6.0},
    ),
    # ---- more of what notebooks do ------------------------------------------------------------
    _p(
        "computed-tables",
        """\
import re
SQUARES = [i * i for i in range(6)]  # a literal once computed
LENGTHS = {w: len(w) for w in ["a", "bb", "ccc"]}
MATCHERS = {name: re.compile(p) for name, p in [("vowel", "[aeiou]"), ("digit", "[0-9]")]}
""",
        """\
@v.node(name="n")
def table(req: pb.Request) -> pb.Response:
    vowels = len(MATCHERS["vowel"].findall(req.text))
    return pb.Response(text=str(LENGTHS), value=SQUARES[3] + vowels)
""",
        expect={"text": "{'a': 1, 'bb': 2, 'ccc': 3}", "value": 14.0},
    ),
    _p(
        "class-hierarchy",
        """\
class Formatter:
    prefix = ">"

    def format(self, text):
        return f"{self.prefix} {self.transform(text)}"

    def transform(self, text):
        return text


class Upper(Formatter):
    def transform(self, text):
        return text.upper()


class Shouting(Upper):
    prefix = "!!"

    @staticmethod
    def mark():
        return "!"

    @property
    def loud(self):
        return True
""",
        """\
@v.node(name="n")
def shout(req: pb.Request) -> pb.Response:
    f = Shouting()
    return pb.Response(text=f.format(req.text) + Shouting.mark(), value=f.loud)
""",
    ),
    _p(
        "decorators-in-cells",
        """\
import functools


def twice(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return fn(fn(x))
    return wrapper


@twice
def add_one(x):
    return x + 1


@functools.lru_cache(maxsize=None)
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
""",
        """\
@v.node(name="n")
def decorated(req: pb.Request) -> pb.Response:
    return pb.Response(text=add_one.__name__, value=add_one(req.number) + fib(20))
""",
        expect={"text": "add_one", "value": 6769.0},
    ),
    _p(
        "local-package",
        "from helpers import shout, PUNCT\n",
        """\
@v.node(name="n")
def loud(req: pb.Request) -> pb.Response:
    return pb.Response(text=shout(req.text) + PUNCT.pattern)
""",
        files={
            "helpers/__init__.py": "from .text import shout\nfrom .marks import PUNCT\n",
            "helpers/text.py": "def shout(text):\n    return text.upper()\n",
            "helpers/marks.py": 'import re\n\nPUNCT = re.compile(r"[!?.]")\n',
        },
        request={"text": "hi"},
        expect={"text": "HI[!?.]"},
    ),
    _p(
        "import-as",
        """\
import xml.sax.saxutils as su
import pkg.sub as z
""",
        """\
@v.node(name="n")
def escaped(req: pb.Request) -> pb.Response:
    return pb.Response(text=su.escape("<" + z.tag(req.text) + ">"))
""",
        files={"pkg/__init__.py": "", "pkg/sub.py": "def tag(t):\n    return f'b:{t}'\n"},
        request={"text": "x"},
        expect={"text": "&lt;b:x&gt;"},
    ),
    _p(
        "star-import",
        "from stars import *\n",
        """\
@v.node(name="n")
def starry(req: pb.Request) -> pb.Response:
    return pb.Response(text=str(count_vowels(req.text)), value=len(VOWELS_RE.pattern))
""",
        files={
            "stars.py": """\
import re

__all__ = ["VOWELS_RE", "count_vowels"]
VOWELS_RE = re.compile("[aeiou]")


def count_vowels(text):
    return len(VOWELS_RE.findall(text))
"""
        },
        expect={"text": "5", "value": 7.0},
    ),
    _p(
        "constant-redefined",
        "LIMIT = 3\n",
        """\
@v.node(name="n")
def limited(req: pb.Request) -> pb.Response:
    return pb.Response(text=req.text[:LIMIT])
""",
        "LIMIT = 5  # changed my mind\n",
        expect={"text": "The c"},
    ),
    _p(
        "constant-redefined-after-use",
        """\
import re
LIMIT = 3
SHORT = re.compile(rf"\\b[a-z]{{1,{LIMIT}}}\\b")
""",
        "LIMIT = 10\n",
        """\
@v.node(name="n")
def short(req: pb.Request) -> pb.Response:
    return pb.Response(text=" ".join(SHORT.findall(req.text)), value=LIMIT)
""",
        request={"text": "The cat and the elephant"},
        expect={"text": "cat and the", "value": 10.0},
    ),
    _p(
        "bound-by-for-loop",
        """\
from datetime import timedelta
for unit in ["s", "m", "h"]:
    LAST_UNIT = unit
for hours in range(3):
    STEP = timedelta(hours=hours)
""",
        """\
@v.node(name="n")
def looped(req: pb.Request) -> pb.Response:
    return pb.Response(text=LAST_UNIT, value=STEP.total_seconds())
""",
        expect={"text": "h", "value": 7200.0},
    ),
    _p(
        "typing-only-imports",
        """\
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from pandas import DataFrame  # never imported at run time
""",
        """\
def summarize(frame: "DataFrame | None", text: str) -> str:
    return text.title()


@v.node(name="n")
def typed(req: pb.Request) -> pb.Response:
    return pb.Response(text=summarize(None, req.text))
""",
        expect={"text": "The Cat And The Hat"},
    ),
    _p(
        "with-block-data",
        "with open('vocab.txt') as f:\n    VOCAB = f.read().split()\n",
        """\
@v.node(name="n")
def known(req: pb.Request) -> pb.Response:
    return pb.Response(value=sum(w in VOCAB for w in req.text.lower().split()))
""",
        files={"vocab.txt": "the\nhat\n"},
        expect={"value": 3.0},
    ),
    _p(
        "try-import",
        """\
try:
    import ujson as fastjson
except ImportError:
    import json as fastjson
""",
        """\
@v.node(name="n")
def dumped(req: pb.Request) -> pb.Response:
    return pb.Response(text=fastjson.dumps({"t": req.text}))
""",
    ),
    _p(
        "exec-made",
        'from fractions import Fraction\nexec("THIRD = Fraction(1, 3)")\n',
        """\
@v.node(name="n")
def third(req: pb.Request) -> pb.Response:
    return pb.Response(text=str(THIRD * 3), value=float(THIRD))
""",
    ),
    _p(
        "uuid-path",
        """\
import uuid
from pathlib import PurePosixPath
for _ in range(1):
    NS = uuid.UUID("12345678-1234-5678-1234-567812345678")
    ROOT = PurePosixPath("/data/models")
""",
        """\
@v.node(name="n")
def ids(req: pb.Request) -> pb.Response:
    return pb.Response(text=str(uuid.uuid5(NS, req.text)) + str(ROOT / "x"))
""",
    ),
    _p(
        "init-and-ctx",
        """\
def make_greeting():
    return "Hello"


@v.node(name="n")
def greet(ctx, req: pb.Request) -> pb.Response:
    ctx.logger.info("greeting %s", req.text)
    return pb.Response(text=f"{ctx.get('greeting')} {req.text}")


@greet.init
def setup(ctx):
    ctx.set("greeting", make_greeting())
""",
        expect={"text": "Hello The cat and the hat"},
    ),
    _p(
        "async-node",
        """\
import asyncio


@v.node(name="n")
async def slow(req: pb.Request) -> pb.Response:
    await asyncio.sleep(0)
    return pb.Response(text=req.text[::-1])
""",
    ),
    _p(
        "dispatch-table",
        """\
def shout(t):
    return t.upper()


OPS = {"up": shout, "low": str.lower, "len": len}
""",
        """\
@v.node(name="n")
def dispatch(req: pb.Request) -> pb.Response:
    return pb.Response(text=OPS["up"](req.text) + OPS["low"]("X"), value=OPS["len"](req.text))
""",
    ),
    _p(
        "mutable-literals",
        'STOP = ["a"]\nSTOP.append("the")  # mutated later: the value counts\n',
        """\
@v.node(name="n")
def stopped(req: pb.Request) -> pb.Response:
    return pb.Response(text=" ".join(w for w in req.text.lower().split() if w not in STOP))
""",
        expect={"text": "cat and hat"},
    ),
    _p(
        "two-nodes-internal-message",
        """\
@v.message
class Tokens:
    words: list[str]
    count: int


@v.node(name="split-text")
def split_text(req: pb.Request) -> Tokens:
    words = req.text.split()
    return Tokens(words=words, count=len(words))


@v.node(name="n")
def join(tokens: Tokens) -> pb.Response:
    return pb.Response(text="-".join(tokens.words), value=tokens.count)
""",
        seq=("split-text", "n"),
        expect={"text": "The-cat-and-the-hat", "value": 5.0},
    ),
    _p(
        "enum-functional",
        'from enum import Enum\nColor = Enum("Color", "RED GREEN BLUE")\n',
        """\
@v.node(name="n")
def colored(req: pb.Request) -> pb.Response:
    return pb.Response(text=Color(int(req.number)).name, value=len(Color))
""",
        expect={"text": "GREEN", "value": 3.0},
    ),
    _p(
        "typed-namedtuple",
        """\
from typing import NamedTuple


class Point(NamedTuple):
    x: float
    y: float = 0.0


ORIGIN = Point(1.5)
""",
        """\
@v.node(name="n")
def moved(req: pb.Request) -> pb.Response:
    p = ORIGIN._replace(y=req.number)
    return pb.Response(text=repr(p), value=p.x + p.y)
""",
        expect={"text": "Point(x=1.5, y=2.0)", "value": 3.5},
    ),
    _p(
        "helper-redefined",
        "def fmt(x):\n    return f'{x:.1f}'\n",
        "def fmt(x):\n    return f'<{x:.3f}>'\n",
        """\
@v.node(name="n")
def formatted(req: pb.Request) -> pb.Response:
    return pb.Response(text=fmt(req.number))
""",
        expect={"text": "<2.000>"},
    ),
    _p(
        "global-state",
        """\
SEEN = 0


def seen():
    global SEEN
    SEEN += 1
    return SEEN > 0
""",
        """\
@v.node(name="n")
def counted(req: pb.Request) -> pb.Response:
    return pb.Response(value=seen())
""",
        expect={"value": 1.0},
    ),
    _p(
        "magic-timed",
        """\
import numpy as np
%time SCALE = np.float64(2.5)
""",
        """\
@v.node(name="n")
def timed(req: pb.Request) -> pb.Response:
    return pb.Response(value=float(SCALE * req.number))
""",
        notebook_only=True,
        expect={"value": 5.0},
    ),
    _p(
        "numpy-in-a-loop",
        """\
import numpy as np
for _ in range(2):
    GRID = np.arange(6, dtype=np.int32).reshape(2, 3)
""",
        """\
@v.node(name="n")
def grid(req: pb.Request) -> pb.Response:
    return pb.Response(text=str(GRID.dtype), value=float(GRID.sum()))
""",
        expect={"text": "int32", "value": 15.0},
    ),
    _p(
        "handler-named-global",
        """\
def handler(text):  # a helper that happens to be called like kre-py's entry point
    return text.upper()


init = "ready"
""",
        """\
@v.node(name="n")
def uses_reserved(req: pb.Request) -> pb.Response:
    return pb.Response(text=handler(req.text) + init)
""",
        expect={"text": "THE CAT AND THE HATready"},
    ),
    _p(
        "decorators-without-wraps",
        """\
import time

import numpy as np


def timed(fn):  # no functools.wraps: the function it returns knows nothing of fn
    def run(*args):
        start = time.perf_counter()
        out = fn(*args)
        run.seconds = time.perf_counter() - start
        return out
    return run


@timed
def clean(text):
    return " ".join(text.lower().split())


class memo:
    def __init__(self, fn):
        self.fn, self.seen = fn, {}

    def __call__(self, x):
        if x not in self.seen:
            self.seen[x] = self.fn(x)
        return self.seen[x]


@memo
def weight(n):
    return n * 1.5


@np.vectorize
def clip(x):
    return min(max(x, 0.0), 10.0)


def one(cls):
    return cls()


@one
class Settings:
    scale = 2.0
""",
        """\
@v.node(name="n")
def decorated(req: pb.Request) -> pb.Response:
    value = weight(req.number) + float(clip(req.number * 6)) * Settings.scale
    return pb.Response(text=clean(req.text), value=value)
""",
        expect={"text": "the cat and the hat", "value": 23.0},
    ),
    # ---- refused, each with its message --------------------------------------------------------
    _p(
        "refuse-open-file",
        'LOG = open("log.txt", "a")\n',
        """\
@v.node(name="n")
def logs(req: pb.Request) -> pb.Response:
    LOG.write(req.text)
    return pb.Response()
""",
        refuse=r"cannot export 'LOG', used by node 'n' .*it is an open file",
        refuse_at=(1, 3),
    ),
    _p(
        "refuse-class-changed-after-its-statement",
        "class Settings:\n    level = 1\n\n\nSettings.level = 2  # tuned after the fact\n",
        """\
@v.node(name="n")
def level(req: pb.Request) -> pb.Response:
    return pb.Response(value=Settings.level)
""",
        refuse=r"'Settings'.*made by .*\(`class Settings:`\), and .* may change it afterwards "
        r"\(`Settings.level = 2`\)",
        refuse_at=(0, 5),
    ),
    _p(
        "refuse-socket",
        "import socket\nSOCK = socket.socket()\n",
        """\
@v.node(name="n")
def sends(req: pb.Request) -> pb.Response:
    SOCK.close()
    return pb.Response()
""",
        refuse=r"'SOCK'.*live socket\.socket.*init\(ctx\)",
        refuse_at=(1, 3),
    ),
    _p(
        "refuse-generator",
        "NUMBERS = (i * i for i in range(10))\n",
        """\
@v.node(name="n")
def nxt(req: pb.Request) -> pb.Response:
    return pb.Response(value=next(NUMBERS))
""",
        refuse=r"'NUMBERS'.*it is a generator.*list\(\.\.\.\)",
        refuse_at=(1, 3),
    ),
    _p(
        "refuse-reads-file",
        "import numpy as np\nPRICES = np.loadtxt('prices.txt')\n",
        """\
@v.node(name="n")
def priced(req: pb.Request) -> pb.Response:
    return pb.Response(value=float(PRICES.sum()))
""",
        files={"prices.txt": "1.5\n2.5\n"},
        refuse=r"'PRICES'.*made by .*np\.loadtxt\(\.\.\.\).*v\.asset\(.*ctx\.path\(",
        refuse_at=(0, 2),
    ),
    _p(
        "refuse-pickle",
        """\
import pickle


class Model:
    def __init__(self, w):
        self.w = w
""",
        "with open('model.pkl', 'wb') as f:\n    pickle.dump(Model(2.0), f)\n",
        "MODEL = pickle.load(open('model.pkl', 'rb'))\n",
        """\
@v.node(name="n")
def predicts(req: pb.Request) -> pb.Response:
    return pb.Response(value=MODEL.w * req.number)
""",
        refuse=r"'MODEL'.*reads .*pickle\.load\(\.\.\.\)|'MODEL'.*reads .*open\(\.\.\.\)",
        refuse_at=(2, 1),
    ),
    _p(
        "refuse-mutated-attribute",
        """\
class Tokenizer:
    def __init__(self):
        self.lower = True

    def tokenize(self, text):
        return (text.lower() if self.lower else text).split()
""",
        "TOK = Tokenizer()\n",
        "TOK.lower = False  # changed after it was made\n",
        """\
@v.node(name="n")
def toks(req: pb.Request) -> pb.Response:
    return pb.Response(text=" ".join(TOK.tokenize(req.text)))
""",
        refuse=r"'TOK'.*may change it afterwards \(`TOK.lower = False`\).*init\(ctx\)",
        refuse_at=(2, 1),
    ),
    _p(
        "refuse-fitted-model",
        """\
class Model:
    def __init__(self):
        self.mean = 0.0

    def fit(self, xs):
        self.mean = sum(xs) / len(xs)
        return self
""",
        "MODEL = Model()\nMODEL.fit([1.0, 2.0, 6.0])\n",
        """\
@v.node(name="n")
def predict(req: pb.Request) -> pb.Response:
    return pb.Response(value=MODEL.mean)
""",
        refuse=r"'MODEL'.*may change it afterwards \(`MODEL.fit",
        refuse_at=(1, 2),
    ),
    _p(
        "refuse-depends-on-refused",
        """\
import numpy as np
BASE = np.loadtxt("prices.txt")
SCALED = BASE * 2
""",
        """\
@v.node(name="n")
def scaled(req: pb.Request) -> pb.Response:
    return pb.Response(value=float(SCALED.sum()))
""",
        files={"prices.txt": "1.0\n2.0\n"},
        refuse=r"'SCALED'.*from 'BASE', which cannot be exported: it is made by .*loadtxt",
        refuse_at=(0, 2),
    ),
    _p(
        "refuse-lambda-in-loop",
        "for k in [2]:\n    triple = lambda x: x * k\n",
        """\
@v.node(name="n")
def tripled(req: pb.Request) -> pb.Response:
    return pb.Response(value=triple(req.number))
""",
        refuse=r"'triple'.*lambda made without a single statement.*def",
        refuse_at=(1, 3),
    ),
    _p(
        "refuse-import-not-on-runner",
        "import yaml\n",
        """\
@v.node(name="n")
def parsed(req: pb.Request) -> pb.Response:
    return pb.Response(text=str(yaml.safe_load(req.text)))
""",
        refuse=r"node 'n' imports 'yaml', which the konstellation/kre-py:1\.23\.0 image does "
        r"not have; the node would fail to start.*requirements=\['PyYAML==",
    ),
]
