"""Tests for krtlab.bundle.archive: reproducible writing and defensive reading of .krt files."""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krtlab.bundle import archive
from krtlab.bundle.archive import (
    MAX_KRT_BYTES,
    Member,
    krt_yml_member,
    missing_directory_entries,
    read_krt,
    repeated_directory_entries,
    write_krt,
)
from krtlab.errors import BundleError, KrtlabError, UnsafeArchiveError

FILES: dict[str, bytes | Member] = {
    "krt.yml": b"version: demo\n",
    "public_input.proto": b'syntax = "proto3";\n',
    "src/py-greeter/main.py": b"def handler(ctx, data):\n    return data\n",
    "src/py-greeter/public_input_pb2.py": b"# generated\n",
    "bin/go-greeter": Member("bin/go-greeter", b"\x7fELF...", executable=True),
    "docs/README.md": "# Greeter – ünïcode\n".encode(),
    "docs/krt.yml": b"not the real one\n",
}


def make_tar(
    entries: list[tuple[str, bytes, bytes]],
    *,
    fmt: int = tarfile.PAX_FORMAT,
    compress: bool = True,
    pax_headers: dict[str, str] | None = None,
) -> bytes:
    """A tar (gzip-compressed by default) from (name, type, data) triples, written as given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "krt.yml"
            if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    raw = buf.getvalue()
    return gzip.compress(raw) if compress else raw


def fix_checksum(raw: bytearray) -> None:
    """Recompute the first header's checksum after editing it by hand."""
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])


def raw_names(path: Path) -> list[str]:
    """Entry names exactly as stored (tarfile's TarInfo.name drops a directory's trailing '/')."""
    with tarfile.open(path) as tar:
        return [m.name + ("/" if m.isdir() else "") for m in tar]


# ------------------------------------------------------------------------------------ writing


def test_round_trip(tmp_path: Path) -> None:
    dest = write_krt(FILES, tmp_path / "greeter.krt")
    members = read_krt(dest)
    assert set(members) == set(FILES)
    for path, value in FILES.items():
        data = value.data if isinstance(value, Member) else value
        assert members[path].data == data
        assert members[path].path == path
    assert members["bin/go-greeter"].executable
    assert not members["krt.yml"].executable
    assert read_krt(dest.read_bytes()) == members  # bytes and path sources agree


def test_output_is_byte_identical_whatever_the_order(tmp_path: Path) -> None:
    first = write_krt(FILES, tmp_path / "a.krt").read_bytes()
    second = write_krt(FILES, tmp_path / "b.krt").read_bytes()
    reordered = write_krt(dict(reversed(list(FILES.items()))), tmp_path / "c.krt").read_bytes()
    assert first == second == reordered


def test_environment_does_not_leak_into_the_bytes(tmp_path: Path, monkeypatch) -> None:
    first = write_krt(FILES, tmp_path / "a.krt").read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    os.utime(tmp_path, (1, 1))
    assert write_krt(FILES, tmp_path / "other-name.krt").read_bytes() == first


def test_directory_entries_come_before_their_contents(tmp_path: Path) -> None:
    names = raw_names(write_krt(FILES, tmp_path / "x.krt"))
    assert names[0] == "krt.yml", "KRE reads the first krt.yml match; the root one must win"
    seen: set[str] = set()
    for name in names:
        parts = name.rstrip("/").split("/")
        for i in range(1, len(parts)):
            assert "/".join(parts[:i]) + "/" in seen, f"{name} before its parent"
        seen.add(name)
    assert {"src/", "src/py-greeter/", "bin/", "docs/"} <= seen
    assert krt_yml_member(names) == "krt.yml"


def test_headers_are_normalized(tmp_path: Path) -> None:
    dest = write_krt(FILES, tmp_path / "x.krt")
    raw = dest.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00", "gzip without FNAME/FEXTRA/FCOMMENT flags"
    assert raw[4:8] == b"\0\0\0\0", "gzip mtime 0"
    with tarfile.open(dest) as tar:
        for m in tar:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
            if m.isdir():
                assert m.mode == 0o755
            elif m.name == "bin/go-greeter":
                assert m.mode == 0o755
            else:
                assert m.isreg() and m.mode == 0o644
            assert m.type in (tarfile.DIRTYPE, tarfile.REGTYPE)


def test_long_and_unicode_names_round_trip(tmp_path: Path) -> None:
    files = {"a/" * 80 + "f.txt": b"deep", "models/mödel-ñ.bin": b"\0\1"}
    assert {k: v.data for k, v in read_krt(write_krt(files, tmp_path / "x.krt")).items()} == files


@pytest.mark.parametrize(
    "bad",
    ["", "/abs.txt", "a/../b", "../x", "./a", "a//b", "a/", ".", "a\\b", "a\x00b", "a\udcff"],
)
def test_write_refuses_bad_paths(tmp_path: Path, bad: str) -> None:
    with pytest.raises(BundleError, match="invalid archive path"):
        write_krt({"krt.yml": b"", bad: b"x"}, tmp_path / "x.krt")
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_other_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="both a file and a directory"):
        write_krt({"a": b"", "a/b": b""}, tmp_path / "x.krt")
    with pytest.raises(BundleError, match="differs from its key"):
        write_krt({"a": Member("b", b"")}, tmp_path / "x.krt")
    with pytest.raises(BundleError, match="must be bytes"):
        write_krt({"a": "text"}, tmp_path / "x.krt")  # type: ignore[dict-item]
    with pytest.raises(BundleError, match="must be str"):
        write_krt({1: b""}, tmp_path / "x.krt")  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    dest = tmp_path / "x.krt"
    dest.write_bytes(b"old bundle")
    with pytest.raises(BundleError):
        write_krt({"krt.yml": b"", "src/../oops": b""}, dest)
    calls = 0
    real_addfile = tarfile.TarFile.addfile

    def flaky_addfile(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        return real_addfile(self, *args, **kwargs)

    monkeypatch.setattr(tarfile.TarFile, "addfile", flaky_addfile)
    with pytest.raises(BundleError, match=r"cannot write .*No space left"):
        write_krt(FILES, dest)
    assert dest.read_bytes() == b"old bundle"
    assert [p.name for p in tmp_path.iterdir()] == ["x.krt"]


def test_write_refuses_oversize_output(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="over the 100 bytes limit"):
        write_krt({"big": os.urandom(1000)}, tmp_path / "x.krt", max_bytes=100)
    assert list(tmp_path.iterdir()) == []
    assert archive.MAX_KRT_BYTES == MAX_KRT_BYTES == 500 * 1024 * 1024


def test_write_creates_parent_directories(tmp_path: Path) -> None:
    dest = write_krt({"krt.yml": b""}, tmp_path / "build" / "deep" / "v1.krt")
    assert dest.is_file() and dest.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------------------ reading

REG, DIR = tarfile.REGTYPE, tarfile.DIRTYPE


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        ([("/etc/passwd", REG, b"x")], "absolute"),
        ([("../evil.sh", REG, b"x")], "outside the archive root"),
        ([("src/../../evil.sh", REG, b"x")], "outside the archive root"),
        ([("link", tarfile.SYMTYPE, b"")], "symbolic link"),
        ([("krt.yml", REG, b"x"), ("hard", tarfile.LNKTYPE, b"")], "hard link"),
        ([("tty", tarfile.CHRTYPE, b"")], r"character device.*uknown type \[51\]"),
        ([("disk", tarfile.BLKTYPE, b"")], "block device"),
        ([("pipe", tarfile.FIFOTYPE, b"")], "FIFO"),
        (
            [("cont", tarfile.CONTTYPE, b"x")],
            r"tar type b'7'.*uknown type \[55\] in \[/tmp/version<random>/cont\]",
        ),
        ([("a", REG, b"1"), ("a", REG, b"2")], "duplicate member 'a'"),
        ([("a", REG, b"1"), ("./a", REG, b"2")], "duplicate member 'a'"),
        ([("a", REG, b"1"), ("a/b", REG, b"2")], "both a file and a directory"),
        ([("a/b", REG, b"1"), ("a", REG, b"2")], "both a file and a directory"),
        ([("a", REG, b"1"), ("a/", DIR, b"")], "both a file and a directory"),
    ],
)
def test_read_refuses_unsafe_members(entries, match) -> None:
    with pytest.raises(UnsafeArchiveError, match=match) as info:
        read_krt(make_tar(entries))
    assert info.value.member


def test_read_refuses_nul_in_names() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a")
        info.pax_headers = {"path": "a\x00b"}
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(UnsafeArchiveError, match="NUL") as err:
        read_krt(gzip.compress(buf.getvalue()))
    assert err.value.member == "a\x00b"


def test_read_refuses_global_pax_headers() -> None:
    # ``git archive`` writes one; Go returns it as an entry of type 'g' that KRE cannot extract.
    data = make_tar([("krt.yml", REG, b"x")], pax_headers={"comment": "commit abc"})
    with pytest.raises(UnsafeArchiveError, match=r"uknown type \[103\]"):
        read_krt(data)


def test_limits(tmp_path: Path) -> None:
    many = make_tar([(f"f{i}", REG, b"") for i in range(20)])
    assert len(read_krt(many, max_members=20)) == 20
    with pytest.raises(UnsafeArchiveError, match="more than 10 entries"):
        read_krt(many, max_members=10)

    path = tmp_path / "x.krt"
    path.write_bytes(many)
    with pytest.raises(UnsafeArchiveError, match=r"over the .* limit"):
        read_krt(path, max_bytes=len(many) - 1)
    with pytest.raises(UnsafeArchiveError, match=r"over the .* limit"):
        read_krt(many, max_bytes=10)

    bomb = make_tar([("zeros.bin", REG, bytes(5_000_000))])
    assert len(bomb) < 20_000
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        read_krt(bomb, max_unpacked_bytes=1_000_000)
    assert read_krt(bomb, max_unpacked_bytes=None)["zeros.bin"].data == bytes(5_000_000)


def test_read_does_not_trust_header_sizes() -> None:
    raw = bytearray(make_tar([("a", REG, b"hello")], fmt=tarfile.USTAR_FORMAT, compress=False))
    raw[124:136] = b"77777777777\0"  # size field: ~8 GiB of data that is not there
    fix_checksum(raw)
    with pytest.raises(BundleError, match="unexpected end of data"):
        read_krt(gzip.compress(bytes(raw)))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "file is empty"),
        (b"hello, world", "gzip magic bytes"),
        (make_tar([("krt.yml", REG, b"x")], compress=False), "uncompressed tar"),
        (b"\x1f\x8b\x08\x00garbage", "corrupt or truncated gzip"),
        (gzip.compress(b"definitely not a tar archive" * 40), "not a valid tar archive"),
        (gzip.compress(b""), "not a valid tar archive"),
    ],
    # stable ids: gzip.compress writes the time into the bytes, and mutmut selects tests by id
    ids=["empty", "text", "uncompressed-tar", "corrupt-gzip", "gzip-of-text", "gzip-of-nothing"],
)
def test_read_refuses_non_krt_bytes(data: bytes, match: str) -> None:
    with pytest.raises(BundleError, match=match) as err:
        read_krt(data)
    assert "<bytes> is not a .krt (gzip-compressed tar)" in str(err.value)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "build" / "x.krt"
    path.parent.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("krt.yml", "x")
    path.write_bytes(buf.getvalue())
    with pytest.raises(BundleError, match=re.escape(f"{path} is not a .krt") + ".*zip archive"):
        read_krt(path)
    with pytest.raises(BundleError, match=r"cannot read .*missing\.krt"):
        read_krt(tmp_path / "missing.krt")
    with pytest.raises(BundleError, match="cannot read"):
        read_krt(tmp_path)


def test_read_refuses_truncated_archives(tmp_path: Path) -> None:
    good = write_krt(FILES, tmp_path / "x.krt").read_bytes()
    for cut in (3, 10, len(good) // 3, len(good) // 2, len(good) - 9, len(good) - 1):
        with pytest.raises(BundleError):
            read_krt(good[:cut])
    tar = gzip.decompress(good)
    end_of_first_data = 512 + 512  # krt.yml header + its data block
    with pytest.raises(BundleError, match="unexpected end of data"):
        read_krt(gzip.compress(tar[: end_of_first_data - 100]))


def test_read_refuses_a_corrupt_header_after_the_first() -> None:
    raw = bytearray(make_tar([("a", REG, b"abc"), ("b", REG, b"def")], compress=False))
    raw[1024 + 148] ^= 0xFF  # break the second header's checksum
    with pytest.raises(BundleError, match="invalid tar header at offset 1024"):
        read_krt(gzip.compress(bytes(raw)))


def test_read_refuses_names_that_are_not_utf8() -> None:
    raw = bytearray(make_tar([("aaaa", REG, b"")], fmt=tarfile.USTAR_FORMAT, compress=False))
    raw[1] = 0xFF
    fix_checksum(raw)
    with pytest.raises(BundleError, match="not a valid tar archive"):
        read_krt(gzip.compress(bytes(raw)))


def test_read_normalizes_and_accepts_plain_tar_output() -> None:
    data = make_tar(
        [
            ("./", DIR, b""),
            ("./krt.yml", REG, b"v"),
            ("./src/", DIR, b""),
            ("./src/x/../main.py", REG, b"m"),
            ("old", tarfile.AREGTYPE, b"a"),
        ],
        fmt=tarfile.GNU_FORMAT,
    )
    assert list(read_krt(data)) == ["krt.yml", "src/main.py", "old"]


def test_directory_entry_checks() -> None:
    no_dirs = make_tar([("krt.yml", REG, b""), ("src/a/main.py", REG, b""), ("src/b", REG, b"")])
    assert missing_directory_entries(no_dirs) == ["src", "src/a"]
    late = make_tar([("src/main.py", REG, b""), ("src/", DIR, b"")])
    assert missing_directory_entries(late) == ["src"]
    dot = make_tar([("./", DIR, b""), ("./src/", DIR, b""), ("./src/", DIR, b"")])
    assert missing_directory_entries(dot) == []
    assert repeated_directory_entries(dot) == [".", "src"]


def test_written_archives_pass_the_directory_checks(tmp_path: Path) -> None:
    dest = write_krt(FILES, tmp_path / "x.krt")
    assert missing_directory_entries(dest) == []
    assert repeated_directory_entries(dest) == []


def test_krt_yml_member_follows_kre_regex() -> None:
    assert krt_yml_member(["a.txt", "docs/krt.yml", "krt.yml"]) == "docs/krt.yml"
    assert krt_yml_member(["./krt.yaml"]) == "./krt.yaml"
    assert krt_yml_member(["krtxyml"]) == "krtxyml"  # KRE's dot is unescaped
    assert krt_yml_member(["xkrt.yml", "krt.yml.bak", "krt.yml\n", "krt.yml/"]) is None
    assert krt_yml_member([]) is None


# --------------------------------------------------------------------------------- properties

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_krtlab_errors(data: bytes, **limits) -> None:
    try:
        result = read_krt(data, **limits)
    except KrtlabError:
        return
    assert all(isinstance(m, Member) and m.path == p for p, m in result.items())


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    only_krtlab_errors(data)
    only_krtlab_errors(b"\x1f\x8b" + data)
    only_krtlab_errors(gzip.compress(data))
    only_krtlab_errors(gzip.compress(data.ljust(1024, b"\0")))


NAMES = st.one_of(
    st.sampled_from(
        ["krt.yml", "./", "./a", "a/", "a/b", "..", "../a", "/abs", "a/../b", "a//b", ".", ""]
    ),
    st.text(alphabet="ab./\\é\x00 ", max_size=12),
    st.text(min_size=95, max_size=300, alphabet="ab/"),
)
TYPES = st.sampled_from(list(b"0123456789ADgKLMNSVx\0Z"))
MEMBERS = st.lists(
    st.tuples(NAMES, TYPES, st.binary(max_size=64), st.integers(0, 0o7777), NAMES),
    max_size=6,
)


@st.composite
def tar_archives(draw) -> bytes:
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8") as tar:
        for name, kind, data, mode, linkname in draw(MEMBERS):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.linkname = bytes([kind]), mode, linkname
            info.size = len(data)
            try:
                tar.addfile(info, io.BytesIO(data))
            except (ValueError, UnicodeError):
                continue  # tarfile cannot even write this combination
    raw = bytearray(buf.getvalue())
    for offset, value in draw(st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)))):
        if offset < len(raw):
            raw[offset] = value
    cut = draw(st.one_of(st.none(), st.integers(0, len(raw))))
    return gzip.compress(bytes(raw[:cut]))


@FUZZ
@given(tar_archives(), st.sampled_from([None, 3, 700]), st.sampled_from([None, 2, 5]))
def test_arbitrary_tar_archives(data: bytes, max_unpacked: int | None, members: int | None) -> None:
    if max_unpacked is not None:
        max_unpacked *= 1024
    only_krtlab_errors(data)
    only_krtlab_errors(data, max_unpacked_bytes=max_unpacked, max_members=members)
    try:
        missing_directory_entries(data)
        repeated_directory_entries(data)
    except KrtlabError:
        pass


@FUZZ
@given(
    st.dictionaries(
        st.lists(st.text(alphabet="abcé-_.", min_size=1, max_size=6), min_size=1, max_size=3)
        .map("/".join)
        .filter(lambda p: all(part not in (".", "..") for part in p.split("/"))),
        st.binary(max_size=32),
        max_size=6,
    )
)
def test_write_read_round_trip_property(tmp_path_factory, files: dict[str, bytes]) -> None:
    tmp = tmp_path_factory.mktemp("rt")
    try:
        dest = write_krt(files, tmp / "x.krt")
    except BundleError as exc:
        assert "both a file and a directory" in str(exc)
        return
    assert {p: m.data for p, m in read_krt(dest).items()} == files
    assert missing_directory_entries(dest) == repeated_directory_entries(dest) == []
