"""Version names built from a base and a semver tag, and the name of the next version.

KRE wants a version name to be a resource name (``^[a-z0-9]([-a-z0-9]*[a-z0-9])?$``) of at
most 19 characters (``lt=20``), unique in its runtime. Dots are not allowed, so a tag has to be
written another way, and stripping the dots (``v142``) gives 1.4.12 and 1.41.2 the same name.
Here a name is ``<base>-<version part>``, where the version part is ``v`` then the tag with
``-`` for each ``.`` and ``--`` for the ``+`` of build metadata:

======================  ====================  =========================================
tag                     version part          ``version_name("price-estimator", tag)``
======================  ====================  =========================================
``1.4.2``, ``v1.4.2``   ``v1-4-2``            ``price-estima-v1-4-2``
``1.4.12``              ``v1-4-12``           ``price-estim-v1-4-12``
``1.41.2``              ``v1-41-2``           ``price-estim-v1-41-2``
``2.0.0-rc.1``          ``v2-0-0-rc-1``       ``price-e-v2-0-0-rc-1``
``1.0.0+build5``        ``v1-0-0--build5``    ``pric-v1-0-0--build5``
``3``                   ``v3``                ``price-estimator-v3``
======================  ====================  =========================================

The version part is kept whole and the base gets the characters left (see
:func:`version_name`). :func:`bump_name` reads the version back from a name and writes the
next one; :func:`next_free_name` finds the first one a runtime does not have yet.

Every function here is pure (no I/O); they raise :class:`~krtlab.errors.SpecError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from krtlab.errors import SpecError

from .rules import KRE_NAME_LT, MAX_NAME_LENGTH, RESOURCE_NAME, check_resource_name
from .suggest import did_you_mean

__all__ = [
    "PARTS",
    "Tag",
    "bump_name",
    "default_part",
    "next_free_name",
    "parse_tag",
    "split_version_name",
    "version_name",
]

PARTS = ("major", "minor", "patch", "pre")
_CORE_PARTS = ("major", "minor", "patch")
_FORM = "MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD], e.g. '1.4.2' or '2.0.0-rc.1'"
_LIMIT = f"a KRE name has at most {MAX_NAME_LENGTH} characters (lt={KRE_NAME_LT})"

_TAG_RE = re.compile(
    r"^(?P<core>\d+(?:\.\d+)*)"
    r"(?:-(?P<pre>[0-9a-z-]+(?:\.[0-9a-z-]+)*))?"
    r"(?:\+(?P<build>[0-9a-z-]+(?:\.[0-9a-z-]+)*))?$"
)
_LOOSE_TAG_RE = re.compile(r"\d+(?:[._]\d+)*(?:-[0-9a-z.]+)?(?:\+[0-9a-z.]+)?")
# <base>-v<core>[-<pre>][--<build>]; the greedy base makes the split the rightmost one possible
_NAME_RE = re.compile(
    rf"^(?:(?P<base>{RESOURCE_NAME})-)?"
    r"v(?P<core>\d+(?:-\d+){0,2})"
    r"(?P<pre>(?:-[a-z0-9]+)*)"
    r"(?:--(?P<build>[a-z0-9]+(?:-[a-z0-9]+)*))?$"
)
_LOOKS_LIKE_START = re.compile(r"^v\d+$")  # an identifier that would read as "v<major>"


@dataclass(frozen=True)
class Tag:
    """A version tag: its numbers (1 to 3, as written), pre-release and build identifiers."""

    core: tuple[str, ...]
    pre: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The tag in semver spelling: ``2.0.0-rc.1+build5``."""
        text = ".".join(self.core)
        if self.pre:
            text += "-" + ".".join(self.pre)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    @property
    def part(self) -> str:
        """The tag as the end of a name: ``v2-0-0-rc-1--build5``."""
        text = "v" + "-".join(self.core)
        if self.pre:
            text += "-" + "-".join(self.pre)
        if self.build:
            text += "--" + "-".join(self.build)
        return text

    def bumped(self, part: str = "patch") -> Tag:
        """The next version, semver's way (build metadata is dropped).

        ``major``/``minor``/``patch`` add one to that number and zero the ones after it; a
        number the tag does not write counts as 0 and is written (``1`` → ``1.0.1`` for patch).
        A pre-release becomes its release when the numbers after ``part`` are all 0
        (``2.0.0-rc.1`` → ``2.0.0`` for major, minor or patch). ``pre`` adds one to the last
        numeric pre-release identifier (``rc.1`` → ``rc.2``), or appends ``.1`` (``rc`` →
        ``rc.1``).
        """
        if part not in PARTS:
            hint = did_you_mean(part, PARTS) or f"the parts are {', '.join(PARTS)}"
            raise SpecError(f"no part {part!r} to bump; {hint}")
        if part == "pre":
            if not self.pre:
                raise SpecError(
                    f"version {self.text} has no pre-release to bump: bump 'patch', 'minor' or "
                    "'major'"
                )
            ids = list(self.pre)
            numeric = [k for k, ident in enumerate(ids) if ident.isdigit()]
            if numeric:
                ids[numeric[-1]] = str(int(ids[numeric[-1]]) + 1)
            else:
                ids.append("1")
            return Tag(self.core, tuple(ids))
        index = _CORE_PARTS.index(part)
        nums = [int(n) for n in self.core] + [0] * (3 - len(self.core))
        if not (self.pre and not any(nums[index + 1 :])):
            nums[index] += 1
            nums[index + 1 :] = [0] * (2 - index)
        width = max(len(self.core), index + 1)
        return Tag(tuple(str(n) for n in nums[:width]))


def parse_tag(version: object) -> Tag:
    """Read a semver-ish tag: ``MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]``.

    A leading ``v`` and upper case are accepted (``V2.0.0-RC.1`` is ``2.0.0-rc.1``). Refused,
    each with what to write instead: more than three numbers, a ``-`` inside a pre-release or
    build identifier (``rc-1`` would be written like ``rc.1``), an identifier ``v<digits>``
    (it would read as the start of the version), and a numeric pre-release after fewer than
    three numbers (``1.0-1`` would be written like ``1.0.1``): these would make two tags one
    name.
    """
    if isinstance(version, float):
        raise SpecError(
            f"version {version!r} is a float, which loses digits (1.10 is 1.1): "
            f"pass the tag as a string, e.g. {str(version)!r}"
        )
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str):
        raise SpecError(f"version must be a tag string ({_FORM}), got {version!r}")
    text = version.strip().lower()
    if re.match(r"^v\d", text):
        text = text[1:]
    m = _TAG_RE.match(text)
    if m is None:
        raise SpecError(f"version {version!r} is not a version tag: expected {_FORM}" +
                        _tag_hint(version))  # fmt: skip
    core = tuple(m["core"].split("."))
    pre = tuple(m["pre"].split(".")) if m["pre"] else ()
    build = tuple(m["build"].split(".")) if m["build"] else ()
    if len(core) > 3:
        fixed = Tag(core[:3], core[3:] + pre, build).text
        raise SpecError(
            f"version {version!r} has {len(core)} numbers; a tag has at most MAJOR.MINOR.PATCH "
            f"(then -PRERELEASE or +BUILD): did you mean {fixed!r}?"
        )
    for kind, ids in (("pre-release", pre), ("build", build)):
        hyphenated = [i for i in ids if "-" in i]
        if hyphenated:
            fixed = Tag(core, _undash(pre), _undash(build)).text
            raise SpecError(
                f"version {version!r}: a '-' inside the {kind} identifier {hyphenated[0]!r} "
                "would be written like a '.' in the name (rc-1 and rc.1 would get the same "
                f"name): did you mean {fixed!r}?"
            )
        start = [i for i in ids if _LOOKS_LIKE_START.match(i)]
        if start:
            fixed = Tag(core, _unv(pre), _unv(build)).text
            raise SpecError(
                f"version {version!r}: the {kind} identifier {start[0]!r} would read as the "
                f"start of the version in the name: did you mean {fixed!r}?"
            )
    if pre and len(core) < 3 and pre[0].isdigit():
        fixed = Tag(core + ("0",) * (3 - len(core)), pre, build).text
        raise SpecError(
            f"version {version!r}: a numeric pre-release after fewer than three numbers would "
            f"be written like one more number ({Tag(core + pre[:1]).text}): did you mean "
            f"{fixed!r}?"
        )
    return Tag(core, pre, build)


def _undash(ids: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p for i in ids for p in i.split("-") if p)


def _unv(ids: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(i[1:] if _LOOKS_LIKE_START.match(i) else i for i in ids)


def _tag_hint(version: str) -> str:
    m = _LOOSE_TAG_RE.search(version.lower())
    if m is None:
        return ""
    guess = m.group(0).replace("_", ".").rstrip(".")
    try:
        parse_tag(guess)
    except SpecError:
        return ""
    return f"; did you mean {guess!r}?"  # never the version itself: parse_tag refused that


def _base(base: object) -> str:
    if not isinstance(base, str):
        raise SpecError(f"base must be a string such as 'price-estimator', got {base!r}")
    name = re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")
    if not name:
        raise SpecError(f"base {base!r} has no letters or digits to name a version with")
    return name


def version_name(base: str, version: str) -> str:
    """A valid KRE version name for ``version`` of ``base``: ``<base>-v<tag>``.

    ``version_name("price-estimator", "1.4.2")`` is ``price-estima-v1-4-2``.

    The version part is ``v`` and the tag with ``-`` for ``.`` and ``--`` for ``+``
    (``2.0.0-rc.1`` → ``v2-0-0-rc-1``, ``1.0.0+build5`` → ``v1-0-0--build5``); a leading
    ``v`` of the tag is dropped first and the tag is read case-insensitively (see
    :func:`parse_tag` for what it accepts). It is always kept whole, so two different tags
    never give the same name for a base (1.4.12 → ``…-v1-4-12``, 1.41.2 → ``…-v1-41-2``).

    The base is lowercased, every run of other characters than ``a-z0-9`` (``_``, spaces,
    dots) becomes one ``-``, and it is then **cut to the characters left**: its first
    ``19 - 1 - len(version part)`` characters, without a ``-`` left at the end
    (``price-estimator`` → ``price-estima`` before ``-v1-4-2``, ``price-estim`` before
    ``-v1-4-12``). A version part of 18 or 19 characters leaves no room: the name is the
    version part alone.

    Deterministic and pure. Raises :class:`SpecError` for a tag that is not one, and for a
    version part longer than 19 characters (what could be cut instead is suggested).
    """
    return _compose(_base(base), parse_tag(version), str(version))


def _compose(base: str, tag: Tag, asked: str) -> str:
    part = tag.part
    if len(part) > MAX_NAME_LENGTH:
        raise SpecError(
            f"cannot name {asked!r} of {base or 'this version'!r}: its version part {part!r} "
            f"is {len(part)} characters and {_LIMIT}, even without the base; " + _shorter(tag)
        )
    room = MAX_NAME_LENGTH - len(part) - 1
    cut = base[:room].rstrip("-") if room > 0 else ""
    name = f"{cut}-{part}" if cut else part
    reason = check_resource_name(name)
    if reason:  # cannot happen: the parts are valid by construction
        raise SpecError(f"version name {name!r} {reason}")
    return name


def _shorter(tag: Tag) -> str:
    """``did you mean '2.0.0-rc.1' (without the build metadata)?`` when dropping fits."""
    for shorter, what in (
        (Tag(tag.core, tag.pre), "without the build metadata"),
        (Tag(tag.core), "without the pre-release and build"),
    ):
        if shorter != tag and len(shorter.part) <= MAX_NAME_LENGTH:
            return f"did you mean {shorter.text!r} ({what})?"
    return "use a shorter tag"


def split_version_name(name: str) -> tuple[str, Tag] | None:
    """``("price-estima", Tag("1", "4", "2"))`` for ``price-estima-v1-4-2``; None when the
    name does not end in a version part. The base is ``""`` when the name is the version part
    alone. The last ``-v<number>`` that starts a valid version part is the split."""
    m = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        return None
    pre = tuple(m["pre"][1:].split("-")) if m["pre"] else ()
    build = tuple(m["build"].split("-")) if m["build"] else ()
    return m["base"] or "", Tag(tuple(m["core"].split("-")), pre, build)


def _split_or_refuse(name: str) -> tuple[str, Tag]:
    found = split_version_name(name)
    if found is None:
        example = version_name(name, "1.0.0") if _safe_base(name) else "greeter-v1-0-0"
        raise SpecError(
            f"cannot bump {name!r}: the name carries no version (it should end in "
            f"-v<MAJOR>[-<MINOR>[-<PATCH>]], as krt.version_name(base, '1.0.0') gives: "
            f"{example!r})"
        )
    return found


def _safe_base(name: object) -> bool:
    return isinstance(name, str) and bool(re.search(r"[A-Za-z0-9]", name))


def bump_name(name: str, part: str = "patch") -> str:
    """The name of the next version: ``price-estima-v1-4-2`` → ``price-estima-v1-4-3``.

    ``part`` is ``"patch"``, ``"minor"``, ``"major"`` or ``"pre"`` (see :meth:`Tag.bumped`:
    ``greeter-v1`` → ``greeter-v1-0-1``, ``greeter-v1-1``, ``greeter-v2``). The base is kept
    as the name has it, and cut further if the new version part is longer. SpecError when the
    name carries no version.
    """
    base, tag = _split_or_refuse(name)
    try:
        new = tag.bumped(part)
    except SpecError as exc:
        raise SpecError(f"cannot bump {name!r}: {exc}") from None
    return _compose(base, new, new.text)


def default_part(name: str) -> str | None:
    """The finest part ``name`` writes: ``"pre"`` with a pre-release, else ``"patch"``,
    ``"minor"`` or ``"major"`` for 3, 2 or 1 numbers; None without a version."""
    found = split_version_name(name)
    if found is None:
        return None
    tag = found[1]
    return "pre" if tag.pre else _CORE_PARTS[len(tag.core) - 1]


def next_free_name(name: str, taken: Iterable[str], part: str | None = None) -> str:
    """The first name after ``name`` that is not in ``taken``, bumping ``part`` (default: the
    finest part the name writes, :func:`default_part`, so ``greeter-v1`` → ``greeter-v2`` and
    ``x-v2-0-0-rc-1`` → ``x-v2-0-0-rc-2``). A name without a version counts as the first
    one: ``greeter`` → ``greeter-v2``."""
    taken = set(taken)
    if split_version_name(name) is None:
        candidate, part = version_name(name, "2"), part or "major"
    else:
        part = part or default_part(name) or "patch"
        candidate = bump_name(name, part)
    while candidate in taken:  # each bump is a later version, so a new name: this ends
        candidate = bump_name(candidate, part)
    return candidate
