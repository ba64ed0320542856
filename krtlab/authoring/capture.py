"""Capture a node's functions as standalone Python source.

:func:`capture` takes the node's handler (and init) function, defined in Jupyter cells or ordinary
modules, and collects exactly what a standalone ``main.py`` needs, and nothing else:

* the functions' own source, and the imports, helper functions and classes they use
  (transitively);
* a global whose value is a plain literal (numbers, strings, lists, dicts ...) as its value, so
  later changes to it are kept;
* any other global as **the user's own statement that bound it last** (``WORD =
  re.compile(...)``, ``log = logging.getLogger(...)``, ``TOK = Tokenizer.default()``), with what
  that statement needs in turn, in the order the notebook ran it (a constant redefined after a
  statement used it is emitted before and after that statement);
* when no single statement made the value (a loop, a ``with`` block, ``+=``, ``exec``, a cell
  gone from history), the value written back as source where it has an exact form
  (:mod:`~krtlab.authoring.capture_values`);
* local modules it imports (a ``utils.py`` beside the notebook): their names, so that their
  files travel into the node's folder (:mod:`~krtlab.authoring.local_modules`).

What cannot be re-created faithfully is refused with a :class:`~krtlab.errors.CaptureError` that
names the node, the name, the cell (or file) and line, and what to do instead: open files,
sockets and generators, objects made by reading a file beside the notebook, objects a later
cell changed in place (``TOK.lower = False``, ``MODEL.fit(X, y)``), krtlab objects, and anything
made from those.

Importing this module does not import IPython.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from krtlab.authoring.capture_common import RESERVED, RUNNER_MODULES, _fresh, _identifiers
from krtlab.authoring.capture_source import location
from krtlab.authoring.handler_py import ImportLine, import_group, proto_import, render_imports
from krtlab.errors import CaptureError

__all__ = ["RESERVED", "RUNNER_MODULES", "Captured", "capture", "location"]


@dataclass(frozen=True)
class Captured:
    """What a standalone node module needs, as collected by :func:`capture`.

    Attributes:
        node: the node name (for messages).
        definitions: source blocks in the order they must run: constants and statements, the
            helper functions and classes, then the roots; dedented, with krtlab decorators
            removed and reserved names renamed.
        names: each emitted function, class or statement-made name -> where it was defined.
        roots: the emitted names of the roots, in the order given to :func:`capture`.
        where: where the first root was defined (``cell In[5], line 1``, ``nodes.py, line 3``).
        local_modules: top-level names of the local modules imported (shipped with the node).
        origins: for each block, where each of its lines came from (``cell In[4], line 2``;
            empty for lines krtlab wrote, such as a constant's value).
    """

    node: str
    definitions: tuple[str, ...]
    names: Mapping[str, str] = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    where: str = ""
    local_modules: frozenset[str] = frozenset()
    origins: tuple[tuple[str, ...], ...] = ()
    _records: frozenset[ImportLine] = field(default=frozenset(), repr=False)
    _extra: dict = field(default_factory=dict, repr=False, compare=False)  # import_name_for's

    def _groups(self) -> list[list[ImportLine]]:
        records = sorted({*self._records, *self._extra.values()})
        return [[r for r in records if import_group(r.module) == g] for g in range(4)]

    @property
    def imports(self) -> tuple[str, ...]:
        """Import statements, deduplicated and sorted: ``__future__``, stdlib, third party, then
        the ``*_pb2`` modules; includes those added by :meth:`import_name_for`."""
        return tuple(line for group in self._groups() for line in render_imports(group))

    @property
    def modules(self) -> frozenset[str]:
        """Top-level modules imported, apart from ``__future__`` and the ``*_pb2`` files."""
        groups = self._groups()
        return frozenset(r.module.split(".")[0] for r in groups[1] + groups[2])

    @property
    def protos(self) -> frozenset[str]:
        """The ``*_pb2`` modules imported (they must sit beside ``main.py``)."""
        return frozenset(r.module for r in self._groups()[3])

    def import_block(self) -> str:
        """The imports as text, a blank line between groups (PEP 8)."""
        return "\n\n".join("\n".join(render_imports(g)) for g in self._groups() if g)

    def _add(self, module: str, attr: str, preferred: str) -> str:
        taken = {r.bound for r in {*self._records, *self._extra.values()}} | set(RESERVED)
        taken |= _identifiers(self.definitions)
        name = _fresh(preferred, taken)
        alias = "" if name == (attr or module) else name
        self._extra[(module, attr)] = ImportLine(module, attr, alias)
        return name

    def import_name_for(self, cls: Any) -> str:
        """The expression that names message class ``cls`` in the generated module.

        Reuses an import of the class or of its ``_pb2`` namespace (``pb.Request``), else adds
        ``from <x>_pb2 import <Name>`` (aliased if the name is taken) to :attr:`imports`.
        Nested types are reached through their top-level class (``Request.Item``).

        Raises:
            CaptureError: if ``cls`` is not a protobuf message class or enum wrapper.
        """
        found = proto_import(cls)
        if found is None:
            message = f"node {self.node!r}: {cls!r} is not a protobuf message class"
            raise CaptureError(message, node=self.node)
        module, top, path = found
        records = {*self._records, *self._extra.values()}
        base = next((r.bound for r in records if (r.module, r.attr) == (module, top)), None)
        space = next((r.bound for r in records if (r.module, r.attr) == (module, "")), None)
        if base is None:
            base = f"{space}.{top}" if space else self._add(module, top, top)
        return ".".join([base, *path])

    def module_name_for(self, module: str) -> str:
        """The name of ``module`` in the generated module, adding ``import module`` if needed."""
        records = {*self._records, *self._extra.values()}
        for r in records:
            if (r.module, r.attr) == (module, ""):
                return r.alias or module  # `import os.path` binds `os`: `os.path` names it
        return self._add(module, "", module.rpartition(".")[2])


def capture(
    roots: Sequence[Callable[..., Any]], *, node: str, keep: Sequence[Callable[..., Any]] = ()
) -> Captured:
    """Collect the source a standalone node module needs for ``roots``.

    Args:
        roots: the node's functions, handler first, then its init function if any: plain or
            ``async def`` functions of notebook cells or modules (krtlab node wrappers are
            unwrapped).
        node: the node name, for error messages.
        keep: roots that may keep a reserved name because they *are* the runner's entry point
            (an init function already named ``init``). Any other function, class, constant or
            import named ``handler`` or ``init`` becomes ``user_handler``/``user_init``, uses
            included, so that it cannot shadow the entry points.

    Returns:
        The captured imports, definitions, names and local modules.

    Raises:
        CaptureError: a referenced name is undefined or cannot be re-created faithfully (see
            the module docstring); the message names the node, the name, the cell/line and
            what to do instead.
    """
    if not roots:
        raise CaptureError(f"node {node!r}: nothing to capture", node=node)
    from krtlab.authoring.capture_resolve import Capturer

    return Capturer(node, roots, keep).run()
