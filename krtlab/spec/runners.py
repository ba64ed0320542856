"""What each ``konstellation/kre-py:<tag>`` runner image gives a node.

Read from the runner's own repository at each tag (``konstellation-io/kre-runners``,
``kre-py/Dockerfile``, ``kre-py/requirements.txt``, ``kre-py/src/context.py``, ``main.py`` and
``compression.py``): the image's Python, the packages it pins (shipped with krtlab as
``krtlab/data/kre-py/requirements-*.txt``) and the ``ctx`` its runner hands to nodes.

==================  ======  =============================  =====================================
tags                Python  pins                           ``ctx`` beyond 1.23's
==================  ======  =============================  =====================================
1.23.0 – 1.23.1     3.7     requirements-1.23.x.txt        —
1.24.0              3.7     requirements-1.24.0.txt        —
1.24.1              3.7     requirements-1.24.1-2.0.0.txt  —
1.25.0 – 1.25.2     3.7     requirements-1.24.1-2.0.0.txt  ``reply``
1.26.0 – 2.0.0      3.9     requirements-1.24.1-2.0.0.txt  ``reply``
2.1.0 – 2.1.1       3.9     requirements-2.1.x.txt         ``early_reply`` (renamed)
2.1.2 – 2.1.5       3.9     requirements-2.1.x.txt         ``early_reply``, ``early_exit``
==================  ======  =============================  =====================================

A custom image built ``FROM`` one of these gives what that tag gives (plus its own packages).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources

__all__ = ["KRE_PY", "Runner", "known_tags", "kre_py_runner", "kre_py_tag", "normalize"]
__all__ += ["requirement_name"]

KRE_PY = "konstellation/kre-py"
#: ctx members every kre-py 1.x/2.x runner gives
_BASE_CTX = frozenset({"logger", "path", "set", "get", "db", "measurement", "prediction"})

# (first tag, last tag): (python, pins file, ctx beyond the base, compression text style)
_RANGES: list[tuple[str, str, tuple[int, int], str, frozenset[str], str]] = [
    ("1.23.0", "1.23.1", (3, 7), "1.23.x", frozenset(), "1mb"),
    ("1.24.0", "1.24.0", (3, 7), "1.24.0", frozenset(), "1mb"),
    ("1.24.1", "1.24.1", (3, 7), "1.24.1-2.0.0", frozenset(), "1mb"),
    ("1.25.0", "1.25.1", (3, 7), "1.24.1-2.0.0", frozenset({"reply"}), "1mb"),
    ("1.25.2", "1.25.2", (3, 7), "1.24.1-2.0.0", frozenset({"reply"}), "kb"),
    ("1.26.0", "2.0.0", (3, 9), "1.24.1-2.0.0", frozenset({"reply"}), "kb"),
    ("2.1.0", "2.1.1", (3, 9), "2.1.x", frozenset({"early_reply"}), "kb"),
    ("2.1.2", "2.1.5", (3, 9), "2.1.x", frozenset({"early_reply", "early_exit"}), "kb"),
]
#: the tags of kre-runners in those ranges (a tag outside them is unknown to krtlab)
_TAGS = (
    "1.23.0 1.23.1 1.24.0 1.24.1 1.25.0 1.25.1 1.25.2 1.26.0 1.27.0 1.27.1 1.27.2 1.27.3 1.27.4 "
    "1.28.0 1.28.1 1.29.0 2.0.0 2.1.0 2.1.1 2.1.2 2.1.3 2.1.4 2.1.5"
).split()

#: import names of the pinned distributions (and of what pip itself brings)
_IMPORTS = {
    "asyncio-nats-client": ("nats",),
    "nats-py": ("nats",),
    "future": ("future", "past", "libfuturize", "libpasteurize", "builtins"),
    "influxdb-client": ("influxdb_client",),
    "opencv-python": ("cv2",),
    "pillow": ("PIL",),
    "protobuf": ("google",),
    "pymongo": ("pymongo", "bson", "gridfs"),
    "python-dateutil": ("dateutil",),
    "rx": ("rx",),
    "scikit-learn": ("sklearn",),
    "smart-open": ("smart_open",),
    "setuptools": ("setuptools", "pkg_resources", "_distutils_hack"),
}
_ALWAYS = {"setuptools": "", "pip": ""}  # in every image, unpinned


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _import_names(dist: str) -> tuple[str, ...]:
    """The top-level names distribution ``dist`` (normalized) installs: the known ones, else its
    name with ``_`` for ``-``."""
    return _IMPORTS.get(dist, (dist.replace("-", "_"),))


def normalize(dist: str) -> str:
    """PEP 503 normal form of a distribution name (``Pillow`` -> ``pillow``)."""
    return re.sub(r"[-_.]+", "-", dist).lower()


# a PEP 508 name, then the end or what may follow a name (extras, a version, markers, a URL)
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:$|[\[(<>=!~;@,])")


def requirement_name(line: str) -> str | None:
    """The distribution a requirements.txt line names, as written (``lightgbm==4.5.0`` ->
    ``lightgbm``); None for a line that names none (a pip option, a path, a URL, a comment)."""
    match = _REQUIREMENT.match(line)
    return match.group(1) if match else None


@functools.lru_cache(maxsize=8)
def _pins(name: str) -> dict[str, str]:
    text = resources.files("krtlab").joinpath(f"data/kre-py/requirements-{name}.txt").read_text()
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            dist, version = line.split("==", 1)
            pins[normalize(dist)] = version.strip()
    return pins


@dataclass(frozen=True)
class Runner:
    """The runner of one ``konstellation/kre-py`` tag: its Python, pins and ``ctx``.

    Attributes:
        image: ``konstellation/kre-py:<tag>`` (the stock image; for a custom image, its base).
        tag: the tag, e.g. ``1.23.0``.
        python: the image's Python, e.g. ``(3, 7)``.
        pins_file: which requirements file the tag installs.
        ctx: the members of the ``ctx`` its nodes get.
        compression: ``"1mb"`` (``... allowed of 1 MB.``) or ``"kb"`` (sizes in KB), the
            wording of the runner's refusal of a message still over 1 MiB gzipped.
        user: see :attr:`user`.
    """

    image: str
    tag: str
    python: tuple[int, int]
    pins_file: str
    ctx: frozenset[str] = field(default=_BASE_CTX)
    compression: str = "1mb"

    @property
    def user(self) -> str:
        """The user the image runs as: root up to 1.23.x, ``kre`` from 1.24.0 (``USER kre``)."""
        return "root" if _version(self.tag) < (1, 24, 0) else "kre"

    @property
    def python_text(self) -> str:
        return ".".join(map(str, self.python))

    @property
    def pins(self) -> dict[str, str]:
        """Distribution (normalized name) -> pinned version."""
        return dict(_pins(self.pins_file))

    @functools.cached_property
    def imports(self) -> frozenset[str]:
        """Top-level import names the image's packages provide."""
        names: set[str] = set()
        for dist in [*self.pins, *_ALWAYS]:
            names.update(_import_names(dist))
        return frozenset(names)

    def import_names(self) -> dict[str, frozenset[str]]:
        """Pinned distribution -> the top-level import names it provides."""
        return {d: frozenset(_import_names(d)) for d in self.pins}

    def compression_error(self, compressed_size: int) -> str:
        """The runner's own text refusing a message still over 1 MiB once gzipped."""
        if self.compression == "1mb":
            return "compressed message exceeds maximum size allowed of 1 MB."
        return (
            f"compressed message {compressed_size / 1024:.2f} KB exceeds maximum size allowed "
            f"of {1024 * 1024 / 1024:.2f} KB."
        )

    def __str__(self) -> str:
        return f"kre-py:{self.tag} (Python {self.python_text})"


def known_tags() -> tuple[str, ...]:
    """The kre-py tags krtlab knows (those of the KRT V1 era)."""
    return tuple(_TAGS)


def kre_py_tag(image: str) -> str | None:
    """The tag of a ``konstellation/kre-py`` image as written (``""`` without one); None for
    other images."""
    from krtlab.spec.rules import image_repository

    if image_repository(image) != KRE_PY:
        return None
    return image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]


def kre_py_runner(image: str) -> Runner | None:
    """The runner of a stock ``konstellation/kre-py:<tag>`` image; None for other images and
    for tags krtlab does not know (``latest``, 3.x: KRT v2 runners)."""
    tag = kre_py_tag(image)
    if tag not in _TAGS:
        return None
    for first, last, python, pins, ctx, compression in _RANGES:
        if _version(first) <= _version(tag) <= _version(last):
            return Runner(f"{KRE_PY}:{tag}", tag, python, pins, _BASE_CTX | ctx, compression)
    return None  # pragma: no cover - every listed tag is in a range
