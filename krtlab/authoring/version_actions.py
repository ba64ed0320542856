"""What you do with a version once it is written: run it here, serve it like KRE, check it on its
runner's Python, draw it, deploy it, query it from a panel. Each is a thin door into another
stage (:mod:`krtlab.runtime`, :mod:`krtlab.notebook`, :mod:`krtlab.deploy`), imported only when
used; :class:`~krtlab.authoring.version.Version` inherits them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

__all__ = ["VersionActions"]


def _version(actions: VersionActions) -> Version:
    """The :class:`~krtlab.authoring.version.Version` that inherits these doors."""
    return cast("Version", actions)


class VersionActions:
    """The runtime, notebook and deploy doors of :class:`~krtlab.authoring.version.Version`."""

    def run(self, target: str, request: Any = None, /, **fields: Any) -> Any:
        """Run a workflow in this process, every edge through the production wire format.

        ``target`` is an rpc or workflow name; the request is a message, a dict or keyword
        arguments. Returns a :class:`krtlab.runtime.inprocess.RunResult` (response + trace).
        """
        from krtlab.runtime.inprocess import run_version

        return run_version(_version(self), target, request, **fields)

    def serve(self, **options: Any) -> Any:
        """Serve the version like KRE does (nats-server, one worker process per node, a gRPC
        entrypoint); use as ``with v.serve() as svc: svc.call("PyGreet", name="John")``."""
        from krtlab.runtime.serve import serve

        return serve(_version(self), **options)

    def metrics(self) -> Any:
        """Measurements, predictions and documents the nodes saved in local runs."""
        from krtlab.runtime.metrics import metrics_for

        return metrics_for(_version(self))

    def check(
        self, requests: Any = None, *, python: str | None = None, progress: Any = None
    ) -> Any:
        """Run the Python nodes for real on their runner image's Python (kre-py 1.23–1.25:
        3.7, 1.26–2.1: 3.9, with protobuf 3.13.0 and the image's pins of what they import) and
        compare the answers with local runs.

        ``requests`` is ``{"Rpc": [{...}, ...]}``; by default the last requests of ``v.run``
        are replayed. ``python`` is an interpreter path (or a version such as ``"3.9"``) to use
        instead of searching pyenv, uv and ``PATH``. Returns a
        :class:`krtlab.runtime.check_result.CheckResult` (``ok``, ``status``: ``ok``,
        ``failed`` or ``not checked``); progress shows in the cell (else on stderr).
        """
        from krtlab.notebook.progress import cell_progress
        from krtlab.runtime.check import check_version, stderr_progress

        say = progress or None
        if progress is None:  # in the cell (Jupyter), else on stderr
            say = cell_progress("krtlab check") or stderr_progress()
        return check_version(_version(self), requests, python=python, progress=say)

    def graph(self, workflow: str | None = None) -> Any:
        """The version (or one workflow, by name or rpc) as a :class:`krtlab.notebook.Graph`:
        ``.svg()``, ``.save("x.svg")``/``.png``, and drawn inline in Jupyter."""
        from krtlab.notebook import version_graph

        return version_graph(_version(self), workflow=workflow)

    def _run_graph(self, result: Any) -> Any:
        """The graph of ``result.graph()`` (a run of this version): the runtime's door into
        :mod:`krtlab.notebook`, so that the runtime itself never imports it."""
        from krtlab.notebook import run_graph

        return run_graph(_version(self), result)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> Any:
        from krtlab.notebook import display_bundle

        return display_bundle(self, include, exclude)

    def deploy(self, server: Any = None, **options: Any) -> Any:
        """Upload this version to a KAI Server (KRE), set its config, start it (and, with
        ``publish=True``, publish it); returns a :class:`krtlab.deploy.Deployment` to query,
        compare with a local run, publish, stop. ``server`` is a ``KaiServer``, a URL, or None
        for ``$KAI_SERVER_URL``; see :func:`krtlab.deploy.deploy` for the options. In Jupyter
        the steps show in the cell as they happen."""
        from krtlab.deploy.deployment import deploy
        from krtlab.notebook.progress import in_cell

        if "progress" in options:
            return deploy(self, server, **options)
        name = _version(self).name
        return in_cell(f"deploying {name}", lambda say: deploy(self, server, progress=say,
                       **options), lambda d: "done")  # fmt: skip

    def panel(self, rpc: str | None = None, *, target: Any = None) -> Any:
        """A request form for ``rpc`` (the first one by default) with buttons to run it locally
        or call it served, the response and trace beside it (ipywidgets; text outside a browser).

        ``target`` is a running ``Service``, a ``Deployment`` (``v.deploy(...)``) or the
        ``host:port`` of any KRE entrypoint; without it, "Call served" starts
        ``v.serve(port=0)`` on first use. Returns a
        :class:`krtlab.notebook.panel.Panel` (``request()``, ``set_request()``, ``submit()``).
        """
        from krtlab.notebook.panel import Panel

        return Panel(_version(self), rpc, target=target)
