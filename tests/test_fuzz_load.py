"""Property tests: hostile krt.yml text and .krt archives end in a report or a krtlab error, and
quickly: never a traceback, never a hang.

The inputs are raw text and raw bytes (anchors, alias bombs, tags, merge keys, huge scalars, deep
nesting, odd encodings; archives with hand-made tar headers, truncated gzip, bombs), not what a
YAML or tar library would write. Each example must finish within ``PER_EXAMPLE`` seconds
(hypothesis' deadline) and runs under a hard limit, so that a hang fails instead of stalling.
"""

from __future__ import annotations

import gzip
import zlib
from datetime import timedelta

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import krtlab as krt
from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.errors import KrtlabError, UnsafeArchiveError
from krtlab.spec.model import KNOWN_KEYS
from krtlab.spec.yamlsrc import YamlSyntaxError, parse_yaml

from .conftest import EXAMPLES
from .test_yaml_source import _bomb
from .timing import TimeLimitExceeded, time_limit

PER_EXAMPLE = 2.0  # seconds, for each input
HARD_LIMIT = 10.0  # seconds: beyond this an example is interrupted as a hang

GREETER = load_project(EXAMPLES / "greeter").files
GREETER_YML = GREETER["krt.yml"].decode()
KEYS = sorted({k for keys in KNOWN_KEYS.values() for k in keys} | {"gpus", "exitpoint", "x"})


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=timedelta(seconds=PER_EXAMPLE),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _bounded(fn, *args):
    """``fn(*args)``, or None when it raises a krtlab error; anything else fails the test."""
    try:
        with time_limit(HARD_LIMIT):
            return fn(*args)
    except KrtlabError:
        return None
    except TimeLimitExceeded:
        raise AssertionError(f"no answer after {HARD_LIMIT} s: a hang") from None


def _check(report) -> None:
    for f in report.findings:
        assert f.severity in ("error", "warning") and f.message
        f.format()
    str(report), report.to_json()


def _validate_bytes(raw: bytes) -> None:
    report = _bounded(Project({**GREETER, "krt.yml": raw}, "fuzz").validate)
    assert report is not None  # a bundle's content never raises: it is reported
    _check(report)


_bounded(Project(dict(GREETER), "warm-up").validate)  # imports and caches before any deadline

# -- krt.yml as raw text ------------------------------------------------------------------------

SCALARS = [
    "x", "py-greeter", "PyGreet", "public_input.proto", "konstellation/kre-py:1.23.0", "''",
    "1.10", "0x1F", "0o17", "017", "1_000", "1e400", "-.inf", ".nan", "~", "null", "yes", "Off",
    "y", "2023-01-01", "2023-13-45", "2001-12-14t21:59:43.10-05:00", "190:20:30", "'<<'", "=",
    '"tab\\there \\u00e9 \\x00 \\ud800"', "'it''s'",
]  # fmt: skip
HUGE = {  # drawn by name, so that hypothesis does not print them in its reprs
    "int": "1" + "0" * 5000, "nines": "9" * 4301, "negative": "-" + "7" * 4400,
    "hex": "0x" + "f" * 5000, "binary": "0b" + "1" * 20000, "float": "1." + "0" * 5000 + "1",
    "text": "x" * 70000,
}  # fmt: skip


def _huge(name: str) -> str:
    return HUGE[name]


TAGS = [
    "", "", "", "!!str ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!binary ",
    "!!timestamp ", "!!python/object:os.system ", "!!python/object/apply:os.system ",
    "!!python/name:os.system ", "!custom ", "!<tag:example.com,2000:x> ", "!!merge ", "!!set ",
    "!!omap ", "!!pairs ", "!e!x ",
]  # fmt: skip
ANCHORS = st.sampled_from(["", "", "&a ", "&b ", "&a1 "])
ALIASES = st.sampled_from(["*a", "*b", "*a1", "*undefined"])
FLOW_KEYS = st.sampled_from([*KEYS, "<<", "? [a, b]", "? *a", "'<<'", "!!merge <<", "1", "~"])
scalar_text = st.builds(
    lambda tag, anchor, text: tag + anchor + text,
    st.sampled_from(TAGS),
    ANCHORS,
    st.sampled_from(SCALARS) | st.sampled_from(sorted(HUGE)).map(_huge) | st.text(max_size=12),
)
flow_value = st.recursive(
    scalar_text | ALIASES,
    lambda inner: st.one_of(
        st.builds(
            lambda a, xs: a + "[" + ", ".join(xs) + "]", ANCHORS, st.lists(inner, max_size=4)
        ),
        st.builds(
            lambda a, kv: a + "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}",
            ANCHORS,
            st.lists(st.tuples(FLOW_KEYS, inner), max_size=4),
        ),
    ),
    max_leaves=10,
)
block_line = st.builds(
    lambda indent, form, key, value: (
        " " * indent
        + {"map": f"{key}: {value}", "item": f"- {value}", "key": f"{key}:", "dash": "-"}[form]
    ),
    st.sampled_from([0, 0, 2, 4, 6]),
    st.sampled_from(["map", "map", "item", "key", "dash"]),
    FLOW_KEYS,
    flow_value,
)
block_doc = st.lists(
    block_line | st.sampled_from(["---", "...", "%YAML 1.1", "%TAG !e! tag:x.org,2000:", "# c"]),
    max_size=8,
).map("\n".join)
nesting = st.builds(
    lambda n, kind: (
        "description: "
        + {"seq": "[" * n + "]" * n, "map": "{a: " * n + "}" * n, "mixed": "[{a: " * n}[kind]
        if kind != "block"
        else "".join(" " * i + f"k{i}:\n" for i in range(n))
    ),
    st.sampled_from([10, 63, 64, 65, 300, 1000, 5000]),
    st.sampled_from(["seq", "map", "mixed", "block"]),
)
bombs = st.builds(
    lambda levels, width, style: {
        "seq": _bomb(levels, width),
        "map": _bomb(levels, width).replace("[", "{").replace("]", "}"),
        "key": _bomb(levels, width) + f"? *{chr(ord('a') + levels - 1)}\n: x\n",
        "merge": "a: &a {x: 1, y: 2}\n"
        + "".join(
            f"{c}: &{c} {{<<: [{', '.join([f'*{p}'] * width)}], z: 1}}\n"
            for p, c in zip("abcdefghijkl", "bcdefghijklm", strict=True)
        ),
        "hollow": "a: &a {}\n"  # merges of merges, and not one value to count
        + "".join(
            f"{c}: &{c} {{<<: [{', '.join([f'*{p}'] * width)}]}}\n"
            for p, c in zip("abcdefghijkl", "bcdefghijklm", strict=True)
        ),
        "nodes": _bomb(levels, width) + f"nodes: *{chr(ord('a') + levels - 1)}\n",
    }[style],
    st.integers(2, 10),
    st.integers(2, 12),
    st.sampled_from(["seq", "map", "key", "merge", "hollow", "nodes"]),
)
PLACES = ["d", "public_input.proto", "konstellation/kre-py:1.23.0", "py-greeter", "PyGreet"]


@st.composite
def krt_yml_texts(draw) -> str:
    mode = draw(st.sampled_from(["alone", "before", "after", "value", "value"]))
    part = draw(st.one_of(block_doc, bombs, nesting)) if mode != "value" else draw(flow_value)
    if mode == "alone":
        return part
    if mode == "value":
        place = draw(st.sampled_from(PLACES))
        return GREETER_YML.replace(f": {place}\n", f": {part}\n", 1)
    return part + "\n" + GREETER_YML if mode == "before" else GREETER_YML + part


@st.composite
def encoded(draw, texts) -> bytes:
    text = draw(texts)
    how = draw(
        st.sampled_from(
            ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "latin-1", "crlf", "cr", "cut", "poke"]
        )
    )
    if how in ("crlf", "cr"):
        text = text.replace("\n", "\r\n" if how == "crlf" else "\r")
    codec = how if how in ("utf-8-sig", "utf-16", "utf-16-be", "latin-1") else "utf-8"
    raw = text.encode(codec, errors="surrogatepass" if codec.startswith("utf") else "replace")
    if how in ("cut", "poke") and raw:
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            if how == "cut"
            else raw[:at] + draw(st.sampled_from([b"\0", b"\xff"])) + raw[at:]
        )
    return raw


@_fuzz(120)
@given(encoded(krt_yml_texts()))
def test_raw_krt_yml_text_ends_in_a_report(raw):
    _validate_bytes(raw)


@_fuzz(12)
@given(bombs, st.booleans())
def test_alias_bombs_end_in_a_report_at_once(bomb, with_greeter):
    _validate_bytes((bomb + (GREETER_YML if with_greeter else "")).encode())


@_fuzz(300)
@given(st.text(alphabet="[]{}&*!<>|-?:,'\"#%@ \n\tabc01.~\\", max_size=200))
def test_parse_yaml_raises_only_its_own_error(text):
    try:
        with time_limit(HARD_LIMIT):
            parse_yaml(text)
    except YamlSyntaxError as exc:
        assert exc.code in ("yaml.syntax", "yaml.too_large") and exc.message


# -- krt.yml from YAML data (what a library writes) ----------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=25),
    st.sampled_from(["py-greeter", "PyGreet", "public_input.proto"]),
)  # fmt: skip
data = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=30,
)


@_fuzz(60)
@given(data)
def test_arbitrary_yaml_data_as_krt_yml(value):
    _validate_bytes(yaml.safe_dump(value, allow_unicode=True).encode("utf-8", "surrogatepass"))


@_fuzz(60)
@given(data)
def test_arbitrary_data_overlaid_on_a_valid_manifest(value):
    base = yaml.safe_load(GREETER_YML)
    if isinstance(value, dict):
        base.update(value)
    else:
        base["nodes"] = value
    _validate_bytes(yaml.safe_dump(base, allow_unicode=True).encode("utf-8", "surrogatepass"))


# -- .krt archives as raw bytes ------------------------------------------------------------------


def _header(name: bytes, kind: bytes, size: int | bytes, link: bytes = b"") -> bytes:
    """A ustar header exactly as given (NUL bytes, absolute paths, absurd sizes included)."""
    h = bytearray(512)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108], h[108:116], h[116:124] = b"0000644\0", b"0000000\0", b"0000000\0"
    if isinstance(size, int):  # octal, or base-256 beyond 8 GiB as GNU tar writes it
        size = f"{size:011o}\0".encode() if size < 8**11 else b"\x80" + size.to_bytes(11, "big")
    h[124:136], h[136:148] = size[:12].ljust(12, b"\0"), b"00000000000\0"
    h[148:156], h[156:157], h[157:257] = b" " * 8, kind[:1] or b"\0", link[:100].ljust(100, b"\0")
    h[257:265] = b"ustar\x0000"
    h[148:156] = f"{sum(h):06o}\0 ".encode()
    return bytes(h)


def _pax(records: dict[str, bytes]) -> bytes:
    out = b""
    for key, value in records.items():
        body = b" " + key.encode() + b"=" + value + b"\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        out += str(n).encode() + body
    return out


def _entry(name: bytes, kind: bytes, payload: bytes, size, pax: dict[str, bytes] | None) -> bytes:
    pad = lambda b: b + b"\0" * (-len(b) % 512)  # noqa: E731
    out = b""
    if pax is not None:
        records = _pax(pax)
        out += _header(b"PaxHeader", b"x", len(records)) + pad(records)
    if len(name) > 100 and kind != b"L":
        out += _header(b"././@LongLink", b"L", len(name) + 1) + pad(name + b"\0")
    out += _header(name, kind, len(payload) if size is None else size, b"../../etc/passwd")
    return out + pad(payload)


def _greeter_entries() -> list[tuple[bytes, bytes, bytes, None, None]]:
    dirs = [(b"src/", b"5", b"", None, None), (b"src/py-greeter/", b"5", b"", None, None)]
    return dirs + [(p.encode(), b"0", d, None, None) for p, d in GREETER.items()]


NAMES = st.sampled_from(
    [
        b"krt.yml", b"krt.yaml", b"public_input.proto", b"src/", b"src/py-greeter/main.py",
        b"src/py-greeter/main.py/x", b"../evil", b"/abs", b"a/../../x", b"./krt.yml", b"a\0b",
        b"krt.yml\0.txt", b"x" * 200, b"\xff\xfe.py", b"", b".", b"./", b"docs/krt.yml",
        b"src/py-greeter/", b"d//e", b"C:\\x",
    ]
)  # fmt: skip
KINDS = st.sampled_from(list(b"0\x0012345673gxLKSVZ"))
PAYLOADS = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([*GREETER.values(), b"version: [\n", b"a: &a [*a]\n", _bomb().encode()]),
    st.sampled_from([1 << 20, 8 << 20]).map(bytes),  # a size bomb once compressed
    st.dictionaries(
        st.sampled_from(["path", "size", "linkpath", "GNU.sparse.size", "mtime"]),
        st.sampled_from([b"/etc/passwd", b"a\0b", b"99999999999999", b"-1", b"x" * 300]),
        min_size=1,
    ).map(_pax),
)
SIZES = st.one_of(
    st.none(), st.none(), st.sampled_from([0, 1, 8**11 - 1, 10**12, b"-1\0", b"zzzzzzzzzzz\0"])
)
PAXES = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["path", "size", "linkpath", "comment"]),
        st.sampled_from([b"krt.yml", b"/etc/passwd", b"../x", b"a\0b", b"9" * 30, b"\xff"]),
        max_size=2,
    ),
)


@st.composite
def krt_archives(draw) -> bytes:
    entries = draw(st.lists(st.tuples(NAMES, KINDS.map(lambda k: bytes([k])), PAYLOADS, SIZES,
                                      PAXES), max_size=5))  # fmt: skip
    if draw(st.booleans()):
        entries = _greeter_entries() + entries
    entries += [(f"n{i}".encode(), b"0", b"", None, None) for i in range(draw(
        st.sampled_from([0, 0, 0, 1500])))]  # fmt: skip
    tar = b"".join(_entry(*e) for e in entries) + draw(st.sampled_from([b"\0" * 1024, b"", b"x"]))
    how = draw(st.sampled_from(["gzip", "gzip", "gzip", "plain", "cut", "flip", "twice", "zlib"]))
    packed = gzip.compress(tar, compresslevel=1)
    blob = {"plain": tar, "zlib": zlib.compress(tar, 1), "twice": gzip.compress(packed)}
    blob = blob.get(how) or packed
    if how == "cut":
        blob = blob[: draw(st.integers(0, len(blob)))]
    elif how == "flip" and blob:
        at = draw(st.integers(0, len(blob) - 1))
        blob = blob[:at] + bytes([blob[at] ^ 0xFF]) + blob[at + 1 :]
    return blob


@_fuzz(80)
@given(krt_archives(), st.booleans())
def test_raw_archives_end_in_a_report_or_a_krtlab_error(tmp_path_factory, blob, as_version):
    path = tmp_path_factory.mktemp("fuzz") / "x.krt"
    path.write_bytes(blob)
    if as_version:
        version = _bounded(krt.load, path)
        report = _bounded(version.validate) if version is not None else None
    else:
        project = _bounded(load_project, path)
        report = _bounded(project.validate) if project is not None else None
    if report is not None:
        _check(report)


@_fuzz(60)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_a_krt(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "x.krt"
    path.write_bytes(blob)
    assert _bounded(load_project, path) is None  # no valid .krt is 400 random bytes


def test_a_tar_bomb_by_count_or_size_is_refused_without_reading_it_all():
    from krtlab.bundle.archive import read_krt

    many = gzip.compress(b"".join(_entry(f"f{i}".encode(), b"0", b"", None, None)
                                  for i in range(2000)))  # fmt: skip
    big = gzip.compress(_entry(b"zeros", b"0", bytes(64 << 20), None, None))
    for blob, limits in ((many, {"max_members": 1000}), (big, {"max_unpacked_bytes": 1 << 20})):
        try:
            with time_limit(HARD_LIMIT):
                read_krt(blob, **limits)
        except UnsafeArchiveError:
            continue
        raise AssertionError(f"not refused with {limits}")
    huge_header = gzip.compress(_entry(b"krt.yml", b"0", b"x", 10**12, None) + b"\0" * 1024)
    assert _bounded(read_krt, huge_header) is None
