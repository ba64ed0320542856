"""Checks of a Python node against the runner its image gives it (see :mod:`krtlab.spec.runners`).

* ``src.import_not_in_image``: an import neither the image's Python, its packages, the node's
  declared requirements nor its own files provide (an error when the import always runs and the
  image is one krtlab knows; else a warning);
* ``src.python_version``: syntax, standard-library features or evaluated annotations newer than
  the image's Python (:mod:`krtlab.spec.pycompat`);
* ``src.ctx_member``: a ``ctx`` member the runner's context does not have (``ctx.reply`` before
  kre-py 1.25.0, ``ctx.early_reply`` before 2.1.0, a misspelling).

The node's own modules beside its ``src`` (imported by it) are checked the same way.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Mapping

from krtlab.spec import rules
from krtlab.spec.checker import Checker
from krtlab.spec.facts import FileFacts, NodeEnv, SourceFacts
from krtlab.spec.findings import Location
from krtlab.spec.pycompat import python_issues
from krtlab.spec.runner_image import RUNNER_SHADOWED_MODULES, importable_on_kre_py
from krtlab.spec.runners import Runner, kre_py_runner, normalize, requirement_name
from krtlab.spec.suggest import did_you_mean

__all__ = ["check_runner", "node_runner"]

#: in the images' Python (3.7/3.9) but gone from later ones' stdlib lists
_REMOVED_STDLIB = frozenset(
    "asynchat asyncore distutils imp smtpd aifc audioop cgi cgitb chunk crypt imghdr mailcap "
    "msilib nis nntplib ossaudiodev pipes sndhdr spwd sunau telnetlib uu xdrlib lib2to3 "
    "binhex formatter parser symbol".split()
)
_STDLIB = frozenset(sys.stdlib_module_names) | _REMOVED_STDLIB | {"__future__"}
#: when each ctx member appeared, for the hint
_CTX_HISTORY = {
    "reply": "ctx.reply exists from kre-py 1.25.0 to 2.0.0 (renamed ctx.early_reply in 2.1.0)",
    "early_reply": "ctx.early_reply exists from kre-py 2.1.0 (before, from 1.25.0: ctx.reply)",
    "early_exit": "ctx.early_exit exists from kre-py 2.1.2",
}


def node_runner(image: str, env: NodeEnv | None) -> Runner | None:
    """The runner a node's code runs on: its stock image's, or its custom image's base's."""
    return kre_py_runner(env.base) if env is not None and env.base else kre_py_runner(image)


def check_runner(
    check: Checker,
    name: str,
    image: str,
    src: str,
    facts: SourceFacts,
    files: Mapping[str, FileFacts] | None,
    sources: Mapping[str, SourceFacts] | None,
    env: NodeEnv | None,
    loc: Location,
) -> None:
    """Check node ``name``'s ``src`` (and the own modules it imports) against its runner."""
    runner = node_runner(image, env)
    folder = posixpath.dirname(src)
    local = frozenset(
        p[len(folder) + 1 :].split("/")[0].removesuffix(".py")
        for p in (files or {})
        if folder and p.startswith(folder + "/")
    )
    checked = [(src, facts)]
    todo = [m for m, _ in facts.imports if m in local and m not in RUNNER_SHADOWED_MODULES]
    seen: set[str] = set()
    while todo and sources is not None:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for path in (f"{folder}/{module}.py", f"{folder}/{module}/__init__.py"):
            helper = sources.get(path)
            if helper is not None and helper.syntax_error is None:
                checked.append((path, helper))
                todo += [m for m, _ in helper.imports if m in local]
    if runner is not None and env is not None:
        _versions(check, name, runner, env, src, loc)
    for path, f in checked:
        _imports(check, name, image, runner, env, path, f, files, local, loc)
        if runner is not None:
            _python(check, name, runner, path, f, loc)
            if path == src:
                _ctx(check, name, runner, path, f, loc)


def _importable(top: str, runner: Runner, env: NodeEnv | None, local: frozenset[str]) -> bool:
    """``top`` is a top-level module name, as :class:`SourceFacts` lists imports."""
    provided = env.provides if env is not None else frozenset()
    return (
        top in _STDLIB
        or top in runner.imports
        or top in provided
        or top in local
        or top.endswith("_pb2")
    )


def _imports(
    check: Checker,
    name: str,
    image: str,
    runner: Runner | None,
    env: NodeEnv | None,
    path: str,
    facts: SourceFacts,
    files: Mapping[str, FileFacts] | None,
    local: frozenset[str],
    loc: Location,
) -> None:
    stock = rules.image_repository(image) == "konstellation/kre-py" or (
        env is not None and env.base
    )
    for module, line in facts.imports:
        if module in RUNNER_SHADOWED_MODULES:
            check.warning(
                "src.shadowed_import",
                f"node {name!r} imports {module!r}, but kre-py's "
                f"own {module}.py comes first on sys.path",
                loc,
                file=path,
                line=line,
                hint=f"rename the module, e.g. {module}_{name.replace('-', '_')}",
            )
            continue
        if not stock or files is None:
            continue
        if runner is None:
            if not importable_on_kre_py(module, local):  # a tag krtlab does not know
                check.warning(
                    "src.import_not_in_image",
                    f"node {name!r} imports {module!r}, which the stock {image} image may not "
                    "have (krtlab does not know this tag's packages)",
                    loc,
                    file=path,
                    line=line,
                    hint=f"build a custom image FROM {image} that installs it",
                )
            continue
        if _importable(module, runner, env, local):
            continue
        here = next(
            (f"{d}=={v}" for m, d, v in (env.installed if env else ()) if m == module), None
        )
        declare = f"requirements=[{here!r}]" if here else "requirements=[...]"
        # an import that always runs fails the node at start-up: certain breakage
        certain = line in facts.certain_imports
        report = check.error if certain else check.warning
        report(
            "src.import_not_in_image",
            f"node {name!r} imports {module!r}, which the {runner.image} image does not have"
            + ("; the node would fail to start" if certain else ""),
            loc,
            file=path,
            line=line,
            hint=(
                f"declare it: @v.node(..., {declare}) (krtlab then writes an image FROM "
                f"{runner.image} that installs it), or use a custom image FROM {runner.image}"
            ),
        )


def _versions(
    check: Checker, name: str, runner: Runner, env: NodeEnv, src: str, loc: Location
) -> None:
    """A package the node imports at another version on the image than where it was written."""
    declared = {normalize(requirement_name(r) or "") for r in env.requirements}
    for module, dist, here in env.installed:
        pinned = runner.pins.get(normalize(dist))
        if pinned is None or pinned == here or normalize(dist) in declared:
            continue
        check.warning(
            "deps.version",
            f"node {name!r} imports {module!r}: {dist} {here} here, {pinned} in {runner.image}",
            loc,
            file=src,
            hint=f"the node runs with {dist} {pinned} on KRE: check it there (krtlab check), or "
            f"declare requirements=['{dist}=={here}'] to install yours",
        )


def _python(
    check: Checker, name: str, runner: Runner, path: str, facts: SourceFacts, loc: Location
) -> None:
    if not facts.text:
        return
    for issue in python_issues(facts.text, runner.python):
        newer = "kre-py 1.26.0 and later run Python 3.9" if runner.python < (3, 9) else ""
        check.error(
            "src.python_version",
            f"node {name!r}: {issue.message}; {runner.image} runs Python {runner.python_text}",
            loc,
            file=path,
            line=issue.line,
            hint=f"write it for Python {runner.python_text}"
            + (f", or use an image with Python {issue.needs_text}+ ({newer})" if newer else ""),
        )


def _ctx(
    check: Checker, name: str, runner: Runner, path: str, facts: SourceFacts, loc: Location
) -> None:
    for member, line in facts.ctx_uses:
        if member.startswith("__") or member in runner.ctx:
            continue
        known = _CTX_HISTORY.get(member)
        hint = known or did_you_mean(member, sorted(runner.ctx)) or (
            f"its ctx has: {', '.join(sorted(runner.ctx))}"
        )  # fmt: skip
        check.error(
            "src.ctx_member",
            f"node {name!r} uses ctx.{member}, which the {runner.image} runner's context does "
            f"not have: AttributeError: 'HandlerContext' object has no attribute '{member}'",
            loc,
            file=path,
            line=line,
            hint=hint,
        )
