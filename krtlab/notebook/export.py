"""Notebook → project: run a notebook headlessly and export the version it defines.

:func:`export_notebook` (``krtlab export NOTEBOOK.ipynb -o DIR``) executes every code cell with
nbclient in a kernel running this very Python (so it imports this krtlab), with the notebook's
folder as working directory, then exports the version *from inside the kernel*: source capture
reads the node functions from the cells that defined them, exactly as in Jupyter. Cells tagged
``krtlab-export`` are skipped: they are the notebook's own export step, which the command
replaces (so ``-o DIR`` is the only place written).

:func:`export_version` is the export step itself, shared with ``%krt_export``: validate first and
refuse before writing anything, then write the folder and the optional ``.krt``.

Importing this module imports neither nbclient nor IPython; running a notebook needs the
``notebook`` extra (``pip install 'krtlab[notebook]'``). It is a little over 400 lines because
the kernel's half and the command's half of one exchange (the answer's format) stay together.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import krtlab.errors as errors
from krtlab.authoring.script import pick_version, versions_in
from krtlab.errors import BundleError, KrtlabError, OverwriteError, ValidationError

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

__all__ = [
    "SKIP_TAG",
    "Exported",
    "export_notebook",
    "export_version",
    "kernel_export",
    "pick_version",
    "run_notebook",
    "versions_in",
]

#: Cells with this tag are skipped by ``krtlab export`` and ``krtlab new`` (they export).
SKIP_TAG = "krtlab-export"
RESULT_MIME = "application/vnd.krtlab.export+json"
_INSTALL = "pip install 'krtlab[notebook]'"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_FRAME = re.compile(r"Cell In\[\d*\], line (\d+)")


@dataclass(frozen=True)
class Exported:
    """What an export wrote: the version (and the notebook ``variable`` holding it), the project
    ``folder`` and its number of ``files``, the ``.krt`` if asked for, the report's warnings."""

    version: str
    folder: Path
    krt: Path | None = None
    variable: str = ""
    files: int = 0
    warnings: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        held = f" ({self.variable})" if self.variable else ""
        text = f"exported {self.version}{held} to {self.folder} ({self.files} files)"
        if self.krt is not None:
            size = self.krt.stat().st_size if self.krt.is_file() else 0
            text += f"\nbuilt {self.krt} ({size:,} bytes)"
        return "\n".join([text, *self.warnings])


# -- inside the notebook's process ---------------------------------------------------------------


def export_version(
    v: Version,
    folder: str | os.PathLike[str],
    *,
    krt: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    variable: str = "",
) -> Exported:
    """Validate ``v``, then write its project folder (and a ``.krt`` when ``krt`` is given).

    Nothing is written when the version has errors or when a file edited by hand (or a
    ``.krt`` that is not a build of this version) would be replaced, unless ``overwrite``.

    Raises:
        ValidationError: the version has errors (``.report`` holds every finding).
        OverwriteError: files would be replaced (``.paths``).
    """
    from krtlab.bundle.write import MARKER

    report = v.validate().raise_for_errors()
    krt_path = Path(krt) if krt is not None else None
    if krt_path is not None and not overwrite:
        _check_krt_target(krt_path, v.name)  # before the folder, so a refusal writes nothing
    out = v.export(folder, overwrite=overwrite)
    built = v.build(krt_path, overwrite=overwrite) if krt_path is not None else None
    try:
        files = len(json.loads((out / MARKER).read_text())["files"])
    except (OSError, ValueError, KeyError):
        files = 0
    warnings = tuple(f.format() for f in report.warnings)
    return Exported(v.name, out, built, variable, files, warnings)


def _check_krt_target(path: Path, version: str) -> None:
    if not path.exists():
        return
    from krtlab.bundle.load import load_project

    try:
        same = not path.is_dir() and load_project(path).manifest.version == version
    except KrtlabError:
        same = False
    if not same:
        raise OverwriteError(
            f"{path} exists and is not a build of {version!r}; not replacing it "
            "(pass overwrite=True, CLI: --force)",
            [str(path)],
        )


def kernel_export(namespace: Mapping[str, Any], options: str) -> None:
    """Run by :func:`export_notebook` inside the kernel; answers with one display message.

    Args:
        namespace: the notebook's globals.
        options: JSON with ``out``, ``krt``, ``overwrite`` and ``version``.
    """
    from IPython.display import display

    opts = json.loads(options)
    answer: dict[str, Any]
    try:
        variable, v = pick_version(namespace, opts.get("version"))
        done = export_version(
            v, opts["out"], krt=opts.get("krt"), overwrite=opts["overwrite"], variable=variable
        )
        answer = {"status": "ok", **asdict(done), "folder": str(done.folder)}
        answer["krt"] = None if done.krt is None else str(done.krt)
    except ValidationError as exc:
        findings = [f.to_dict() for f in exc.report.findings]
        answer = {"status": "invalid", "title": exc.title, "subject": exc.report.subject,
                  "findings": findings}  # fmt: skip
    except KrtlabError as exc:
        answer = {"status": "error", "type": type(exc).__name__, "message": str(exc),
                  "paths": list(getattr(exc, "paths", []))}  # fmt: skip
        if isinstance(exc, errors.CaptureError):  # keep where the notebook is at fault
            answer["capture"] = {k: getattr(exc, k) for k in ("node", "name", "where", "reason")}
    display({RESULT_MIME: answer, "text/plain": answer["status"]}, raw=True)


# -- the command's side --------------------------------------------------------------------------


def export_notebook(
    notebook: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    krt: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    version: str | None = None,
    timeout: float = 600,
    kernel_manager: Callable[[], Any] | None = None,
) -> Exported:
    """Execute ``notebook`` headlessly and export the version it defines to ``out``.

    Args:
        notebook: an ``.ipynb`` file; it runs with its own folder as working directory.
        out: the project folder to write. krt: also build this ``.krt``.
        overwrite: replace files edited by hand (``--force``).
        version: the variable or version name to export when the notebook defines several.
        timeout: seconds each cell may take.
        kernel_manager: a factory of jupyter_client kernel managers (default: a kernel running
            ``sys.executable``).

    Raises:
        BundleError: the notebook cannot be read or a cell failed (cell number and error).
        SpecError: it defines no version, or several.
        ValidationError: the version has errors; nothing was written.
        OverwriteError: files edited by hand would be replaced.
    """
    options = {
        "out": str(Path(out).resolve()),  # the kernel runs elsewhere: relative to here
        "krt": None if krt is None else str(Path(krt).resolve()),
        "overwrite": overwrite,
        "version": version,
    }
    code = (
        '__import__("krtlab.notebook.export", fromlist=["kernel_export"]).kernel_export('
        f"globals(), {json.dumps(options)!r})"
    )
    _, extra = run_notebook(notebook, timeout=timeout, extra=code, kernel_manager=kernel_manager)
    answer = _answer(extra)
    if answer.pop("status") != "ok":
        raise _error_from(answer)
    krt_path = answer.pop("krt")
    return Exported(**{**answer, "folder": Path(answer["folder"]),
                       "krt": None if krt_path is None else Path(krt_path),
                       "warnings": tuple(answer["warnings"])})  # fmt: skip


def _answer(cell: Any) -> dict[str, Any]:
    for output in getattr(cell, "outputs", None) or []:
        data = output.get("data", {})
        if RESULT_MIME in data:
            value = data[RESULT_MIME]
            return dict(json.loads(value) if isinstance(value, str) else value)
    raise BundleError("the kernel gave no export result (was krtlab importable in the kernel?)")


def _error_from(answer: Mapping[str, Any]) -> KrtlabError:
    if "findings" in answer:
        from krtlab.spec.findings import Finding, Report

        names = set(Finding.__dataclass_fields__)
        findings = []
        for f in answer["findings"]:
            fields: dict[str, Any] = {k: v for k, v in f.items() if k in names}
            if "loc" in fields:
                fields["loc"] = tuple(fields["loc"])
            findings.append(Finding(**fields))
        return ValidationError(Report.of(findings, answer["subject"]), answer["title"])
    kind, message = answer["type"], answer["message"]
    if kind == "CaptureError":
        return errors.CaptureError(message, **answer.get("capture", {}))
    if kind == "OverwriteError":
        return OverwriteError(message, answer.get("paths", []))
    cls = getattr(errors, kind, None)
    simple = {"SpecError", "BundleError", "ProtoError", "CaptureError", "MessageTypeError"}
    return cls(message) if kind in simple and cls is not None else BundleError(message)


def run_notebook(
    notebook: str | os.PathLike[str],
    *,
    timeout: float = 600,
    extra: str | None = None,
    skip_tag: str = SKIP_TAG,
    kernel_manager: Callable[[], Any] | None = None,
) -> tuple[Any, Any]:
    """Execute every code cell of ``notebook`` (in its folder), then ``extra`` code if given.

    Returns:
        The executed notebook (not saved) and the cell that ran ``extra`` (or None).

    Raises:
        BundleError: unreadable notebook; a failing cell (its number, the exception line and,
            for Python errors, the line of the cell that raised); a timeout or a dead kernel.
    """
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ImportError as exc:
        raise KrtlabError(
            f"running notebooks needs nbclient and ipykernel ({exc}): {_INSTALL}"
        ) from None
    path = Path(notebook)
    if path.suffix != ".ipynb" or not path.is_file():
        raise BundleError(f"{path} is not a notebook file (.ipynb)")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad JSON
        raise BundleError(f"cannot read {path}: {exc}") from None
    with _kernel(kernel_manager) as km, ExitStack() as stack:
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            skip_cells_with_tag=skip_tag,
            resources={"metadata": {"path": str(path.resolve().parent)}},
        )
        try:
            stack.enter_context(client.setup_kernel(cleanup_kc=True, env=_kernel_env()))
        except RuntimeError as exc:  # jupyter_client's way of saying the kernel never answered
            raise BundleError(
                f"the Jupyter kernel ({sys.executable}) did not start: {exc}"
            ) from None
        index, extra_cell = -1, None
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            if extra is not None:
                extra_cell = nbformat.v4.new_code_cell(extra)
                nb.cells.append(extra_cell)
                index = len(nb.cells) - 1
                client.execute_cell(extra_cell, index, store_history=False)
        except CellExecutionError as exc:
            raise BundleError(_failure(path, index, nb.cells[index], exc)) from None
        except CellTimeoutError:
            raise BundleError(
                f"{path.name}: cell {index + 1} did not finish within {timeout:g} s"
            ) from None
        except DeadKernelError:
            raise BundleError(f"{path.name}: the kernel died running cell {index + 1}") from None
    return nb, extra_cell


@contextmanager
def _kernel(factory: Callable[[], Any] | None) -> Iterator[Any]:
    """A kernel manager for a kernel that runs ``sys.executable`` (whatever else is installed)."""
    if factory is not None:
        yield factory()
        return
    try:
        import ipykernel  # noqa: F401  (only to fail early with the install command)
        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
    except ImportError as exc:
        raise KrtlabError(f"running notebooks needs ipykernel ({exc}): {_INSTALL}") from None
    with tempfile.TemporaryDirectory(prefix="krtlab-kernel-") as tmp:
        spec = Path(tmp) / "krtlab-python"
        spec.mkdir()
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "krtlab", "language": "python"})
        )
        specs = KernelSpecManager(kernel_dirs=[tmp])
        # Unix sockets where there are: private to this user, unlike loopback TCP (which the
        # kernel warns about on stderr). Absolute paths: the kernel runs in another folder.
        ipc = {"transport": "ipc", "ip": str(Path(tmp) / "ipc")} if os.name == "posix" else {}
        yield AsyncKernelManager(kernel_name="krtlab-python", kernel_spec_manager=specs, **ipc)


def _kernel_env() -> dict[str, str]:
    """Ours, plus krtlab's folder on PYTHONPATH when it is not installed (``python -m
    krtlab.cli`` in a checkout): the kernel starts in the notebook's folder, not ours."""
    import site

    import krtlab

    root = str(Path(krtlab.__file__).resolve().parent.parent)
    installed = {
        str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]
    }
    env = dict(os.environ)
    if root not in installed:  # never put site-packages before the standard library
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _failure(path: Path, index: int, cell: Any, exc: Any) -> str:
    """``nb.ipynb: cell 5 (In [3]) failed: NameError: ...`` plus the cell line that raised."""
    ename, evalue = getattr(exc, "ename", "Error"), str(getattr(exc, "evalue", exc))
    count = cell.get("execution_count")
    head = f"{path.name}: cell {index + 1}" + (f" (In [{count}])" if count else "") + " failed"
    traceback: list[str] = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            traceback = [_ANSI.sub("", t) for t in output.get("traceback", [])]
    frames = [m for t in traceback for m in _CELL_FRAME.finditer(t)]
    lines = [head]
    if frames:  # a Python traceback: its first frame is the cell itself
        number = int(frames[0].group(1))
        source = cell.source.splitlines()
        lines.append(f"{ename}: {evalue}")
        if 1 <= number <= len(source):
            lines.append(f"  line {number}: {source[number - 1].strip()}")
    elif traceback and len(traceback) <= 40 and "Traceback" not in traceback[0]:
        # an error that formats itself (krtlab magics): its own text is the readable one
        lines += "\n".join(traceback).splitlines()
    else:
        lines.append(f"{ename}: {evalue}")
    return "\n".join(lines)
