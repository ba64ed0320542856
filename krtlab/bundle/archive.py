"""Write and read ``.krt`` files: gzip-compressed tars with the version at the archive root.

Writing is reproducible and atomic; reading treats the archive as untrusted input.

KRE's extractor (``admin-api``, KRT V1) walks the tar with Go's ``archive/tar`` and handles exactly
two entry types: a directory becomes ``os.Mkdir`` (not ``MkdirAll``) and a regular file becomes
``os.Create``; anything else fails the version with
``error extracting krt files: uknown type [<typeflag>] in [<path>]``. Hence :func:`write_krt` emits
a directory entry for every parent before anything inside it, and :func:`read_krt` refuses links,
devices, FIFOs and other entry types instead of guessing what KRE would do with them.
"""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from krtlab.bundle.fsutil import atomic_writer
from krtlab.errors import BundleError, KrtlabError, UnsafeArchiveError
from krtlab.spec.rules import KRT_YML_PATTERN, is_krt_yml_name

__all__ = [
    "KRE_TMP_DIR",
    "KRT_YML_PATTERN",
    "MAX_KRT_BYTES",
    "MAX_MEMBERS",
    "MAX_UNPACKED_BYTES",
    "Member",
    "kre_extract_errors",
    "krt_yml_member",
    "krt_yml_tarinfo",
    "krt_yml_unpack_error",
    "missing_directory_entries",
    "read_krt",
    "repeated_directory_entries",
    "write_krt",
]

#: KRE's upload limit for a .krt (``maxUploadSize = 500 * mb``); applies to the compressed file.
MAX_KRT_BYTES = 500 * 1024 * 1024
#: Default cap on the decompressed tar stream read_krt accepts (decompression-bomb guard).
MAX_UNPACKED_BYTES = 2 * 1024**3
#: Default cap on the number of tar entries read_krt accepts.
MAX_MEMBERS = 100_000

_DIR_MODE, _FILE_MODE, _EXEC_MODE = 0o755, 0o644, 0o755
_CHUNK = 1024 * 1024
_SPOOL_IN_MEMORY = 32 * 1024 * 1024  # decompressed data beyond this spills to a temp file
_GZIP_MAGIC = b"\x1f\x8b"
_KRE_TYPE_ERROR = "error extracting krt files: uknown type [{code}] in [{name}]"
_GLOBAL_HEADER = tarfile.TarInfo()
_GLOBAL_HEADER.type = tarfile.XGLTYPE
_SPECIAL = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO (named pipe)",
}
# What may go wrong while decoding hostile bytes; all of it becomes a BundleError.
_DECODE_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, OverflowError)


@dataclass(frozen=True)
class Member:
    """One regular file of a .krt.

    Attributes:
        path: POSIX path relative to the archive root, e.g. ``src/greeter/main.py``.
        data: the file content.
        executable: stored with mode ``0o755`` instead of ``0o644`` (compiled Go nodes).
    """

    path: str
    data: bytes
    executable: bool = False


# --------------------------------------------------------------------------------------- writing


def _check_path(path: object) -> str:
    if not isinstance(path, str):
        raise BundleError(f"archive paths must be str, got {type(path).__name__}: {path!r}")
    parts = path.split("/")
    checks = (
        (not path, "is empty"),
        ("\x00" in path, "contains a NUL byte"),
        ("\\" in path, "contains a backslash; separate directories with '/'"),
        (path.startswith("/"), "is absolute; paths are relative to the archive root"),
        ("" in parts, "has an empty component (a doubled or trailing '/')"),
        ("." in parts or ".." in parts, "has a '.' or '..' component"),
        (any("\ud800" <= c <= "\udfff" for c in path), "is not valid UTF-8"),
    )
    problem = next((text for failed, text in checks if failed), None)
    if problem:
        raise BundleError(f"invalid archive path {path!r}: it {problem}")
    return path


def _as_member(path: str, value: object) -> Member:
    if isinstance(value, Member):
        if value.path != path:
            raise BundleError(f"Member.path {value.path!r} differs from its key {path!r}")
        member = value
    else:
        member = Member(path, value)  # type: ignore[arg-type]  # checked just below
    if not isinstance(member.data, bytes | bytearray | memoryview):
        raise BundleError(f"content of {path!r} must be bytes, got {type(member.data).__name__}")
    return member


def _order_key(path: str, is_file: bool) -> tuple[int, tuple[str, ...]]:
    # KRE reads the *first* entry matching its krt.yml regex, so a root krt.yml goes before
    # everything else (otherwise e.g. ``docs/krt.yml`` would win). The rest sorts by components,
    # which puts every directory before its contents.
    first = is_file and "/" not in path and is_krt_yml_name(path)
    return (0 if first else 1, tuple(path.split("/")))


def write_krt(
    files: Mapping[str, bytes | Member],
    dest: str | Path,
    *,
    max_bytes: int | None = MAX_KRT_BYTES,
) -> Path:
    """Write ``files`` as a reproducible ``.krt`` (gzip-compressed tar), atomically.

    The same mapping gives a byte-identical file whatever its insertion order: entries are sorted
    (a root ``krt.yml`` first, as KRE reads the first match), every parent directory gets its own
    entry before its contents (KRE needs them), mtimes are 0 (deliberately not
    ``SOURCE_DATE_EPOCH``: nothing from the environment may leak into the bytes), owners are
    ``0``/``""``, modes ``0o755`` (directories, executables) or ``0o644``, and the gzip header has
    no timestamp or file name. PAX format only adds extended headers for long or non-ASCII names.
    Identity holds for one zlib build; another zlib may compress differently.

    The file is written next to ``dest`` and renamed into place; on any error the temporary file
    is removed and an existing ``dest`` is left untouched.

    Args:
        files: archive path (relative POSIX, normalized) to content or :class:`Member`.
        dest: the ``.krt`` file to create or replace (parent directories are created).
        max_bytes: refuse to produce a file larger than this (KRE's 500 MB upload limit by
            default); ``None`` disables the check.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        BundleError: an invalid path or content, a path that is both a file and a directory, an
            archive over ``max_bytes``, or an OS error while writing.
    """
    members = {_check_path(path): _as_member(path, value) for path, value in files.items()}
    dirs: set[str] = set()
    for path in members:
        parent = posixpath.dirname(path)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    clashes = sorted(dirs & members.keys())
    if clashes:
        raise BundleError(f"{clashes[0]!r} cannot be both a file and a directory in the archive")
    entries: list[tuple[str, Member | None]] = [(d, None) for d in dirs]
    entries += members.items()
    entries.sort(key=lambda e: _order_key(e[0], e[1] is not None))

    target = Path(dest)
    try:
        with atomic_writer(target) as raw:
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for path, member in entries:
                    tar.addfile(*_tarinfo(path, member))
            size = raw.tell()
            if max_bytes is not None and size > max_bytes:
                raise BundleError(
                    f"{target} would be {_mib(size)}, over the {_mib(max_bytes)} limit "
                    "(KRE refuses uploads over 500 MB); exclude large files with .krtignore"
                )
    except OSError as exc:
        raise BundleError(f"cannot write {target}: {exc}") from exc
    return target


def _tarinfo(path: str, member: Member | None) -> tuple[tarfile.TarInfo, BinaryIO | None]:
    # TarInfo already defaults to mtime 0, uid/gid 0 and empty names; set them anyway, as the
    # bytes must not depend on a library default.
    info = tarfile.TarInfo(path)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    if member is None:
        info.type, info.mode = tarfile.DIRTYPE, _DIR_MODE
        return info, None
    data = bytes(member.data)
    info.size, info.mode = len(data), _EXEC_MODE if member.executable else _FILE_MODE
    return info, io.BytesIO(data)


def _mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB" if n >= 1024**2 else f"{n} bytes"


# --------------------------------------------------------------------------------------- reading


def _label(source: str | Path | bytes) -> str:
    return "<bytes>" if isinstance(source, bytes | bytearray | memoryview) else str(source)


def _not_a_krt(label: str, reason: str) -> BundleError:
    return BundleError(f"{label} is not a .krt (gzip-compressed tar): {reason}")


def _open_compressed(source: str | Path | bytes, label: str, max_bytes: int | None) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        size = len(source)
    else:
        try:
            size = os.stat(source).st_size
        except OSError as exc:
            raise BundleError(f"cannot read {label}: {exc.strerror or exc}") from exc
    # Checked before opening: an oversize upload is refused without reading any of it.
    if max_bytes is not None and size > max_bytes:
        raise UnsafeArchiveError(
            f"{label} is {_mib(size)}, over the {_mib(max_bytes)} limit for a .krt "
            "(KRE refuses uploads over 500 MB)"
        )
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    try:
        return open(source, "rb")  # closed by _scan
    except OSError as exc:
        raise BundleError(f"cannot read {label}: {exc.strerror or exc}") from exc


def _sniff(head: bytes, label: str) -> None:
    if head[:2] == _GZIP_MAGIC:
        return
    if head[257:262] == b"ustar":
        reason = "it is an uncompressed tar; KRE needs it gzip-compressed (tar -czf)"
    elif head[:4] == b"PK\x03\x04":
        reason = "it is a zip archive"
    elif not head:
        reason = "the file is empty"
    else:
        reason = "it does not start with the gzip magic bytes 1f 8b"
    raise _not_a_krt(label, reason)


def _gunzip(compressed: BinaryIO, label: str, max_unpacked: int | None) -> BinaryIO:
    # Decompress into a spool first, counting real output bytes: header sizes are attacker
    # controlled, and tarfile would buffer a huge PAX header in memory before we saw it.
    # a binary file object, though typeshed does not derive SpooledTemporaryFile from BinaryIO
    spool = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY))
    total = 0
    try:
        _sniff(compressed.read(512), label)
        compressed.seek(0)
        with gzip.GzipFile(fileobj=compressed, mode="rb") as gz:
            while chunk := gz.read(_CHUNK):
                total += len(chunk)
                if max_unpacked is not None and total > max_unpacked:
                    raise UnsafeArchiveError(
                        f"{label} unpacks to more than {_mib(max_unpacked)}; refusing it as a "
                        "possible decompression bomb (raise max_unpacked_bytes if it is genuine)"
                    )
                spool.write(chunk)
    except KrtlabError:
        spool.close()
        raise
    except _DECODE_ERRORS as exc:
        spool.close()
        reason = f"corrupt or truncated gzip data ({str(exc) or type(exc).__name__})"
        raise _not_a_krt(label, reason) from exc
    return spool  # _scan_tar reads it from the start


def _normalize(name: str, label: str) -> str:
    norm = posixpath.normpath(name)
    checks = (
        ("\x00" in name, "contains a NUL byte"),
        (not name, "is empty"),
        (name.startswith("/"), "is an absolute path"),
        (norm == ".." or norm.startswith("../"), "points outside the archive root ('..')"),
    )
    problem = next((text for failed, text in checks if failed), None)
    if problem:
        raise UnsafeArchiveError(f"{label}: member name {name!r} {problem}", member=name)
    return norm


def _kind(info: tarfile.TarInfo, name: str, label: str) -> bool:
    """True for a directory, False for a regular file; refuses every other entry type."""
    if info.type == tarfile.DIRTYPE:
        return True
    if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return False
    what = _SPECIAL.get(info.type, f"an entry of tar type {info.type!r}")
    where = posixpath.normpath(posixpath.join(KRE_TMP_DIR, name))  # Go's filepath.Join
    kre = _KRE_TYPE_ERROR.format(code=info.type[0], name=where)
    raise UnsafeArchiveError(
        f"{label}: member {name!r} is {what}; a .krt may hold only directories and regular "
        f"files (KRE's extractor fails with {kre!r})",
        member=name,
    )


_Limits = tuple[int | None, int | None, int | None]  # bytes, unpacked bytes, members


@dataclass
class _Scan:
    entries: list[tuple[str, bool]]  # (normalized path, is_dir) in archive order; "." = root
    files: dict[str, Member]


def _scan(source: str | Path | bytes, limits: _Limits, *, with_data: bool) -> _Scan:
    label = _label(source)
    max_bytes, max_unpacked_bytes, max_members = limits
    with _open_compressed(source, label, max_bytes) as compressed:
        spool = _gunzip(compressed, label, max_unpacked_bytes)
    with spool:
        try:
            return _scan_tar(spool, label, max_members, with_data)
        except KrtlabError:
            raise
        except _DECODE_ERRORS as exc:
            reason = (
                f"the gzip content is not a valid tar archive ({str(exc) or type(exc).__name__})"
            )
            raise _not_a_krt(label, reason) from exc


def _scan_tar(spool: BinaryIO, label: str, max_members: int | None, with_data: bool) -> _Scan:
    result = _Scan([], {})
    end = spool.seek(0, os.SEEK_END)
    spool.seek(0)
    dirs: set[str] = {"."}  # explicit and implied directories
    # Strict UTF-8: a name that is not valid UTF-8 cannot round-trip through krtlab.
    with tarfile.open(fileobj=spool, mode="r:", encoding="utf-8", errors="strict") as tar:
        for count, info in enumerate(tar, start=1):
            if max_members is not None and count > max_members:
                raise UnsafeArchiveError(f"{label} has more than {max_members} entries")
            name = info.name
            # Python folds a global PAX header (``git archive`` writes one) into the next entry;
            # Go's reader returns it as an entry of type 'g', which KRE's extractor rejects.
            is_dir = _kind(_GLOBAL_HEADER if tar.pax_headers else info, name, label)
            path = _normalize(name, label)
            parents = _parents(path)
            clash = next((p for p in parents if p in result.files), None)
            if clash is None and path in (result.files if is_dir else dirs):
                clash = path
            if clash is not None:
                text = f"{label}: {clash!r} is both a file and a directory"
                raise UnsafeArchiveError(text, member=name)
            if not is_dir and path in result.files:
                raise UnsafeArchiveError(f"{label}: duplicate member {path!r}", member=name)
            result.entries.append((path, is_dir))
            dirs.update(parents)
            if is_dir:
                dirs.add(path)
                continue
            if info.offset_data + info.size > end:
                raise tarfile.ReadError(f"unexpected end of data in {name!r}")
            # all there: the check above keeps its data inside the spool
            extracted = tar.extractfile(info) if with_data else None
            data = extracted.read() if extracted is not None else b""
            result.files[path] = Member(path, data, executable=bool(info.mode & 0o111))
        _check_end(spool, tar.offset)
    return result


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _check_end(spool: BinaryIO, offset: int) -> None:
    # tarfile stops quietly at an unreadable header after the first one; Go's reader (and so
    # KRE) fails there. Only zero padding or the end of the data may follow the last entry.
    spool.seek(offset)
    block = spool.read(tarfile.BLOCKSIZE)
    if block.strip(b"\0"):
        raise tarfile.ReadError(f"invalid tar header at offset {offset}")


def read_krt(
    source: str | Path | bytes,
    *,
    max_bytes: int | None = MAX_KRT_BYTES,
    max_unpacked_bytes: int | None = MAX_UNPACKED_BYTES,
    max_members: int | None = MAX_MEMBERS,
) -> dict[str, Member]:
    """Read the regular files of a ``.krt``, treating it as untrusted input.

    Nothing is extracted to disk. Directory entries are accepted but not returned; ``./``
    prefixes and ``a/../b`` spellings are normalized. Only krtlab errors come out, whatever the
    bytes.

    Args:
        source: a path to the ``.krt`` (a ``str`` is always a path) or its bytes.
        max_bytes: largest compressed size accepted, checked before reading (KRE's upload limit).
        max_unpacked_bytes: largest decompressed tar stream accepted, counted while decompressing
            (headers, padding and file data; sizes in headers are not trusted).
        max_members: largest number of tar entries accepted.
        ``None`` disables a limit.

    Returns:
        Normalized path to :class:`Member`, in archive order.

    Raises:
        UnsafeArchiveError: absolute or ``..`` paths, NUL bytes in names, links, devices, FIFOs
            or any entry type other than directory and regular file (KRE cannot extract them),
            duplicate files, a path used as both file and directory, or a limit exceeded.
        BundleError: the source cannot be read or is not a gzip-compressed tar (wrong format,
            truncated, corrupt, names that are not UTF-8).
    """
    return _scan(source, (max_bytes, max_unpacked_bytes, max_members), with_data=True).files


def _mkdir_replay(
    source: str | Path | bytes | _Scan,
) -> tuple[set[str], set[str], tuple[str, bool] | None, str | None]:
    """Replay KRE's extractor: (parents missing when needed, directories made twice, the first
    entry it fails on for want of a parent and whether it is a folder, the first folder made
    twice)."""
    created, missing, repeated = {"."}, set(), set()
    first_orphan: tuple[str, bool] | None = None
    first_repeated: str | None = None
    limits = (MAX_KRT_BYTES, MAX_UNPACKED_BYTES, MAX_MEMBERS)
    scan = source if isinstance(source, _Scan) else _scan(source, limits, with_data=False)
    for path, is_dir in scan.entries:
        lacking = [p for p in _parents(path) if p not in created]
        missing.update(lacking)
        # the content extractor skips krt.yml-like files (it wrote the krt.yml before)
        if lacking and first_orphan is None and (is_dir or not is_krt_yml_name(path)):
            first_orphan = (path, is_dir)
        if is_dir:
            if path in created:
                repeated.add(path)
                first_repeated = path if first_repeated is None else first_repeated
            created.add(path)
    return missing, repeated, first_orphan, first_repeated


# KRE's extraction folder: ioutil.TempDir("", "version"), a random number after "version".
KRE_TMP_DIR = "/tmp/version<random>"


def kre_extract_errors(source: str | Path | bytes) -> tuple[str | None, str | None]:
    """KRE 7's messages when its extractor meets an entry whose folder has no entry before it, and
    a folder entry for a folder that exists (``./`` or a repeat); None where it would not.

    The texts are ``parser.go``'s ``processFile`` errors wrapped by ``Extract``; the extraction
    folder's random name is shown as :data:`KRE_TMP_DIR`. KRE stops at the first failing entry.
    """
    return _kre_texts(_mkdir_replay(source))


def _kre_texts(replay: tuple[Any, Any, tuple[str, bool] | None, str | None]) -> tuple[
    str | None, str | None
]:  # fmt: skip
    _missing, _repeated, orphan, repeated = replay
    head = "KRE 7: error on KRT content extraction: "

    def at(path: str) -> str:
        return KRE_TMP_DIR if path == "." else f"{KRE_TMP_DIR}/{path}"

    orphan_text = None
    if orphan is not None:
        p = at(orphan[0])
        orphan_text = head + (
            f"error creating krt dir {p}: mkdir {p}: no such file or directory"
            if orphan[1]
            else f"error creating krt file {p}: open {p}: no such file or directory"
        )
    repeated_text = None
    if repeated is not None:
        p = at(repeated)
        repeated_text = head + f"error creating krt dir {p}: mkdir {p}: file exists"
    return orphan_text, repeated_text


def missing_directory_entries(source: str | Path | bytes) -> list[str]:
    """Directories that KRE's extractor would need but that have no entry before their contents.

    KRE creates directories with ``os.Mkdir`` only when it meets their entry and files with
    ``os.Create``, so ``src/x/main.py`` fails unless ``src/`` and ``src/x/`` entries come first.
    Hand-made archives (``zip``-style tools, ``tar`` with explicit file lists) often lack them.

    Args:
        source: a path to the ``.krt`` or its bytes (read with :func:`read_krt`'s default limits).

    Returns:
        Sorted normalized directory paths; empty when KRE can create every parent.

    Raises:
        UnsafeArchiveError, BundleError: as :func:`read_krt`.
    """
    return sorted(_mkdir_replay(source)[0])


def repeated_directory_entries(source: str | Path | bytes) -> list[str]:
    """Directory entries that would make KRE's ``os.Mkdir`` fail because the directory exists.

    That is a root entry (``./``, as written by ``tar -czf x.krt -C dir .``; reported as ``"."``)
    and any directory listed twice.

    Args:
        source: as :func:`missing_directory_entries` (same errors as :func:`read_krt`).

    Returns:
        Sorted normalized directory paths; empty when every ``os.Mkdir`` would succeed.
    """
    return sorted(_mkdir_replay(source)[1])


def krt_yml_member(names: Iterable[str], *, root_only: bool = False) -> str | None:
    """The entry KRE would read as the krt.yml: the first name matching ``(^|/)krt.ya?ml$``.

    This is krtlab's one manifest picker: every reader that chooses a krt.yml (loading a .krt
    or a project, the KRE stand-in, the deploy client) goes through it. KRE's regex is
    reproduced literally (see :data:`~krtlab.spec.rules.KRT_YML_PATTERN`), so the first match
    may be a nested ``docs/krt.yml`` or even ``krtxyml``; pass names in archive order (a folder
    entry as Go's reader gives it, with its trailing ``/``, never matches).

    Args:
        names: tar entry names in archive order.
        root_only: consider only entries at the archive root. That is krtlab's own reading
            (:attr:`krtlab.bundle.project.Project.manifest_name`: src paths resolve from the
            root); where it differs from KRE's pick, :func:`krtlab.bundle.load.load_project`
            reports it.

    Returns:
        The first matching name, or ``None`` (KRE: ``error krt.yml file missing``).
    """
    return next((n for n in names if is_krt_yml_name(n) and not (root_only and "/" in n)), None)


def krt_yml_unpack_error(name: str) -> str | None:
    """KRE's error when the krt.yml it picked is ``name`` (archive name), or None.

    ``extractKrtYaml`` writes that one entry before anything else is unpacked, with
    ``os.Create`` (no parent folders), so a nested pick fails with this text, wrapped in
    ``error on KRT Yaml extraction: `` (the extraction folder shown as :data:`KRE_TMP_DIR`).
    """
    norm = posixpath.normpath(name)
    if "/" not in norm:
        return None
    where = f"{KRE_TMP_DIR}/{norm}"
    return f"error creating krt file {where}: open {where}: no such file or directory"


def krt_yml_tarinfo(tar: tarfile.TarFile) -> tarfile.TarInfo | None:
    """The entry of an open tar that KRE reads as the krt.yml (:func:`krt_yml_member`'s pick).

    Python's tarfile drops a folder entry's trailing ``/``; Go's reader (KRE's) keeps it, so a
    folder named ``krt.yml/`` is not taken for the file.
    """
    infos = tar.getmembers()
    names = [info.name + "/" if info.isdir() else info.name for info in infos]
    pick = krt_yml_member(names)
    return None if pick is None else infos[names.index(pick)]
