"""Tests for krtlab.bundle.ignore: .krtignore semantics and collecting a project's files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from krtlab.bundle import ignore as ignore_mod
from krtlab.bundle.ignore import DEFAULT_EXCLUDES, IgnoreRules, collect_files
from krtlab.errors import BundleError


def rules(text: str, defaults: bool = False) -> IgnoreRules:
    return IgnoreRules.parse(text, defaults=defaults)


def test_comments_blank_lines_and_whitespace_are_skipped() -> None:
    r = rules("# a comment\n\n   \n  *.csv  \r\n#*.txt\n")
    assert r.patterns == ("*.csv",)
    assert r.ignored("a.csv")
    assert not r.ignored("a.txt")
    assert not r.ignored("# a comment")


def test_patterns_are_anchored_at_the_root_like_kli() -> None:
    r = rules("*.csv\n")
    assert r.ignored("train.csv")
    assert not r.ignored("data/train.csv"), "kli's zglob anchors *.csv at the project root"
    anywhere = rules("**/*.csv\n")
    assert anywhere.ignored("train.csv")
    assert anywhere.ignored("data/raw/train.csv")
    assert not anywhere.ignored("data/train.csv.md")


def test_leading_slash_and_dot_slash_change_nothing() -> None:
    for text in ("build\n", "/build\n", "./build\n"):
        r = rules(text)
        assert r.ignored("build")
        assert r.ignored("build/out.bin")
        assert not r.ignored("src/build")
    assert not rules("/\n").ignored("anything")
    assert IgnoreRules("build", defaults=False).patterns == ("build",)


def test_directory_patterns_exclude_everything_below() -> None:
    r = rules("data/\n")
    assert r.ignored("data", is_dir=True)
    assert r.ignored("data/x.csv")
    assert r.ignored("data/deep/er/x.csv")
    assert not r.ignored("data"), "a trailing '/' only matches directories"
    assert not r.ignored("database.csv"), "kli's 'data**/*' expansion bug is not copied"
    plain = rules("data\n")
    assert plain.ignored("data") and plain.ignored("data", is_dir=True)
    assert plain.ignored("data/x.csv")
    assert not plain.ignored("src/data/x.csv")


def test_double_star_patterns() -> None:
    r = rules("**/tmp/*\n")
    assert r.ignored("tmp/a")
    assert r.ignored("src/node/tmp/a")
    assert r.ignored("src/tmp/sub/deep.txt"), "tmp/sub is a matched directory"
    assert not r.ignored("src/tmp", is_dir=True)
    assert not r.ignored("src/tmpfile")
    models = rules("models/**\n")
    assert models.ignored("models/a.bin") and models.ignored("models/x/y/z.bin")
    assert not models.ignored("models", is_dir=True)
    assert rules("src/**/*.pkl\n").ignored("src/a/b/m.pkl")
    assert rules("src/**/*.pkl\n").ignored("src/m.pkl")
    assert rules("**/**/x\n").ignored("a/b/x")


def test_single_character_and_class_patterns() -> None:
    r = rules("log?.txt\nmodel[0-9].bin\nnot[!a].md\n")
    assert r.ignored("log1.txt") and not r.ignored("log10.txt") and not r.ignored("log/.txt")
    assert r.ignored("model7.bin") and not r.ignored("modelx.bin")
    assert r.ignored("notb.md") and not r.ignored("nota.md") and not r.ignored("not/.md")
    assert rules("[]x]").ignored("]") and rules("[]x]").ignored("x")
    assert rules("[").ignored("[") and not rules("[").ignored("x"), "unclosed: literal"
    assert rules("[!]]").ignored("q") and not rules("[!]]").ignored("]")
    assert rules("a[^b]").ignored("ac") and not rules("a[^b]").ignored("ab")
    assert rules("[a-c&&~|]").ignored("&") and not rules("[a-c&&~|]").ignored("d")


def test_star_matches_dotfiles_but_not_slashes() -> None:
    r = rules("*\n")
    assert r.ignored(".env") and r.ignored("a/b")  # "a" itself matches, so a/b is inside it
    assert not rules("src/*.py\n").ignored("src/a/b.py")


def test_negation_is_literal_and_warned_about() -> None:
    r = rules("*.csv\n!keep.csv\n")
    assert r.ignored("keep.csv")
    assert r.ignored("!keep.csv")
    assert len(r.warnings) == 1 and "line 2" in r.warnings[0] and "negation" in r.warnings[0]


def test_defaults() -> None:
    r = IgnoreRules()
    for path in (
        "old.krt",
        "build/v1.krt",
        "dist/x.tar.gz",
        "src/node/__pycache__/m.cpython-311.pyc",
        "src/m.pyc",
        "notebooks/.ipynb_checkpoints/n-checkpoint.ipynb",
        ".git/HEAD",
        ".krtlab",
    ):
        assert r.ignored(path), path
    assert r.ignored("__pycache__", is_dir=True)
    for path in ("krt.yml", "src/node/main.py", "models/model.tar.gz.md", ".krtignore"):
        assert not r.ignored(path), path
    assert not IgnoreRules(defaults=False).ignored("old.krt")
    assert "**/*.krt" in DEFAULT_EXCLUDES and "**/*.tar.gz" in DEFAULT_EXCLUDES
    assert "defaults=True" in repr(r)


def test_ignored_accepts_sloppy_paths() -> None:
    r = rules("data/\n")
    assert r.ignored("./data/x.csv")
    assert r.ignored("data/sub/", is_dir=True)
    assert not r.ignored("") and not r.ignored(".")


def test_from_dir(tmp_path: Path) -> None:
    assert IgnoreRules.from_dir(tmp_path).patterns == ()
    (tmp_path / ".krtignore").write_text("*.csv\n", encoding="utf-8")
    r = IgnoreRules.from_dir(tmp_path)
    assert r.patterns == ("*.csv",) and r.ignored("x.csv") and r.ignored("x.krt")
    assert not IgnoreRules.from_dir(tmp_path, defaults=False).ignored("x.krt")
    (tmp_path / ".krtignore").write_bytes(b"\xff\xfe*")
    with pytest.raises(BundleError, match="cannot read"):
        IgnoreRules.from_dir(tmp_path)


def make_project(root: Path) -> None:
    for rel in (
        "krt.yml",
        "public_input.proto",
        "src/py-greeter/main.py",
        "src/py-greeter/__pycache__/main.cpython-311.pyc",
        "data/raw.csv",
        "data/deep/raw.csv",
        "notes.csv",
        "src/notes.csv",
        "v1.krt",
        ".git/config",
        ".krtignore",
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel, encoding="utf-8")
    (root / "empty").mkdir()
    (root / ".krtignore").write_text("# project excludes\ndata/\n*.csv\n", encoding="utf-8")


def test_collect_files(tmp_path: Path) -> None:
    make_project(tmp_path)
    assert collect_files(tmp_path) == [
        ".krtignore",
        "krt.yml",
        "public_input.proto",
        "src/notes.csv",
        "src/py-greeter/main.py",
    ]
    everything = collect_files(tmp_path, IgnoreRules(defaults=False))
    assert "v1.krt" in everything and ".git/config" in everything
    assert everything == sorted(everything)


def test_collect_files_does_not_descend_into_ignored_dirs(tmp_path: Path, monkeypatch) -> None:
    make_project(tmp_path)
    listed: list[str] = []
    real_scandir = os.scandir

    def spy(path):
        listed.append(Path(path).relative_to(tmp_path).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(ignore_mod.os, "scandir", spy)
    collect_files(tmp_path)
    assert "data" not in listed and ".git" not in listed
    assert "src/py-greeter/__pycache__" not in listed
    assert "src/py-greeter" in listed


def test_collect_files_refuses_symlinks(tmp_path: Path) -> None:
    make_project(tmp_path)
    (tmp_path / "src" / "link.py").symlink_to(tmp_path / "krt.yml")
    with pytest.raises(BundleError, match=r"src/link\.py is a symbolic link"):
        collect_files(tmp_path)
    (tmp_path / "src" / "link.py").unlink()
    (tmp_path / "models").symlink_to(tmp_path / "data", target_is_directory=True)
    with pytest.raises(BundleError, match="models is a symbolic link"):
        collect_files(tmp_path)
    # An ignored link is simply skipped, even a directory pattern matching a linked directory.
    assert "models" not in collect_files(tmp_path, IgnoreRules(["models/"]))
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert "dangling" not in collect_files(tmp_path, IgnoreRules(["models", "dangling"]))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_collect_files_refuses_special_files(tmp_path: Path) -> None:
    (tmp_path / "krt.yml").write_text("x", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(BundleError, match="pipe is not a regular file"):
        collect_files(tmp_path)
    assert collect_files(tmp_path, IgnoreRules(["pipe"])) == ["krt.yml"]


def test_collect_files_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="is not a directory"):
        collect_files(tmp_path / "missing")
    (tmp_path / "f").write_text("x", encoding="utf-8")
    with pytest.raises(BundleError, match="is not a directory"):
        collect_files(tmp_path / "f")


def test_collect_files_refuses_names_that_are_not_utf8(tmp_path: Path) -> None:
    try:
        (Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff.txt"))).write_text("x", encoding="utf-8")
    except (OSError, UnicodeError):
        pytest.skip("filesystem refuses non-UTF-8 names")
    with pytest.raises(BundleError, match="not valid UTF-8"):
        collect_files(tmp_path)
    assert collect_files(tmp_path, IgnoreRules(["bad*"])) == []
