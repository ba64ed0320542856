"""IPython magics for the authoring loop: ``%load_ext krtlab``.

======================================  ==========================================================
``%%krt_proto v [--as pb]``             the cell body is ``v``'s public proto; errors are shown at
                                        their cell line with the line and a caret
``%krt_validate v``                     the validation report (errors, warnings, hints)
``%krt_run v RPC [REQUEST]``            ``v.run(RPC, REQUEST)``; REQUEST is JSON or a Python
                                        expression; returns the :class:`RunResult`
``%krt_export v DIR [--krt FILE]``      validate, then write the project folder (and a ``.krt``)
======================================  ==========================================================

``v`` names a :class:`~krtlab.Version` in the notebook. Mistakes in a magic's own arguments are
one-line ``UsageError``\\ s; krtlab errors (a proto that does not compile, a version with
validation errors, files that would be replaced) are shown as readable messages instead of
tracebacks, and still fail the cell so "Run all" and ``krtlab export`` stop there.

This module imports IPython; ``import krtlab`` never imports it (``%load_ext krtlab`` does).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from krtlab.errors import KrtlabError, ProtoError, ValidationError
from krtlab.spec.suggest import did_you_mean

from .export import export_version, versions_in

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from krtlab.authoring.version import Version

__all__ = [
    "KrtMagics",
    "format_proto_error",
    "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register the krtlab magics (``%load_ext krtlab``)."""
    ipython.register_magics(KrtMagics)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove the krtlab magics (``%unload_ext krtlab``)."""
    # IPython has no public way to unregister magics; its table is a plain dict per kind.
    table = ipython.magics_manager.magics
    for kind, names in KrtMagics.magics.items():
        for name in names:
            table[kind].pop(name, None)


def format_proto_error(exc: ProtoError, text: str, *, file: str, first_line: int = 2) -> str:
    """``exc`` as a readable, located message for a proto written in a cell.

    Args:
        exc: the compile error; its issues carry file, line and column.
        text: the proto source as compiled (the cell body).
        file: the proto file the cell defines (issues in other files are shown as they are).
        first_line: the cell line of the proto's first line (2 below a ``%%`` magic line).

    Returns:
        ``ProtoError: <file> does not compile`` then, per issue, ``cell line N, column C:
        message`` with the offending line and a caret under the column.
    """
    lines = text.splitlines()
    count = len(exc.issues)
    out = [f"ProtoError: {file} does not compile" + (f" ({count} problems)" if count > 1 else "")]
    if not exc.issues:  # no location known: protoc's own words
        out += [f"  {line}" for line in str(exc).splitlines()[1:]] or [str(exc)]
    for issue in exc.issues:
        if issue.file != file or issue.line is None:
            out.append(str(issue))
            continue
        cell_line = issue.line + first_line - 1
        where = f"cell line {cell_line}" + (f", column {issue.column}" if issue.column else "")
        out.append(f"{where}: {issue.message}")
        if 1 <= issue.line <= len(lines):
            # protoc counts a tab as a jump to the next multiple of 8, as expandtabs does
            source = lines[issue.line - 1].expandtabs(8)
            gutter = " " * len(str(cell_line))
            out.append(f"  {cell_line} | {source}")
            if issue.column:
                out.append(f"  {gutter} | {' ' * (issue.column - 1)}^")
    return "\n".join(out)


def _shown_as(exc: BaseException, text: str) -> BaseException:
    """Make IPython show ``text`` instead of a traceback for ``exc``.

    ``_render_traceback_`` is IPython's hook for exceptions that format themselves; setting it
    on the instance keeps the exception's own type (``ProtoError``...) for the cell's error
    output, which ``krtlab export`` reports by name.
    """
    exc._render_traceback_ = lambda: text.splitlines()  # type: ignore[attr-defined]
    return exc


def _plain(text: str) -> None:
    display({"text/plain": text}, raw=True)


@magics_class
class KrtMagics(Magics):
    """The krtlab magics; see the module docstring for the list."""

    # -- helpers ---------------------------------------------------------------------------------

    def _version(self, name: str) -> Version:
        """The Version held by the variable ``name``, or a one-line UsageError that helps."""
        from krtlab.authoring.version import Version

        ns = self.shell.user_ns if self.shell is not None else {}
        found = versions_in(ns)
        value = ns.get(name)
        if isinstance(value, Version):
            return value
        listed = ", ".join(sorted(found)[:5])
        hint = did_you_mean(name, found) or (
            f"Versions here: {listed}" if found else "define one first: v = krt.Version('name')"
        )
        if name not in ns:
            raise UsageError(f"no variable {name!r} in this notebook; {hint}")
        kind = type(value).__name__
        raise UsageError(f"{name!r} is not a krtlab Version (type {kind}); {hint}")

    # -- %%krt_proto ----------------------------------------------------------------------------

    @magic_arguments()
    @argument("version", metavar="VERSION_VAR", help="the variable holding the Version")
    @argument(
        "--name",
        metavar="FILE.proto",
        help="file name of the proto in the bundle (default: the version's, public_input.proto; "
        "KRE's entrypoint only reads public_input.proto)",
    )
    @argument(
        "--as",
        dest="as_name",
        metavar="NAME",
        help="also bind the module of message classes to NAME (nothing is bound otherwise)",
    )
    @no_var_expand
    @cell_magic
    def krt_proto(self, line: str, cell: str) -> None:
        """Compile the cell as the version's public proto (``v.proto(cell)``).

        Errors are shown at their cell line, with the line and a caret. On success the
        messages and rpcs are listed; the classes are ``v.protos["public_input.proto"]`` (or
        ``NAME`` with ``--as NAME``), and modules handed out earlier follow the new proto.
        """
        args = parse_argstring(self.krt_proto, line)
        v = self._version(args.version)
        if not cell.strip():
            raise UsageError(f"the cell is empty: write the proto below %%krt_proto {line}")
        if args.as_name is not None and not args.as_name.isidentifier():
            raise UsageError(f"--as {args.as_name!r} is not a Python name")
        if args.name is not None and not args.name.endswith(".proto"):
            raise UsageError(f"--name {args.name!r} must end with .proto")
        file = args.name or v._proto_file
        try:
            module = _compile_as(v, file, cell)
        except ProtoError as exc:
            raise _shown_as(exc, format_proto_error(exc, cell, file=file)) from None
        except KrtlabError as exc:
            raise _shown_as(exc, f"{type(exc).__name__}: {exc}") from None
        if args.as_name:
            assert self.shell is not None  # magics run in a shell
            self.shell.user_ns[args.as_name] = module
        if args.as_name:
            reach = f"(bound to {args.as_name})"
        else:  # nothing is bound: say how to reach the classes
            reach = (
                f"the message classes: {args.version}.protos[{file!r}].Request, or write "
                f"%%krt_proto {args.version} --as pb to bind them to pb"
            )
        _plain(_proto_summary(v, file) + "\n" + reach)

    # -- %krt_validate ---------------------------------------------------------------------------

    @magic_arguments()
    @argument("version", metavar="VERSION_VAR", help="the variable holding the Version")
    @line_magic
    def krt_validate(self, line: str) -> None:
        """Show ``v.validate()``: every error and warning with where it is and a hint."""
        args = parse_argstring(self.krt_validate, line)
        v = self._version(args.version)
        try:
            report = v.validate()
        except KrtlabError as exc:  # e.g. a node whose source cannot be captured
            raise _shown_as(exc, f"{type(exc).__name__}: {exc}") from None
        display({"text/plain": str(report), "text/html": report._repr_html_()}, raw=True)

    # -- %krt_run --------------------------------------------------------------------------------

    @no_var_expand
    @line_magic
    def krt_run(self, line: str) -> Any:
        """``%krt_run v RPC [REQUEST]``: run a workflow in this process and return the result.

        RPC is an rpc or workflow name. REQUEST is a JSON object (``{"name": "Ann"}``) or any
        Python expression giving a dict or a message (``req``, ``dict(name="Ann")``); omitted,
        the request is empty. ``r = %krt_run v PyGreet {"name": "Ann"}`` keeps the result.
        """
        parts = line.split(None, 2)
        if len(parts) < 2:
            raise UsageError('usage: %krt_run VERSION_VAR RPC [REQUEST], e.g. {"name": "Ann"}')
        v = self._version(parts[0])
        request = self._request(parts[2]) if len(parts) > 2 else None
        try:
            return v.run(parts[1], request)
        except KrtlabError as exc:
            raise _shown_as(exc, f"{type(exc).__name__}: {exc}") from None

    def _request(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as json_error:
            try:
                assert self.shell is not None  # magics run in a shell
                return self.shell.ev(text)
            except Exception as exc:
                raise UsageError(
                    f"REQUEST is neither JSON ({json_error}) nor a Python expression "
                    f"({type(exc).__name__}: {exc})"
                ) from None

    # -- %krt_export -----------------------------------------------------------------------------

    @magic_arguments()
    @argument("version", metavar="VERSION_VAR", help="the variable holding the Version")
    @argument("dir", metavar="DIR", help="the project folder to write")
    @argument("--krt", metavar="FILE", help="also build a reproducible .krt")
    @argument(
        "-f", "--force", action="store_true", help="replace files edited by hand (and the .krt)"
    )
    @no_var_expand
    @line_magic
    def krt_export(self, line: str) -> None:
        """Validate, then write the project folder (and the ``.krt`` with ``--krt FILE``).

        Nothing is written when the version has errors (the report is shown) or when files
        edited by hand would be replaced (listed; ``--force`` replaces them).
        """
        args = parse_argstring(self.krt_export, line)
        v = self._version(args.version)
        try:
            result = export_version(
                v, args.dir, krt=args.krt, overwrite=args.force, variable=args.version
            )
        except ValidationError as exc:
            text = f"ValidationError: {exc.report}\nnothing written"
            raise _shown_as(exc, text) from None
        except KrtlabError as exc:
            raise _shown_as(exc, f"{type(exc).__name__}: {exc}") from None
        _plain(str(result))


def _compile_as(v: Version, file: str, text: str) -> Any:
    """``v.proto(text)`` under the file name ``file`` (renaming the public proto if needed)."""
    old = v._proto_file
    if file == old:
        return v.proto(text)
    # A rename moves the public proto: the old file must not stay in the bundle beside it.
    sources = v._protos.sources
    previous = sources.pop(old, None)
    v._proto_file = file
    try:
        return v.proto(text)
    except Exception:
        v._proto_file = old
        if previous is not None:
            sources[old] = previous
        raise


def _proto_summary(v: Version, file: str) -> str:
    """``public_input.proto: Request, Response`` then one line per Entrypoint rpc."""
    fileset = v._protos.fileset
    if fileset is None or file not in fileset.files:
        return f"{file}: compiled"
    package = fileset.package(file)

    def short(name: str) -> str:
        return name[len(package) + 1 :] if package and name.startswith(package + ".") else name

    messages = [short(m) for m in fileset.messages(file)]
    lines = [f"{file}: {', '.join(messages) or 'no messages'}"]
    rpcs = fileset.entrypoint_rpcs(file)
    if rpcs is None:
        lines.append("  no service Entrypoint: KRE serves the rpcs of service Entrypoint")
    for rpc in (rpcs or {}).values():
        lines.append(f"  rpc {rpc.name}({short(rpc.input_type)}) → {short(rpc.output_type)}")
    return "\n".join(lines)
