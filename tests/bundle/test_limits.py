"""The limits of krtlab/bundle/archive.py, each pinned at its boundary: the last size accepted
and the first refused (sparse files stand in for 500 MB uploads)."""

from __future__ import annotations

import inspect
import tarfile
from pathlib import Path

import pytest

from krtlab.bundle import archive
from krtlab.bundle.archive import (
    MAX_KRT_BYTES,
    MAX_MEMBERS,
    MAX_UNPACKED_BYTES,
    read_krt,
    write_krt,
)
from krtlab.errors import BundleError, UnsafeArchiveError
from tests.bundle.test_archive import make_tar

REG, DIR = tarfile.REGTYPE, tarfile.DIRTYPE


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)  # no data written: the file takes no room on disk
    return path


def test_the_limits_are_kres_and_the_defaults_of_reading():
    assert MAX_KRT_BYTES == 500 * 1024 * 1024  # KRE's maxUploadSize = 500 * mb
    assert MAX_UNPACKED_BYTES == 2 * 1024**3
    assert MAX_MEMBERS == 100_000
    read = inspect.signature(read_krt).parameters
    assert read["max_bytes"].default == MAX_KRT_BYTES
    assert read["max_unpacked_bytes"].default == MAX_UNPACKED_BYTES
    assert read["max_members"].default == MAX_MEMBERS
    assert inspect.signature(write_krt).parameters["max_bytes"].default == MAX_KRT_BYTES


def test_a_krt_of_exactly_500_mib_is_read_and_one_byte_more_is_refused_unread(tmp_path):
    at_limit = _sparse(tmp_path / "at.krt", MAX_KRT_BYTES)
    # read (and found not to be gzip), not refused for its size
    with pytest.raises(BundleError, match="does not start with the gzip magic bytes") as info:
        read_krt(at_limit)
    assert not isinstance(info.value, UnsafeArchiveError)
    over = _sparse(tmp_path / "over.krt", MAX_KRT_BYTES + 1)
    with pytest.raises(UnsafeArchiveError) as info:
        read_krt(over)
    assert str(info.value) == (
        f"{over} is 500.0 MiB, over the 500.0 MiB limit for a .krt (KRE refuses uploads over "
        "500 MB)"
    )


@pytest.mark.parametrize("as_path", [False, True])
def test_max_bytes_accepts_exactly_its_size(tmp_path, as_path):
    data = make_tar([("krt.yml", REG, b"version: v1\n")])
    source: bytes | Path = data
    if as_path:
        source = tmp_path / "v.krt"
        source.write_bytes(data)
    assert list(read_krt(source, max_bytes=len(data))) == ["krt.yml"]
    with pytest.raises(UnsafeArchiveError, match=rf"is {len(data)} bytes, over the "):
        read_krt(source, max_bytes=len(data) - 1)


def test_members_up_to_the_limit_are_read_and_one_more_is_refused():
    entries = [("src/", DIR, b"")] + [(f"src/f{i}", REG, b"") for i in range(9)]
    data = make_tar(entries)
    assert len(read_krt(data, max_members=10)) == 9  # directories count as entries too
    with pytest.raises(UnsafeArchiveError, match=r"^<bytes> has more than 9 entries$"):
        read_krt(data, max_members=9)


def test_unpacked_bytes_up_to_the_limit_are_read_and_one_more_is_refused():
    data = make_tar([("zeros.bin", REG, bytes(100_000))])
    size = len(make_tar([("zeros.bin", REG, bytes(100_000))], compress=False))
    assert read_krt(data, max_unpacked_bytes=size)["zeros.bin"].data == bytes(100_000)
    with pytest.raises(UnsafeArchiveError) as info:
        read_krt(data, max_unpacked_bytes=size - 1)
    assert str(info.value) == (
        f"<bytes> unpacks to more than {size - 1} bytes; refusing it as a possible decompression "
        "bomb (raise max_unpacked_bytes if it is genuine)"
    )


def test_write_accepts_an_archive_of_exactly_max_bytes(tmp_path):
    files = {"krt.yml": b"version: v1\n", "src/a.py": bytes(range(256)) * 40}
    size = write_krt(files, tmp_path / "free.krt", max_bytes=None).stat().st_size
    assert write_krt(files, tmp_path / "exact.krt", max_bytes=size).stat().st_size == size
    with pytest.raises(BundleError) as info:
        write_krt(files, tmp_path / "over.krt", max_bytes=size - 1)
    assert str(info.value) == (
        f"{tmp_path / 'over.krt'} would be {size} bytes, over the {size - 1} bytes limit (KRE "
        "refuses uploads over 500 MB); exclude large files with .krtignore"
    )
    assert not (tmp_path / "over.krt").exists()


def test_the_krt_yml_pattern_is_kres_with_its_unescaped_dot():
    for name in ("krt.yml", "krt.yaml", "src/krt.yml", "krtxyml"):
        assert archive.KRT_YML_PATTERN.search(name), name
    for name in ("krt.yml\n", "akrt.yml", "krt.yml.bak", "krt.ymlx"):
        assert not archive.KRT_YML_PATTERN.search(name), name
