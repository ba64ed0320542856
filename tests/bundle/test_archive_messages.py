"""What writing and reading a .krt say when a path or a member name is refused, word for word:
the user sees these messages, and each names the path and why."""

from __future__ import annotations

import io
import tarfile

import pytest

from krtlab.bundle.archive import read_krt, write_krt
from krtlab.errors import BundleError, UnsafeArchiveError


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "is empty"),
        ("a\x00b", "contains a NUL byte"),
        ("a\\b", "contains a backslash; separate directories with '/'"),
        ("/etc/x", "is absolute; paths are relative to the archive root"),
        ("a//b", "has an empty component (a doubled or trailing '/')"),
        ("a/", "has an empty component (a doubled or trailing '/')"),
        ("a/./b", "has a '.' or '..' component"),
        ("a/../b", "has a '.' or '..' component"),
        ("a\ud800", "is not valid UTF-8"),
        ("a\udfff", "is not valid UTF-8"),
    ],
)
def test_a_path_that_cannot_go_in_a_krt_is_refused_with_why(tmp_path, path, why):
    with pytest.raises(BundleError) as info:
        write_krt({path: b"x"}, tmp_path / "v.krt")
    assert str(info.value) == f"invalid archive path {path!r}: it {why}"


def test_paths_and_contents_of_the_wrong_type_are_named(tmp_path):
    with pytest.raises(BundleError) as info:
        write_krt({1: b"x"}, tmp_path / "v.krt")  # type: ignore[dict-item]
    assert str(info.value) == "archive paths must be str, got int: 1"
    with pytest.raises(BundleError) as info:
        write_krt({"a.txt": "text"}, tmp_path / "v.krt")  # type: ignore[dict-item]
    assert str(info.value) == "content of 'a.txt' must be bytes, got str"


def tar_with(name: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/etc/passwd", "is an absolute path"),
        ("..", "points outside the archive root ('..')"),
        ("../x", "points outside the archive root ('..')"),
        ("a/../../x", "points outside the archive root ('..')"),
    ],
)
def test_a_member_name_that_would_escape_is_refused_with_why(name, why):
    with pytest.raises(UnsafeArchiveError) as info:
        read_krt(tar_with(name))
    assert str(info.value).endswith(f": member name {name!r} {why}")
    assert info.value.member == name
