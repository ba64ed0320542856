"""``.krtignore`` rules and the walk that collects a project's files for a ``.krt``.

Semantics follow ``kli krt create`` (``krt-utils`` builder), which matches each pattern with
``zglob`` against the path relative to the project root:

* Patterns are **anchored at the project root**: ``*.csv`` excludes ``a.csv`` but not
  ``data/a.csv``; write ``**/*.csv`` for any depth. A leading ``/`` is accepted and changes
  nothing (it reads as "anchored", which every pattern already is); a leading ``./`` is dropped.
* ``*`` matches within one path component (no ``/``), ``**`` as a whole component matches zero or
  more directories; ``?`` and ``[...]``/``[!...]`` match one character as in :mod:`fnmatch`
  (kli's zglob takes those literally; they are extensions).
* A pattern that matches a directory excludes everything below it (kli expands an existing
  directory ``d`` to ``d**/*``). A trailing ``/`` restricts a pattern to directories.
* One pattern per line; blank lines and lines starting with ``#`` are skipped; surrounding
  whitespace (including a Windows ``\\r``) is stripped. There is no ``!`` negation in kli: such a
  line matches a name starting with ``!`` literally, and is reported in
  :attr:`IgnoreRules.warnings`.
* Matching is case-sensitive, as on the Linux hosts KRE runs on.

Where kli differs by accident it is not copied: its directory expansion ``d**/*`` also drops
``database.csv`` next to a directory ``data``; krtlab only drops what is inside ``data/``.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from krtlab.errors import BundleError

__all__ = ["DEFAULT_EXCLUDES", "IGNORE_FILE", "IgnoreRules", "collect_files"]

#: The file kli reads ignore patterns from, at the project root.
IGNORE_FILE = ".krtignore"

#: Always excluded unless ``defaults=False``: build outputs (KRE's ``build_krt.sh`` runs
#: ``tar --exclude=*.krt --exclude=*.tar.gz``, which applies at any depth), Python and Jupyter
#: caches, git metadata, krtlab's own marker, and local-run state that must never ship: ``.env``
#: files (config values, often secrets: KRE sets them, not the bundle) and ``.krtlab-data/``.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    "**/*.krt",
    "**/*.tar.gz",
    "**/__pycache__/",
    "**/*.pyc",
    "**/.ipynb_checkpoints/",
    "**/.git/",
    "**/.krtlab",
    "**/.env",
    "**/.krtlab-data/",
)


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        c = segment[i]
        i += 1
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = i
            if j < n and segment[j] in "!^":
                j += 1
            if j < n and segment[j] == "]":
                j += 1
            while j < n and segment[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(re.escape(c))
                continue
            body = segment[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            # Escape what is special inside a Python class (and set-operation pairs it warns on).
            body = "".join("\\" + ch if ch in "\\]^[&~|" else ch for ch in body)
            # A class never matches "/", so it cannot reach across directories.
            out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


def _compile(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            if not last and segments[index + 1] == "**":
                continue  # "**/**" is the same as "**": the last one decides
            # A trailing "**" matches one level; anything deeper is inside a matched directory.
            parts.append("[^/]+" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z")


class IgnoreRules:
    """Which project files stay out of a ``.krt`` (see the module docstring for the syntax).

    Args:
        patterns: ``.krtignore`` patterns (comments and blank entries are skipped).
        defaults: also apply :data:`DEFAULT_EXCLUDES`.

    Attributes:
        patterns: the user's patterns, cleaned, in order.
        defaults: whether :data:`DEFAULT_EXCLUDES` apply.
        warnings: notes on lines that probably do not do what their author meant.
    """

    def __init__(self, patterns: Iterable[str] = (), *, defaults: bool = True) -> None:
        if isinstance(patterns, str):  # one pattern string would otherwise iterate by character
            patterns = patterns.splitlines()
        self.defaults = defaults
        cleaned: list[str] = []
        notes: list[str] = []
        for lineno, raw in enumerate(patterns, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("!"):
                notes.append(
                    f"line {lineno}: {line!r}: '!' negation is not supported by kli's .krtignore; "
                    "the pattern matches names starting with '!'"
                )
            cleaned.append(line)
        self.patterns: tuple[str, ...] = tuple(cleaned)
        self.warnings: tuple[str, ...] = tuple(notes)
        self._rules = [self._rule(p) for p in (*(DEFAULT_EXCLUDES if defaults else ()), *cleaned)]

    @staticmethod
    def _rule(pattern: str) -> tuple[re.Pattern[str], bool]:
        dir_only = pattern.endswith("/")
        body = pattern.lstrip("/").rstrip("/")
        while body.startswith("./"):
            body = body[2:].lstrip("/")
        # "/" alone (or "./") would name the root itself: its empty pattern matches no path.
        return _compile(body), dir_only

    @classmethod
    def parse(cls, text: str, *, defaults: bool = True) -> IgnoreRules:
        """Build rules from the text of a ``.krtignore`` file.

        Args:
            text: the file content; one pattern per line.
            defaults: also apply :data:`DEFAULT_EXCLUDES`.

        Returns:
            The rules.
        """
        return cls(text.splitlines(), defaults=defaults)

    @classmethod
    def from_dir(cls, root: str | Path, *, defaults: bool = True) -> IgnoreRules:
        """Read ``<root>/.krtignore`` if it exists (only the defaults apply otherwise).

        Args:
            root: the project directory.
            defaults: also apply :data:`DEFAULT_EXCLUDES`.

        Returns:
            The rules.

        Raises:
            BundleError: the file exists but cannot be read or is not UTF-8 text.
        """
        path = Path(root) / IGNORE_FILE
        try:
            text = path.read_text(encoding="utf-8-sig")  # tolerate a BOM from Windows editors
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise BundleError(f"cannot read {path}: {exc}") from exc
        return cls.parse(text, defaults=defaults)

    def ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether ``rel_path`` (relative to the project root, ``/``-separated) is excluded.

        A path is also excluded when one of its parent directories is.

        Args:
            rel_path: the path to test, e.g. ``src/node/data.csv``.
            is_dir: ``rel_path`` is a directory (patterns ending in ``/`` match only those).

        Returns:
            True if the path stays out of the ``.krt``.
        """
        path = rel_path.replace(os.sep, "/").strip("/")
        while path.startswith("./"):
            path = path[2:]
        if not path or path == ".":
            return False
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            candidate = "/".join(parts[:i])
            candidate_is_dir = is_dir or i < len(parts)
            for regex, dir_only in self._rules:
                if (candidate_is_dir or not dir_only) and regex.match(candidate):
                    return True
        return False

    def __repr__(self) -> str:
        return f"IgnoreRules({list(self.patterns)!r}, defaults={self.defaults})"


def collect_files(root: str | Path, rules: IgnoreRules | None = None) -> list[str]:
    """List the files of a project that go into its ``.krt``.

    Ignored directories are skipped without being read. Symbolic links and special files
    (FIFOs, sockets, devices) that are not ignored are refused: KRE's extractor can only create
    directories and regular files.

    Args:
        root: the project directory.
        rules: the ignore rules; by default ``<root>/.krtignore`` plus :data:`DEFAULT_EXCLUDES`.

    Returns:
        Sorted relative POSIX paths of the regular files to package.

    Raises:
        BundleError: ``root`` is not a directory, a link or special file would be packaged, a
            file name is not valid UTF-8, or a directory cannot be read.
    """
    base = Path(root)
    if not base.is_dir():
        raise BundleError(f"{base} is not a directory")
    if rules is None:
        rules = IgnoreRules.from_dir(base)
    found: list[str] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(base / rel_dir) as it:
                entries = list(it)
        except OSError as exc:
            raise BundleError(f"cannot list {base / rel_dir}: {exc.strerror or exc}") from exc
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
                is_dir = stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and entry.is_dir())
            except OSError as exc:
                raise BundleError(f"cannot stat {base / rel}: {exc.strerror or exc}") from exc
            if rules.ignored(rel, is_dir=is_dir):
                continue
            _check_name(base, rel)
            if stat.S_ISLNK(mode):
                raise BundleError(
                    f"{base / rel} is a symbolic link; KRE cannot extract links from a .krt. "
                    f"Replace it with a copy of its target or add {rel!r} to {IGNORE_FILE}"
                )
            if stat.S_ISDIR(mode):
                pending.append(rel)
            elif stat.S_ISREG(mode):
                found.append(rel)
            else:
                raise BundleError(
                    f"{base / rel} is not a regular file (FIFO, socket or device); a .krt can "
                    f"only hold regular files. Add {rel!r} to {IGNORE_FILE}"
                )
    return sorted(found)


def _check_name(base: Path, rel: str) -> None:
    try:
        rel.encode()
    except UnicodeEncodeError:
        raise BundleError(
            f"{base / rel!r}: file name is not valid UTF-8; rename it or add it to {IGNORE_FILE}"
        ) from None
