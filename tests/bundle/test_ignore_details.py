""".krtignore details: edge cases of the pattern syntax, the paths given to ``ignored``, the
warnings, and the exact errors of the walk."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from krtlab.bundle import ignore
from krtlab.bundle.ignore import IGNORE_FILE, IgnoreRules, collect_files
from krtlab.errors import BundleError


def _rules(*patterns: str) -> IgnoreRules:
    return IgnoreRules(patterns, defaults=False)


def test_repeated_double_stars_are_one():
    r = _rules("a/**/**", "**/**/c.txt", "**/x/**")
    assert r.ignored("a/b") and r.ignored("a/b/c/d.txt")
    assert not r.ignored("a")
    assert r.ignored("c.txt") and r.ignored("d/e/c.txt") and not r.ignored("d/c.txt.bak")
    assert r.ignored("d/x/y") and r.ignored("x/y") and not r.ignored("x")
    assert _rules("**/**").ignored("anything") and _rules("**/**/**").ignored("a/b")


def test_many_double_stars_in_a_row_stay_fast():
    # without folding, each "**" more multiplies the ways a deep path can be split between them
    r = _rules("/".join(["**"] * 12 + ["z"]))
    assert not r.ignored("/".join(["a"] * 40 + ["b"]))
    assert r.ignored("/".join(["a"] * 40 + ["z"]))


def test_double_star_between_names_needs_them_both():
    r = _rules("x/**/y")
    assert r.ignored("x/y") and r.ignored("x/a/b/y")
    assert not r.ignored("x/a") and not r.ignored("y")


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("[X].txt", ["X.txt"], ["[X].txt", "x.txt"]),
        ("[!a]x", ["!x", "bx"], ["ax"]),
        ("[^a]x", ["^x", "bx"], ["ax"]),
        ("data[1.csv", ["data[1.csv"], ["data[", "data1.csv"]),
        ("[]]x", ["]x"], ["x"]),
        ("[a-c&~|]", ["b", "&", "~", "|"], ["d", "-"]),
    ],
)
def test_character_classes(pattern, yes, no):
    r = _rules(pattern)
    assert [p for p in yes if not r.ignored(p)] == []
    assert [p for p in no if r.ignored(p)] == []


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir"),
    [
        ("/Xfile", "Xfile", False),
        ("dataX/", "dataX", True),
        ("./Xa", "Xa", False),
        (".//a", "a", False),
        ("././b", "b", False),
        ("//c//", "c", True),
    ],
)
def test_slashes_and_dots_around_a_pattern(pattern, path, is_dir):
    r = _rules(pattern)
    assert r.ignored(path, is_dir=is_dir)
    assert not r.ignored(path.lstrip("X") + "2", is_dir=is_dir)


def test_root_patterns_match_nothing():
    r = _rules("/", "./", ".//", "//")
    assert not r.ignored("a") and not r.ignored("a", is_dir=True) and not r.ignored("a/b")


def test_paths_given_to_ignored():
    r = _rules("data", "Xa", "*/")
    assert r.ignored("/data/") and r.ignored("data/x.csv/") and r.ignored("./data")
    assert r.ignored("Xa") and not r.ignored("a")
    assert not r.ignored("a.txt")  # "*/" names folders only
    assert r.ignored("a.txt", is_dir=True) and r.ignored("a/b.txt")
    star = _rules("*")
    assert not star.ignored("") and not star.ignored(".") and not star.ignored("/")
    assert not star.ignored("./") and star.ignored("x")


def test_negation_warning_text():
    r = IgnoreRules(["# c", "", "!keep.csv", "*.csv", "  !x/  "])
    assert r.warnings == (
        "line 3: '!keep.csv': '!' negation is not supported by kli's .krtignore; "
        "the pattern matches names starting with '!'",
        "line 5: '!x/': '!' negation is not supported by kli's .krtignore; "
        "the pattern matches names starting with '!'",
    )
    assert r.patterns == ("!keep.csv", "*.csv", "!x/")


def test_parse_applies_the_defaults_unless_told():
    assert IgnoreRules.parse("x").ignored("a.krt")
    assert not IgnoreRules.parse("x", defaults=False).ignored("a.krt")
    assert IgnoreRules.parse("x", defaults=False).ignored("x")


def test_a_krtignore_with_a_byte_order_mark(tmp_path):
    (tmp_path / IGNORE_FILE).write_bytes("\ufeff*.csv\nb.txt\n".encode())
    r = IgnoreRules.from_dir(tmp_path)
    assert r.patterns == ("*.csv", "b.txt")
    assert r.ignored("a.csv") and r.ignored("b.txt")


def test_a_symlink_to_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "target.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target.txt")
    with pytest.raises(BundleError, match=r"link is a symbolic link"):
        collect_files(tmp_path, _rules("link/"))  # names folders only: the link is not one
    assert collect_files(tmp_path, _rules("link")) == ["target.txt"]


def test_a_symlink_to_a_folder_is_a_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert collect_files(tmp_path, _rules("link/")) == ["real/a.txt"]


class _Entries:
    def __init__(self, entries):
        self.entries = entries

    def __enter__(self):
        return iter(self.entries)

    def __exit__(self, *exc):
        return False


class _Entry:
    def __init__(self, name, exc):
        self.name, self.exc = name, exc

    def stat(self, *, follow_symlinks=True):
        raise self.exc

    def is_dir(self):
        return False


@pytest.mark.parametrize(
    ("exc", "shown"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
        (OSError("weird failure"), "weird failure"),
    ],
)
def test_a_folder_that_cannot_be_listed(tmp_path: Path, monkeypatch, exc, shown):
    (tmp_path / "sub").mkdir()
    real = os.scandir

    def scandir(path):
        if Path(path) == tmp_path / "sub":
            raise exc
        return real(path)

    monkeypatch.setattr(ignore.os, "scandir", scandir)
    with pytest.raises(BundleError) as info:
        collect_files(tmp_path, _rules())
    assert str(info.value) == f"cannot list {tmp_path / 'sub'}: {shown}"
    assert info.value.__cause__ is exc


@pytest.mark.parametrize(
    ("exc", "shown"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
        (OSError("weird failure"), "weird failure"),
    ],
)
def test_an_entry_that_cannot_be_read(tmp_path: Path, monkeypatch, exc, shown):
    (tmp_path / "sub").mkdir()
    real = os.scandir

    def scandir(path):
        if Path(path) == tmp_path / "sub":
            return _Entries([_Entry("gone.txt", exc)])
        return real(path)

    monkeypatch.setattr(ignore.os, "scandir", scandir)
    with pytest.raises(BundleError) as info:
        collect_files(tmp_path, _rules())
    assert str(info.value) == f"cannot stat {tmp_path / 'sub' / 'gone.txt'}: {shown}"
    assert info.value.__cause__ is exc
