"""``v.serve()`` / ``krtlab serve``: KRE's V1 topology on one machine.

A private ``nats-server``, one worker process per workflow-node occurrence (KRE's Deployment per
occurrence) running the node's ``src`` from an unpacked bundle that plays ``/krt-files``, and
the gRPC entrypoint with its proto web port. Subjects are KRE V1's: ``<version>-<rpc>-entrypoint``
into the first node, a random edge id between nodes, ``envelope.reply`` out of the last one.

The entrypoint is a process of its own, as in KRE, so the caller's process (a notebook kernel
busy with something else) never slows requests down. The supervisor runs on an asyncio loop on
a background thread of the caller, so a :class:`Service` works the same from a script, the CLI
or Jupyter (whose own loop runs in the main thread). A crash is logged, fails the requests in
flight on its workflow at once, and the process is restarted (with a back-off if it keeps
crashing).

One broken node does not stop the others. A node that cannot start (its ``src`` is not in the
bundle or has errors KRE would refuse, or its process exits before it is ready) is marked down
with the reason and not restarted; its workflows answer ``UNAVAILABLE`` with that reason, the
others are served. Only when no workflow can run does :func:`serve` fail, with every reason.
``workflows=[...]`` serves a subset: only their nodes start, and the other rpcs answer
``UNIMPLEMENTED``.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .procs import ServeError
from .topology import Topology, plan

if TYPE_CHECKING:
    from krtlab.authoring.version import Version
    from krtlab.bundle.project import Project
    from krtlab.spec.findings import Finding
    from krtlab.spec.model import Manifest, NodeSpec

__all__ = ["ServeError", "Service", "serve"]

T = TypeVar("T")
_log = logging.getLogger("krtlab.serve")
DEFAULT_PORT = 9000
DEFAULT_TIMEOUT = 30.0
START_TIMEOUT = 60.0
_LIVE: weakref.WeakSet[Service] = weakref.WeakSet()


def serve(
    version_or_path: Version | str | os.PathLike[str],
    *,
    port: int = DEFAULT_PORT,
    web_port: int | None = None,
    request_timeout: float | None = None,
    config: Mapping[str, str] | None = None,
    quiet: bool = True,
    host: str = "127.0.0.1",
    workflows: Iterable[str] | None = None,
) -> Service:
    """Serve a version like KRE does and return once every part is ready (or down).

    Args:
        version_or_path: a :class:`~krtlab.Version`, or a project folder, ``krt.yml`` or ``.krt``.
        port: gRPC port of the entrypoint (KRE's 9000); 0 picks a free one.
        web_port: port serving the proto files (default: a free one).
        request_timeout: seconds the entrypoint waits for a workflow (``KRT_REQUEST_TIMEOUT``
            from the environment, else 30).
        config: config variable values, over those of ``v.config(...)``, ``.env`` and the
            environment; they reach the nodes as environment variables.
        quiet: False streams the workers' logs to stderr (the CLI does).
        host: address to listen on.
        workflows: serve only these workflows (names, or the rpcs they serve): only their
            nodes start; the other rpcs answer ``UNIMPLEMENTED``. None serves them all.

    Returns:
        A running :class:`Service`; use it as a context manager or call :meth:`Service.stop`.
        Workflows with a node that could not start are down (``svc.status()["workflows"]``):
        their rpcs answer ``UNAVAILABLE`` naming the node and why.

    Raises:
        ValidationError: the version has errors KRE would refuse outside its nodes' ``src``
            (or in every workflow served).
        SpecError: ``workflows`` names no workflow of the version.
        ExecutableNotFound: no ``nats-server``.
        ServeError: the entrypoint did not start, or no workflow can run (every reason, with
            the log tail of a worker that exited, is in the message).
    """
    if not hasattr(version_or_path, "project"):
        import krtlab

        version_or_path = krtlab.load(version_or_path)
    if request_timeout is None:
        request_timeout = float(os.environ.get("KRT_REQUEST_TIMEOUT") or DEFAULT_TIMEOUT)
    svc = Service(
        version_or_path,  # type: ignore[arg-type]
        port=port,
        web_port=web_port,
        request_timeout=request_timeout,
        config=config,
        quiet=quiet,
        host=host,
        workflows=workflows,
    )
    svc._start()
    return svc


class Service:
    """A served version, made by :func:`serve` (or ``v.serve()``), running until :meth:`stop`.

    Example::

        with v.serve(port=0) as svc:
            svc.call("PyGreet", name="John")   # greeting: "Hello John!"

    Attributes:
        version: the version served.
        port: gRPC port of the entrypoint (``address`` is ``host:port``).
        web_port: port of the proto web server (``web_url``).
        request_timeout: ``KRT_REQUEST_TIMEOUT`` of the entrypoint, in seconds.
        ready_seconds: how long :func:`serve` took to have every process ready.
    """

    def __init__(
        self,
        version: Version,
        *,
        port: int,
        web_port: int | None,
        request_timeout: float,
        config: Mapping[str, str] | None,
        quiet: bool,
        host: str,
        workflows: Iterable[str] | None = None,
    ) -> None:
        self.version = version
        self.host = host
        self.request_timeout = float(request_timeout)
        self._want_port = port
        self._want_web_port = web_port
        self._config = dict(config or {})
        self._quiet = quiet
        self._want_workflows = None if workflows is None else list(workflows)
        self.workflows: list[str] = []  # the workflows served (a subset with workflows=[...])
        self._topology: Topology | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._state = "new"
        self._channel: Any = None
        self._stubs: dict[str, Any] = {}
        self._saved_logs: dict[str, str] = {}
        self._warnings: list[str] = []
        self.ready_seconds = 0.0
        self.port = 0
        self.web_port = 0

    # -- addresses -----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the gRPC entrypoint."""
        return f"{self.host}:{self.port}"

    @property
    def web_url(self) -> str:
        """Where the proto files are served (KRE's ``<version>-web`` container)."""
        return f"http://{self.host}:{self.web_port}/proto/"

    @property
    def nats_url(self) -> str:
        """``host:port`` of the private nats-server (KRE's ``KRT_NATS_SERVER``)."""
        return self._topology.nats.url if self._topology else ""

    @property
    def rpcs(self) -> list[str]:
        """The rpcs served (one per workflow served, down ones included)."""
        served = self.workflows or list(self.version.workflows)
        return [wf.entrypoint for wf in self.version.workflows.values() if wf.name in served]

    @property
    def down(self) -> dict[str, str]:
        """``{workflow: why it is down}`` for the served workflows that cannot take requests
        because a node did not start (their rpcs answer ``UNAVAILABLE`` with that text)."""
        return dict(self._topology.down) if self._topology is not None else {}

    @property
    def run_dir(self) -> Path | None:
        """The run directory (``krt-files/`` is ``KRT_BASE_PATH``, ``logs/``), while running."""
        return self._topology.run_dir if self._topology else None

    # -- lifecycle -----------------------------------------------------------------------------

    def _start(self) -> None:
        t0 = time.perf_counter()
        project = self.version.project()
        self.workflows = self._select(project.manifest)
        faults = self._node_faults(project)
        run_dir = Path(tempfile.mkdtemp(prefix=f"krtlab-serve-{self.version.name}-"))
        try:
            self._topology = plan(
                self.version,
                project,
                run_dir,
                config=self._resolve_config(),
                host=self.host,
                port=self._want_port,
                web_port=self._want_web_port or 0,
                timeout=self.request_timeout,
                quiet=self._quiet,
                workflows=self.workflows,
                faults=faults,
            )
            self._warnings += self._topology.warnings
            for warning in self._warnings:
                _log.warning(warning)
                self._topology.event(f"warning: {warning}")
            self._loop = asyncio.new_event_loop()
            started = threading.Event()
            self._thread = threading.Thread(
                target=self._run_loop, args=(started,), name="krtlab-serve", daemon=True
            )
            self._thread.start()
            started.wait()
            self._state = "starting"
            self._submit(self._topology.start(), START_TIMEOUT + 5)
            for workflow, reason in self._topology.down.items():
                rpc = self._topology.routes.get(workflow, "")
                _log.warning(f"{self.version.name}: {reason}; rpc {rpc} answers UNAVAILABLE")
        except BaseException:
            self._shutdown()
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        self.port, self.web_port = self._topology.port, self._topology.web_port
        self._state = "running"
        self.ready_seconds = time.perf_counter() - t0
        _LIVE.add(self)

    def _select(self, manifest: Manifest) -> list[str]:
        """The names of the workflows to serve, in krt.yml's order."""
        names = [wf.name for wf in manifest.workflows]
        if self._want_workflows is None:
            return names
        chosen: set[str] = set()
        for want in self._want_workflows:
            found = [wf.name for wf in manifest.workflows if want in (wf.name, wf.entrypoint)]
            if not found:
                from krtlab.errors import SpecError
                from krtlab.spec.suggest import did_you_mean

                rpcs = [wf.entrypoint for wf in manifest.workflows]
                hint = did_you_mean(str(want), [*names, *rpcs]) or (
                    f"workflows: {', '.join(names) or 'none'}"
                )
                raise SpecError(f"{self.version.name} has no workflow {want!r}; {hint}")
            chosen.update(found)
        if not chosen:
            from krtlab.errors import SpecError

            raise SpecError("workflows=[] selects nothing to serve; None serves every workflow")
        return [n for n in names if n in chosen]

    def _node_faults(self, project: Project) -> dict[str, str]:
        """``{node: why it cannot start}`` for the served nodes whose ``src`` has errors.

        Errors elsewhere (krt.yml, protos, workflows) still refuse the version, as do node
        errors in every workflow served; errors of nodes not served are not in the way.
        """
        from krtlab.bundle.images import runner_of

        from .errors import RunError
        from .plan import refuse_generation

        report = self.version._validate(project)
        manifest = project.manifest
        served = {
            n for wf in manifest.workflows if wf.name in self.workflows for n in wf.sequential
        }
        faults: dict[str, str] = {}
        for node in self.version._nodes.values():  # runners whose contract krtlab cannot run
            if node.name in served and node.kind == "python":
                try:
                    refuse_generation(node.image, runner_of(self.version, node))
                except RunError as exc:
                    faults[node.name] = str(exc)
        if not report.errors and not faults:
            return {}
        for finding in report.errors:
            names = _nodes_of(finding, manifest.nodes)
            if not names:
                report.raise_for_errors()  # a fault of the version itself
            for spec in names:
                if spec.name in served and spec.name not in faults:
                    faults[spec.name] = _reason(finding, spec, project.manifest_name)
        if all(
            any(n in faults for n in wf.sequential)
            for wf in manifest.workflows
            if wf.name in self.workflows
        ):
            report.raise_for_errors()  # nothing could run: the errors, as before
        return faults

    def _resolve_config(self) -> dict[str, str]:
        from krtlab.runtime.config import resolve_config

        resolved = resolve_config(self.version)
        values = dict(resolved)
        values.update({k: str(v) for k, v in self._config.items()})
        # KRE would refuse to start without them; locally the nodes just see no variable
        resolved.missing = [k for k in resolved.missing if k not in values]
        self._warnings = resolved.warnings(self.version.name)
        return values

    def _run_loop(self, started: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(started.set)
        self._loop.run_forever()
        # drain what stop() left behind (callbacks of closing transports)
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    def _submit(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the entrypoint, every worker and nats-server, and remove the run directory."""
        if self._state in ("stopped", "new"):
            return
        self._shutdown()

    def _shutdown(self) -> None:
        self._state = "stopping"
        _LIVE.discard(self)
        if self._channel is not None:
            self._channel.close()
            self._channel, self._stubs = None, {}
        topo = self._topology
        if topo is not None and self._loop is not None and self._loop.is_running():
            try:
                self._submit(topo.stop(), 30)
            except Exception:  # stopping must go on whatever failed
                topo.kill_all()
        elif topo is not None:
            topo.kill_all()
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        if topo is not None:
            self._saved_logs = topo.read_logs()
            shutil.rmtree(topo.run_dir, ignore_errors=True)
        self._state = "stopped"

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- using it ------------------------------------------------------------------------------

    def call(
        self, rpc: str, request: Any = None, /, *, timeout: float | None = None, **fields: Any
    ) -> Any:
        """Call an rpc through the entrypoint; return the response message.

        ``request`` is a message, a dict, or None with the fields as keyword arguments.

        Raises:
            CallError: the gRPC status was not OK (``exc.code``: ``"INTERNAL"``, ...).
        """
        from .client import CallError, to_message

        if self._state != "running":
            raise ServeError(f"the service is {self._state}")
        stub, in_cls = self._stub(rpc)
        message = to_message(in_cls, request, fields)
        try:
            return stub(message, timeout=timeout or self.request_timeout + 5)
        except Exception as exc:  # grpc.RpcError
            raise CallError.from_rpc_error(rpc, exc) from None

    def _stub(self, rpc: str) -> tuple[Any, Any]:
        if rpc not in self._stubs:
            import grpc

            registry, fileset = self.version._protos.registry, self.version._protos.fileset
            assert registry is not None and fileset is not None  # served: its protos compiled
            rpcs = fileset.entrypoint_rpcs(self.version._proto_file) or {}
            if rpc not in rpcs:
                from krtlab.spec.suggest import did_you_mean

                hint = did_you_mean(rpc, rpcs) or f"rpcs: {', '.join(rpcs)}"
                raise ServeError(f"{self.version.name} has no rpc {rpc!r}; {hint}")
            in_cls = registry.message_class(rpcs[rpc].input_type)
            out_cls = registry.message_class(rpcs[rpc].output_type)
            if self._channel is None:
                options = [
                    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                    ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ]
                self._channel = grpc.insecure_channel(self.address, options=options)
            assert self._topology is not None
            stub = self._channel.unary_unary(
                f"/{self._topology.service}/{rpc}",
                request_serializer=in_cls.SerializeToString,
                response_deserializer=out_cls.FromString,
            )
            self._stubs[rpc] = (stub, in_cls)
        return self._stubs[rpc]

    def logs(self, node: str | None = None) -> str:
        """Worker output (KRE's log format), nats-server's and krtlab's own events.

        Args:
            node: a node name (all its occurrences), ``"krtlab"`` or ``"nats-server"``;
                None for everything.
        """
        logs = self._topology.read_logs() if self._state != "stopped" and self._topology else None
        logs = logs if logs is not None else self._saved_logs
        if node is None:
            return "\n".join(f"==> {name} <==\n{text}" for name, text in logs.items())
        picked = [t for name, t in logs.items() if name == node or name.startswith(f"{node} (")]
        if not picked:
            from krtlab.spec.suggest import did_you_mean

            names = sorted({n.split(" (")[0] for n in logs})
            hint = did_you_mean(node, names) or f"logs exist for {', '.join(names)}"
            raise ServeError(f"no logs for {node!r}; {hint}")
        return "\n".join(picked)

    def status(self) -> dict[str, Any]:
        """State of every process: ``{"state", "address", "nats", "workers": [...], ...}``."""
        topo = self._topology
        out: dict[str, Any] = {
            "version": self.version.name,
            "state": self._state,
            "address": self.address if self.port else "",
            "web_url": self.web_url if self.web_port else "",
            "ready_seconds": round(self.ready_seconds, 3),
        }
        if topo is not None:
            out.update(topo.status())
        return out

    def __repr__(self) -> str:
        topo = self._topology
        workers = ""
        if topo is not None and self._state == "running":
            ready = sum(1 for o in topo.occurrences if o.state == "ready")
            workers = f", {ready}/{len(topo.occurrences)} workers ready"
            if topo.down:
                workers += f", {len(topo.down)} workflow{'s' * (len(topo.down) > 1)} down"
        where = f" at {self.address}" if self.port else ""
        return f"<Service {self.version.name}{where}: {self._state}{workers}>"


def _nodes_of(finding: Finding, nodes: tuple[NodeSpec, ...]) -> list[NodeSpec]:
    """The nodes an error is about, when it is about a node's ``src`` (else [])."""
    import posixpath

    if not finding.code.startswith("src."):
        return []
    loc = finding.loc
    if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int) and loc[1] < len(nodes):
        return [nodes[loc[1]]]
    if not finding.file:
        return []
    out = []
    for node in nodes:
        folder = posixpath.dirname(posixpath.normpath(node.src))
        if finding.file == node.src or (folder and finding.file.startswith(folder + "/")):
            out.append(node)
    return out


def _reason(finding: Finding, node: NodeSpec, manifest_file: str) -> str:
    """Why a node cannot start, in one line: ``src bin/go-greeter is not in the bundle``."""
    if finding.code == "src.missing":
        return f"src {node.src} is not in the bundle"
    text = finding.message
    prefix = f"node {node.name!r}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    if finding.file and finding.file != manifest_file:
        where = f"{finding.file}:{finding.line}" if finding.line else finding.file
        text += f" ({where})"
    return text


@atexit.register
def _stop_leftovers() -> None:
    # Workers would die with us anyway (PDEATHSIG); this also removes the run directories.
    for svc in list(_LIVE):
        try:
            svc.stop()
        except Exception as exc:  # interpreter shutdown: best effort, say what is left
            sys.stderr.write(f"krtlab: could not stop {svc!r}: {exc}\n")
