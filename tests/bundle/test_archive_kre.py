"""What KRE's extractor says of an archive, and the exact wording of archive errors."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from krtlab.bundle import archive
from krtlab.bundle.archive import (
    kre_extract_errors,
    missing_directory_entries,
    read_krt,
    write_krt,
)
from krtlab.errors import BundleError, UnsafeArchiveError
from tests.support import tar_bytes

HEAD = "KRE 7: error on KRT content extraction: "
TMP = "/tmp/version<random>"


def _tar(entries, *, tail: bytes = b"") -> bytes:
    return tar_bytes(entries, format=tarfile.PAX_FORMAT, tail=tail)


def _entries(*names: str):
    return [(n.rstrip("/"), None, None) if n.endswith("/") else (n, b"x", None) for n in names]


def test_a_well_formed_archive_extracts(tmp_path):
    path = write_krt({"krt.yml": b"v", "src/a/main.py": b"x", "docs/krt.yml": b"d"}, tmp_path / "x")
    assert kre_extract_errors(path) == (None, None)
    assert kre_extract_errors(path.read_bytes()) == (None, None)
    assert kre_extract_errors(str(path)) == (None, None)
    # a krt.yml-like file without its folder is skipped by the content extractor
    assert kre_extract_errors(_tar(_entries("krt.yml", "docs/krt.yml"))) == (None, None)


def test_a_root_folder_entry_is_made_twice():
    data = _tar([(".", None, None), *_entries("krt.yml")])
    assert kre_extract_errors(data) == (
        None,
        f"{HEAD}error creating krt dir {TMP}: mkdir {TMP}: file exists",
    )


def test_the_first_folder_made_twice_is_named():
    data = _tar(_entries("krt.yml", "src/", "src/a/", "src/a/", "src/", "src/b/", "src/b/"))
    assert kre_extract_errors(data) == (
        None,
        f"{HEAD}error creating krt dir {TMP}/src/a: mkdir {TMP}/src/a: file exists",
    )


def test_a_folder_without_its_parent():
    data = _tar(_entries("krt.yml", "src/a/", "src/a/b.py", "lib/c.py"))
    assert kre_extract_errors(data) == (
        f"{HEAD}error creating krt dir {TMP}/src/a: mkdir {TMP}/src/a: no such file or directory",
        None,
    )


def test_a_file_without_its_folder():
    data = _tar(_entries("krt.yml", "src/", "src/b.py", "lib/c.py", "lib/"))
    assert kre_extract_errors(data) == (
        f"{HEAD}error creating krt file {TMP}/lib/c.py: open {TMP}/lib/c.py: "
        "no such file or directory",
        None,
    )


def test_both_errors():
    data = _tar(_entries("krt.yml", "a/", "a/", "b/c.py"))
    orphan, repeated = kre_extract_errors(data)
    assert orphan == f"{HEAD}error creating krt file {TMP}/b/c.py: open {TMP}/b/c.py: " + (
        "no such file or directory"
    )
    assert repeated == f"{HEAD}error creating krt dir {TMP}/a: mkdir {TMP}/a: file exists"


@pytest.mark.parametrize(
    ("pax", "why"),
    [({"path": "a\x00b"}, "'a\\x00b' contains a NUL byte"), ({"path": ""}, "'' is empty")],
)
def test_bad_member_names_are_refused_with_why(pax, why):
    with pytest.raises(UnsafeArchiveError) as info:
        read_krt(_tar([("a", b"", pax)]))
    assert str(info.value) == f"<bytes>: member name {why}"


def test_anything_after_the_end_of_the_tar_is_ignored_as_go_does():
    data = _tar(_entries("krt.yml"), tail=os.urandom(64) + b"\x01" * 1024)
    assert list(read_krt(data)) == ["krt.yml"]


def test_a_header_of_letters_after_the_last_entry_is_refused():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("krt.yml")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"v"))
    body = raw.getvalue()[: 2 * tarfile.BLOCKSIZE] + b"X" * tarfile.BLOCKSIZE
    with pytest.raises(BundleError) as info:
        read_krt(gzip.compress(body, mtime=0))
    assert str(info.value) == (
        "<bytes> is not a .krt (gzip-compressed tar): the gzip content is not a valid tar archive "
        "(invalid tar header at offset 1024)"
    )


def test_an_archive_over_the_limit_names_both_sizes(tmp_path):
    data = os.urandom(1024**2 + 4096)  # does not compress
    with pytest.raises(BundleError) as info:
        write_krt({"big.bin": data}, tmp_path / "x.krt", max_bytes=1024**2)
    size = str(info.value).split(" would be ", 1)[1].split(",", 1)[0]
    assert size == "1.0 MiB"
    assert str(info.value).endswith(
        ", over the 1.0 MiB limit (KRE refuses uploads over 500 MB); "
        "exclude large files with .krtignore"
    )
    with pytest.raises(BundleError) as info:
        write_krt({"a": b"x" * 100}, tmp_path / "y.krt", max_bytes=50)
    assert ", over the 50 bytes limit" in str(info.value)
    assert not (tmp_path / "x.krt").exists() and not (tmp_path / "y.krt").exists()


def test_entries_sort_by_path_components(tmp_path):
    out = write_krt({"a/b": b"1", "a-c": b"2", "a.d/e": b"3", "krt.yml": b"v"}, tmp_path / "x")
    with tarfile.open(out) as tar:
        assert tar.getnames() == ["krt.yml", "a", "a/b", "a-c", "a.d", "a.d/e"]


# -- reading: the exact reasons --------------------------------------------------------------------

NOT_A_KRT = "<bytes> is not a .krt (gzip-compressed tar): "


def _plain_tar(*entries: tuple[str, bytes | None]) -> bytes:
    return tar_bytes(entries, gz=False, format=tarfile.USTAR_FORMAT)


def _zip() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("krt.yml", "v")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"hello", "it does not start with the gzip magic bytes 1f 8b"),
        ("zip", "it is a zip archive"),
        ("tar", "it is an uncompressed tar; KRE needs it gzip-compressed (tar -czf)"),
        (
            b"\x1f\x8b\x08\x00garbage",
            "corrupt or truncated gzip data (Compressed file ended before the end-of-stream "
            "marker was reached)",
        ),
        ("double", "the gzip content is not a valid tar archive (truncated header)"),
    ],
    ids=["empty", "text", "zip", "tar", "garbage", "double-gzip"],
)
def test_why_bytes_are_not_a_krt(data, reason):
    tar = _plain_tar(("krt.yml", b"v"))
    data = {
        "zip": _zip(),
        "tar": tar,
        "double": gzip.compress(gzip.compress(tar, mtime=0), mtime=0),
    }.get(data, data)
    with pytest.raises(BundleError) as info:
        read_krt(data)
    assert str(info.value) == NOT_A_KRT + reason


def test_an_error_without_words_is_named_by_its_type(monkeypatch):
    class Broken(gzip.GzipFile):
        def read(self, size=-1):
            raise EOFError()

    monkeypatch.setattr(gzip, "GzipFile", Broken)
    with pytest.raises(BundleError) as info:
        read_krt(gzip.compress(_plain_tar(("krt.yml", b"v"))))
    assert str(info.value) == NOT_A_KRT + "corrupt or truncated gzip data (EOFError)"


def test_a_tar_error_without_words_is_named_by_its_type(monkeypatch):
    def broken(*args):
        raise tarfile.ReadError()

    monkeypatch.setattr(archive, "_scan_tar", broken)
    with pytest.raises(BundleError) as info:
        read_krt(gzip.compress(_plain_tar(("krt.yml", b"v"))))
    assert str(info.value) == NOT_A_KRT + "the gzip content is not a valid tar archive (ReadError)"


def test_a_path_that_cannot_be_read(tmp_path):
    with pytest.raises(BundleError) as info:
        read_krt(tmp_path / "missing.krt")
    assert str(info.value) == f"cannot read {tmp_path / 'missing.krt'}: No such file or directory"
    with pytest.raises(BundleError) as info:
        read_krt(tmp_path)
    assert str(info.value) == f"cannot read {tmp_path}: Is a directory"


def test_a_link_entry_is_refused_with_kres_words():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("link")
        info.type, info.linkname = tarfile.SYMTYPE, "krt.yml"
        tar.addfile(info)
    with pytest.raises(UnsafeArchiveError) as err:
        read_krt(gzip.compress(buf.getvalue()))
    assert str(err.value) == (
        "<bytes>: member 'link' is a symbolic link; a .krt may hold only directories and regular "
        "files (KRE's extractor fails with 'error extracting krt files: uknown type [50] in "
        "[/tmp/version<random>/link]')"
    )


@pytest.mark.parametrize(
    ("entries", "clash"),
    [
        ((("a", None), ("a", b"x")), "a"),  # a folder entry, then a file of that name
        ((("./", b"x"),), "."),  # a file where the root is
    ],
)
def test_a_path_both_file_and_folder(entries, clash):
    with pytest.raises(UnsafeArchiveError) as err:
        read_krt(gzip.compress(_plain_tar(*entries)))
    assert str(err.value) == f"<bytes>: {clash!r} is both a file and a directory"


def test_executable_bits():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in (("rw", 0o666), ("x", 0o744), ("gx", 0o610), ("ox", 0o601)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = 1, mode
            tar.addfile(info, io.BytesIO(b"x"))
    files = read_krt(gzip.compress(buf.getvalue()))
    assert {n: m.executable for n, m in files.items()} == {
        "rw": False,
        "x": True,
        "gx": True,
        "ox": True,
    }


@pytest.mark.parametrize("cut", [9, 10])
def test_a_tar_cut_in_or_right_after_its_last_file(cut):
    raw = _plain_tar(("krt.yml", b"0123456789"))[: tarfile.BLOCKSIZE + cut]
    where = " in 'krt.yml'" if cut < 10 else ""
    expected = (
        NOT_A_KRT + f"the gzip content is not a valid tar archive (unexpected end of data{where})"
    )
    for read in (read_krt, missing_directory_entries):
        with pytest.raises(BundleError) as info:
            read(gzip.compress(raw))
        assert str(info.value) == expected


def test_a_bomb_is_refused_before_it_is_all_unpacked(monkeypatch):
    data = gzip.compress(_plain_tar(("big.bin", os.urandom(4 * 1024**2))), compresslevel=1)
    consumed = []
    real = archive._open_compressed

    def counting(source, label, max_bytes):
        handle = real(source, label, max_bytes)
        read = handle.read

        def counted(size=-1):
            chunk = read(size)
            consumed.append(len(chunk))
            return chunk

        handle.read = counted
        return handle

    monkeypatch.setattr(archive, "_open_compressed", counting)
    limit = 1024**2 + 1024**2 // 2  # over one chunk of output, under two
    with pytest.raises(UnsafeArchiveError) as info:
        read_krt(data, max_unpacked_bytes=limit)
    assert str(info.value) == (
        "<bytes> unpacks to more than 1.5 MiB; refusing it as a possible decompression bomb "
        "(raise max_unpacked_bytes if it is genuine)"
    )
    assert sum(consumed) < 3 * 1024**2 < len(data)


def test_the_krt_yml_entry_of_an_open_tar():
    data = _plain_tar(("krt.yml", None), ("docs/krt.yml", b"d"), ("krt.yaml", b"v"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        info = archive.krt_yml_tarinfo(tar)  # a folder named krt.yml is not the file
        assert info is not None and info.name == "docs/krt.yml" and info.isfile()
    with tarfile.open(fileobj=io.BytesIO(_plain_tar(("krt.yml", None), ("a", b"")))) as tar:
        assert archive.krt_yml_tarinfo(tar) is None
