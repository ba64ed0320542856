"""The processes of a served version and their supervision (used by :mod:`krtlab.runtime.serve`).

:func:`plan` unpacks the bundle and lays out KRE's V1 topology: ids, subjects and the environment
of the entrypoint and of each workflow-node occurrence. :class:`Topology` starts it, restarts
what dies, and stops everything. Its async methods run on the service's loop thread, which is
also the thread every child is started from (see :mod:`krtlab.runtime.procs`).

The supervisor talks to the processes over the version's own NATS: workers and the entrypoint
announce themselves on a ready subject once they can take work, and the entrypoint is told on a
control subject when a workflow loses a worker (it then fails the requests in flight on it).
The entrypoint process also answers KRE's mongo-writer subject (``KRT_NATS_MONGO_WRITER``) and
announces that too: Go nodes start once it does, as KRE's writer runs before any version.

A worker that cannot start (its ``src`` has errors, it cannot be executed, it exits or is not
ready in time while the version starts) is *down*: it is not restarted, and the workflows it is
part of are closed at the entrypoint with the reason (``UNAVAILABLE``). Start-up fails only
when the entrypoint does not start or every workflow is down. Workers that were ready and die
later are restarted as before.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from krtlab.spec.layout import id_source, layout

from .mongowriter import WRITER_ID
from .natsserver import NatsConnection, NatsServer
from .procs import ServeError, describe_exit, follow_logs, spawn, stop_processes, tail, watch_exit

if TYPE_CHECKING:
    from krtlab.authoring.version import Version
    from krtlab.bundle.project import Project

__all__ = ["Occurrence", "Topology", "plan"]

# Dead endpoints: kre-py only needs these to parse (it never connects unless a handler uses them).
DEAD_MONGO = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500"
DEAD_INFLUX = "http://127.0.0.1:1"
QUICK_CRASH = 10.0  # seconds: a process dying sooner than this after start counts as a crash loop
START_TIMEOUT = 60.0


@dataclass
class Occurrence:
    """A process: a workflow-node occurrence (KRE's Deployment ``<version>-<node>-<nodeId>``)
    or the entrypoint (``node == node_id == "entrypoint"``, as KRE names it)."""

    workflow: str
    node: str
    node_id: str
    runtime: str  # "python", "go" or "entrypoint"
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    state: str = "new"  # starting, ready, restarting, down (did not start), stopped
    reason: str = ""  # why it is down
    restarts: int = 0
    crashes: int = 0  # consecutive quick exits
    last_exit: str = ""
    started: float = 0.0
    unwatch: Callable[[], None] | None = None

    @property
    def label(self) -> str:
        if self.runtime == "entrypoint":
            return "entrypoint"
        return f"{self.node} ({self.workflow}, {self.node_id})"

    def status(self) -> dict[str, Any]:
        keys = ("node", "workflow", "node_id", "state", "restarts", "last_exit", "reason")
        out = {k: getattr(self, k) for k in keys}
        out["input"], out["output"] = self.env["KRT_NATS_INPUT"], self.env["KRT_NATS_OUTPUT"]
        out["pid"] = self.proc.pid if self.proc is not None and self.proc.poll() is None else None
        return out


def plan(
    version: Version,
    project: Project,
    run_dir: Path,
    *,
    config: Mapping[str, str],
    host: str,
    port: int,
    web_port: int,
    timeout: float,
    quiet: bool,
    workflows: list[str] | None = None,
    faults: Mapping[str, str] | None = None,
) -> Topology:
    """Unpack ``project`` under ``run_dir`` and describe every process to start.

    ``workflows`` (names) are the ones served (None: all); ``faults`` maps a node that cannot
    start to the reason: its occurrences are down from the start.
    """
    from google.protobuf import descriptor_pb2

    from krtlab.bundle.images import runner_of

    from .legacy_pb2 import legacy_files, legacy_note, needs_replacing
    from .store import store_path

    faults = dict(faults or {})
    base = run_dir / "krt-files"  # plays /krt-files (KRT_BASE_PATH)
    for folder in (base, run_dir / "logs", run_dir / "web" / "proto", run_dir / "conf"):
        folder.mkdir(parents=True, exist_ok=True)
    for rel, data in project.files.items():
        target = base / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if rel in project.executables:
            target.chmod(0o755)
    for name, text in project.proto_sources().items():
        (run_dir / "web" / "proto" / name).write_text(text, encoding="utf-8")

    manifest = project.manifest
    fileset = project.compiled
    if isinstance(fileset, Exception):
        raise ServeError(f"{version.name}: the protos do not compile: {fileset}")
    proto = manifest.entrypoint.proto or "public_input.proto"
    rpcs = fileset.entrypoint_rpcs(proto) or {}
    package = fileset.package(proto)
    service = f"{package}.Entrypoint" if package else "Entrypoint"
    tag = secrets.token_hex(6)
    ready_subject, control_subject = f"_KRTLAB.{tag}.ready", f"_KRTLAB.{tag}.control"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("KRT_")}
    common = dict(
        KRT_VERSION_ID=secrets.token_hex(12),
        KRT_VERSION=manifest.version,
        KRT_BASE_PATH=str(base),
        KRT_NATS_MONGO_WRITER="mongo_writer",
        KRT_MONGO_URI=DEAD_MONGO,
        KRT_MONGO_DB_NAME="data",
        KRT_MONGO_BUCKET="krt",
        KRT_INFLUX_URI=DEAD_INFLUX,
        KRTLAB_READY_SUBJECT=ready_subject,
        # the workers' cwd is the run dir: the per-project store is resolved here
        KRTLAB_STORE=str(Path(store_path(manifest.version)).resolve()),
        PYTHONUNBUFFERED="1",  # so print() in a node reaches the logs at once
    )
    nodes = {n.name: n for n in manifest.nodes}
    logs = run_dir / "logs"
    served = [wf.name for wf in manifest.workflows] if workflows is None else list(workflows)
    routes: dict[str, dict[str, str]] = {}
    unserved: dict[str, str] = {}  # rpc -> why it is not served (workflows=[...])
    for wf in manifest.workflows:
        rpc = rpcs.get(wf.entrypoint)
        if rpc is None:
            raise ServeError(f"workflow {wf.name!r}: rpc {wf.entrypoint!r} is not in {service}")
        routes[wf.entrypoint] = {
            "workflow": wf.name,
            "input": rpc.input_type,
            "output": rpc.output_type,
        }
        if wf.name not in served:
            only = ", ".join(repr(w) for w in served)
            unserved[wf.entrypoint] = (
                f"rpc {wf.entrypoint} (workflow {wf.name!r}) is not served here: this "
                f"service serves only workflow{'s' * (len(served) > 1)} {only}"
            )
    # KRE's ids and subjects (the last node answers envelope.reply); subjects is nats_subject.json
    steps, subjects = layout(manifest, id_source())
    occurrences: list[Occurrence] = []
    inputs: dict[str, tuple[str, str]] = {}  # so the mongo-writer knows who saved a prediction
    for step in steps:
        if step.workflow not in served:
            continue
        spec = nodes[step.node]
        env = {**inherited, **config, **common}  # KRE: envFrom the config map, then env
        env.update(KRT_WORKFLOW_NAME=step.workflow, KRT_WORKFLOW_ID=step.workflow_id)
        env.update(KRT_NODE_NAME=step.node, KRT_NODE_ID=step.node_id, KRT_HANDLER_PATH=spec.src)
        env.update(KRT_NATS_INPUT=step.nats_input, KRT_NATS_OUTPUT=step.nats_output)
        node = version._nodes.get(step.node)
        runner = runner_of(version, node) if node is not None else None
        if runner is not None:  # the worker behaves like this kre-py tag (ctx, error texts)
            env["KRTLAB_RUNNER"] = runner.image
        runtime = "python" if spec.runtime == "python" else "go"
        log = logs / f"{manifest.version}-{step.node}-{step.node_id}.log"
        occ = Occurrence(step.workflow, step.node, step.node_id, runtime, env, log)
        if step.node in faults:
            occ.state, occ.reason = "down", faults[step.node]
        occurrences.append(occ)
        inputs[step.nats_input] = (step.node, step.workflow)
    down: dict[str, str] = {}  # workflow -> why: its first node that cannot start
    for occ in occurrences:
        if occ.state == "down":
            down.setdefault(occ.workflow, down_reason(occ))
    python_nodes = {o.node: nodes[o.node].src for o in occurrences if o.runtime == "python"}
    python_nodes = {k: v for k, v in python_nodes.items() if k not in faults}
    warnings = []
    if needs_replacing():  # old gencode that kre-py's protobuf 3.13 imports and ours refuses
        for path, users in legacy_files(project.files, python_nodes).items():
            warnings.append(legacy_note(path, users))

    fds = descriptor_pb2.FileDescriptorSet(file=[fileset.descriptor(n) for n in fileset.all_files])
    (run_dir / "conf" / "descriptors.bin").write_bytes(fds.SerializeToString())
    (run_dir / "conf" / "nats_subject.json").write_text(json.dumps(subjects, indent=1))
    ep_config = {
        "service": service,
        "host": host,
        "port": port,
        "web_port": web_port,
        "web_root": str(run_dir / "web"),
        "descriptors": str(run_dir / "conf" / "descriptors.bin"),
        "routes": routes,
        "ready_subject": ready_subject,
        "control_subject": control_subject,
        "mongo_writer": {"subject": common["KRT_NATS_MONGO_WRITER"], "inputs": inputs},
        "down": down,  # workflow -> why (a node that did not start): UNAVAILABLE
        "unserved": unserved,  # rpc -> why: UNIMPLEMENTED
    }
    (run_dir / "conf" / "entrypoint.json").write_text(json.dumps(ep_config, indent=1))
    env = {**inherited, **common}  # KRE gives the entrypoint no config values
    env.update(KRT_WORKFLOW_NAME="entrypoint", KRT_WORKFLOW_ID="entrypoint")
    env.update(KRT_NODE_NAME="entrypoint", KRT_NODE_ID="entrypoint")
    env.update(KRT_REQUEST_TIMEOUT=f"{timeout:g}", KRT_NATS_INPUT="", KRT_NATS_OUTPUT="")
    env.update(
        KRT_NATS_SUBJECTS_FILE=str(run_dir / "conf" / "nats_subject.json"),
        KRTLAB_ENTRYPOINT_CONFIG=str(run_dir / "conf" / "entrypoint.json"),
    )
    entrypoint = Occurrence(
        "", "entrypoint", "entrypoint", "entrypoint", env, logs / "entrypoint.log"
    )
    topo = Topology(run_dir, service, entrypoint, occurrences, control_subject, host, quiet)
    topo.down, topo.warnings = down, warnings
    topo.routes = {r["workflow"]: rpc for rpc, r in routes.items() if r["workflow"] in served}
    topo.unserved = {r["workflow"]: rpc for rpc, r in routes.items() if rpc in unserved}
    return topo


def down_reason(occ: Occurrence) -> str:
    """What a request to a workflow with a down node is answered (gRPC ``UNAVAILABLE``)."""
    return f"workflow {occ.workflow!r} is down: node {occ.node!r} did not start: {occ.reason}"


@dataclass
class Topology:
    """Everything a served version runs (see :func:`plan`)."""

    run_dir: Path
    service: str
    entrypoint: Occurrence
    occurrences: list[Occurrence]
    control_subject: str
    host: str
    quiet: bool
    port: int = 0
    web_port: int = 0
    events: list[str] = field(default_factory=list)
    stopping: bool = False
    down: dict[str, str] = field(default_factory=dict)  # workflow -> why it is down
    warnings: list[str] = field(default_factory=list)  # said once at start
    routes: dict[str, str] = field(default_factory=dict)  # served workflow -> rpc
    unserved: dict[str, str] = field(default_factory=dict)  # workflow not served -> rpc

    def __post_init__(self) -> None:
        self.nats = NatsServer(self.run_dir / "logs" / "nats-server.log", self.host)
        self.procs = [self.entrypoint, *self.occurrences]
        self._by_id = {o.node_id: o for o in self.procs}
        self._nc: NatsConnection | None = None
        self._starting: asyncio.Future[None] | None = None
        self._writer_up: asyncio.Future[None] | None = None
        self.writer_ready = False  # the entrypoint answers the mongo-writer subject
        self._tasks: set[asyncio.Task[None]] = set()
        self._unwatch_nats: Callable[[], None] | None = None

    # -- start ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start nats-server, the entrypoint and the workers; return when the entrypoint and
        every worker are ready or down (see the module docstring)."""
        loop = asyncio.get_running_loop()
        self._starting = loop.create_future()
        self._writer_up = loop.create_future()
        self.nats.start()
        assert self.nats.proc is not None
        self._unwatch_nats = watch_exit(loop, self.nats.proc, self._nats_exited)
        self._nc = await NatsConnection.connect(self.nats.url, name="krtlab-supervisor")
        self._nc.subscribe(self.entrypoint.env["KRTLAB_READY_SUBJECT"], self._on_ready)
        await self._nc.flush()
        for occ in self.occurrences:
            if occ.state == "down":
                self.event(f"node '{occ.node}' ({occ.workflow}) cannot start: {occ.reason}")
        # a Go node's init may save at once: it starts when the mongo-writer answers
        later = [o for o in self.procs if o.runtime == "go" and o.state != "down"]
        for occ in self.procs:
            if occ.runtime != "go" and occ.state != "down":
                self._start_one(occ)
        if not self.quiet:
            logs = {o.log_path: o.node for o in self.procs if o.state != "down"}
            args = (logs, lambda: self.stopping)
            threading.Thread(target=follow_logs, args=args, daemon=True).start()
        deadline = loop.time() + START_TIMEOUT
        if later:
            await asyncio.wait(
                (self._starting, self._writer_up),
                timeout=START_TIMEOUT,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if self._writer_up.done() and not self._starting.done():
                for occ in later:
                    self._start_one(occ)
        if not self._starting.done():  # (asyncio.wait does not cancel it)
            await asyncio.wait((self._starting,), timeout=max(0.0, deadline - loop.time()))
        if not self._starting.done():
            await self._late()
        self._starting.result()  # the entrypoint did not start, or no workflow can run
        self._starting = None
        await self._announce_down()
        self.event(f"serving {self.service} on {self.host}:{self.port}")

    def _start_one(self, occ: Occurrence) -> None:
        """Spawn ``occ`` while the version starts: a worker that cannot be executed is down."""
        try:
            self._spawn(occ)
        except ServeError as exc:
            if occ is self.entrypoint:
                raise
            self._mark_down(occ, getattr(exc, "why", str(exc)))

    async def _late(self) -> None:
        """START_TIMEOUT is over: the entrypoint or the mongo-writer late fails the start;
        workers still starting are stopped and down."""
        if self.entrypoint.state != "ready" or not self.writer_ready:
            late = [o.label for o in self.procs if o.state not in ("ready", "down")]
            if not self.writer_ready:
                late.append("the mongo-writer (in the entrypoint)")
            names = ", ".join(late)
            raise ServeError(f"not ready after {START_TIMEOUT:g} s: {names}")
        stalled = [o for o in self.occurrences if o.state not in ("ready", "down")]
        procs = [o.proc for o in stalled if o.proc is not None]
        for occ in stalled:
            self._mark_down(occ, f"it was not ready after {START_TIMEOUT:g} s")
        await asyncio.get_running_loop().run_in_executor(None, stop_processes, procs)

    def _mark_down(self, occ: Occurrence, reason: str) -> None:
        """A worker that did not start: down for good, its workflows closed with ``reason``."""
        if occ.unwatch is not None:
            occ.unwatch()
            occ.unwatch = None
        occ.state, occ.reason = "down", reason
        self.down.setdefault(occ.workflow, down_reason(occ))
        self.event(
            f"node '{occ.node}' ({occ.workflow}) did not start: {reason}; "
            f"workflow '{occ.workflow}' is down"
        )
        self._check_started()

    def _check_started(self) -> None:
        """Settle the start: every served workflow down fails it; everything ready or down
        (and the entrypoint ready) ends it."""
        fut = self._starting
        if fut is None or fut.done():
            return
        if self.routes and all(wf in self.down for wf in self.routes):
            fut.set_exception(ServeError(self._nothing_runs()))
        elif self.entrypoint.state == "ready" and all(
            o.state in ("ready", "down") for o in self.occurrences
        ):
            fut.set_result(None)

    def _nothing_runs(self) -> str:
        # the first line names the processes as "<node> (<workflow>, <id>)" (LocalKai reads it)
        labels = ", ".join(o.label for o in self.occurrences if o.state == "down")
        version = self.entrypoint.env["KRT_VERSION"]
        lines = [f"no workflow of {version} can run: {labels} did not start"]
        lines += [f"  {self.down[wf]}" for wf in self.routes]
        for occ in self.occurrences:
            if occ.state == "down" and occ.last_exit:
                lines.append(f"log of {occ.label}:\n" + (tail(occ.log_path) or "(empty)"))
        return "\n".join(lines)

    async def _announce_down(self) -> None:
        """Tell the entrypoint which workflows are down, and wait until it knows (so the first
        request already gets the reason)."""
        if not self.down or self._nc is None:
            return
        self.entrypoint_config(down=self.down)  # what a restarted entrypoint reads
        for workflow, reason in self.down.items():
            self._control(workflow, up=False, reason=reason, failing=True)
        loop = asyncio.get_running_loop()
        synced: asyncio.Future[None] = loop.create_future()
        inbox = f"{self.control_subject}.synced"

        def answered(*_: object) -> None:
            if not synced.done():
                synced.set_result(None)

        self._nc.subscribe(inbox, answered)
        self._nc.publish(self.control_subject, b'{"sync": true}', reply=inbox)
        await asyncio.wait((synced,), timeout=5.0)

    def _spawn(self, occ: Occurrence) -> None:
        env = dict(occ.env, KRT_NATS_SERVER=self.nats.url)
        if occ.runtime == "python":
            argv = [sys.executable, "-m", "krtlab.runtime.worker"]
        elif occ.runtime == "entrypoint":
            argv = [sys.executable, "-m", "krtlab.runtime.entrypoint"]
            # for the mongo-writer to tell which node saved a prediction
            env["KRTLAB_NATS_MONITOR"] = f"{self.nats.host}:{self.nats.monitor_port}"
        else:  # kre-go's entrypoint.sh: chmod +x the src and run it
            argv = [os.path.join(env["KRT_BASE_PATH"], env["KRT_HANDLER_PATH"])]
            if os.path.exists(argv[0]):
                os.chmod(argv[0], 0o755)
        with open(occ.log_path, "ab") as log:
            try:
                occ.proc = spawn(argv, env=env, cwd=self.run_dir, log=log, own=occ.runtime != "go")
            except OSError as exc:
                log.write(f"krtlab: cannot start {argv[0]}: {exc}\n".encode())
                error = ServeError(f"cannot start node {occ.label}: {exc}")
                what = env.get("KRT_HANDLER_PATH") if occ.runtime == "go" else argv[0]
                error.why = f"cannot execute {what}: {exc.strerror or exc}"  # type: ignore[attr-defined]
                raise error from None
        occ.state, occ.started = "starting", time.monotonic()
        loop = asyncio.get_running_loop()
        occ.unwatch = watch_exit(loop, occ.proc, functools.partial(self._exited, occ))
        if occ.runtime == "go":  # a foreign runner does not announce itself
            task = loop.create_task(self._poll_subscribed(occ, occ.proc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _poll_subscribed(self, occ: Occurrence, proc: subprocess.Popen[bytes]) -> None:
        loop = asyncio.get_running_loop()
        while occ.proc is proc and occ.state == "starting" and not self.stopping:
            try:
                if await loop.run_in_executor(
                    None, self.nats.subscribers, occ.env["KRT_NATS_INPUT"]
                ):
                    self._mark_ready(occ)
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)

    def _on_ready(self, subject: str, reply: str, data: bytes, status: str) -> None:
        words = data.decode(errors="replace").split()
        if words == [WRITER_ID]:
            self.writer_ready = True
            if self._writer_up is not None and not self._writer_up.done():
                self._writer_up.set_result(None)
            return
        occ = self._by_id.get(words[0]) if words else None
        if occ is None or occ.state != "starting":
            return
        if occ is self.entrypoint and len(words) == 3:  # "entrypoint <grpc port> <web port>"
            self.port, self.web_port = int(words[1]), int(words[2])
        self._mark_ready(occ)

    def _mark_ready(self, occ: Occurrence) -> None:
        occ.state = "ready"
        if self._starting is not None:
            self._check_started()
            return
        self.event(f"{occ.label} is ready again")
        if occ.workflow and all(
            o.state == "ready" for o in self.occurrences if o.workflow == occ.workflow
        ):
            self._control(occ.workflow, up=True)

    def _control(self, workflow: str, *, up: bool, reason: str = "", failing: bool = False) -> None:
        order = {"workflow": workflow, "up": up, "reason": reason, "failing": failing}
        if self._nc is not None and not self._nc.closed:
            self._nc.publish(self.control_subject, json.dumps(order).encode())

    # -- faults --------------------------------------------------------------------------------

    def _exited(self, occ: Occurrence, code: int) -> None:
        if self.stopping:
            occ.state = "stopped"
            return
        how = describe_exit(code)
        pid = occ.proc.pid if occ.proc else "?"
        if occ is self.entrypoint:
            self.writer_ready = False
        if self._starting is not None and not self._starting.done() and occ is not self.entrypoint:
            occ.last_exit = how  # a worker that never started: down, not restarted
            said = last_words(occ.log_path, occ.env["KRT_BASE_PATH"])
            self._mark_down(occ, f"it exited ({how}) while starting" + (f": {said}" * bool(said)))
            return
        occ.last_exit, occ.state = how, "restarting"
        occ.crashes = occ.crashes + 1 if time.monotonic() - occ.started < QUICK_CRASH else 1
        if self._starting is not None and not self._starting.done():
            self._starting.set_exception(
                ServeError(
                    f"{occ.label} exited ({how}) while starting; its log:\n"
                    + (tail(occ.log_path) or "(empty)")
                )
            )
            return
        looping = occ.crashes >= 3
        what = "the entrypoint" if occ is self.entrypoint else f"worker for node '{occ.node}'"
        self.event(f"{what} exited ({how}), pid {pid}; restarting it")
        if occ.workflow:
            then = f"it keeps crashing: see svc.logs({occ.node!r})" if looping else "restarting it"
            reason = f"{what} exited ({how}); {then}"
            self._control(occ.workflow, up=False, reason=reason, failing=looping)
        if occ is self.entrypoint and self.port:  # come back on the same ports
            self.entrypoint_config(port=self.port, web_port=self.web_port)
        delay = 0.0 if occ.crashes <= 1 else min(10.0, 0.5 * 2 ** (occ.crashes - 2))
        asyncio.get_running_loop().call_later(delay, self._respawn, occ)

    def entrypoint_config(self, **changes: Any) -> None:
        path = Path(self.entrypoint.env["KRTLAB_ENTRYPOINT_CONFIG"])
        config = json.loads(path.read_text())
        config.update(changes)
        path.write_text(json.dumps(config, indent=1))

    def _respawn(self, occ: Occurrence) -> None:
        if self.stopping:
            return
        occ.restarts += 1
        try:
            self._spawn(occ)
        except ServeError as exc:
            self.event(str(exc))

    def _nats_exited(self, code: int) -> None:
        if not self.stopping:
            self.event(f"nats-server exited ({describe_exit(code)}): the service is down")

    # -- stop ----------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 2 s), nats-server last."""
        self.stopping = True
        for occ in self.procs:
            if occ.unwatch is not None:
                occ.unwatch()
        if self._unwatch_nats is not None:
            self._unwatch_nats()
        if self._nc is not None:
            self._nc.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.kill_all)

    def kill_all(self) -> None:
        """Stop every process from any thread (also the last resort when the loop is gone)."""
        self.stopping = True
        stop_processes([o.proc for o in self.procs if o.proc is not None])
        self.nats.stop()
        for occ in self.procs:
            occ.state = "stopped"

    # -- logs and status -----------------------------------------------------------------------

    def event(self, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z krtlab {text}"
        self.events.append(line)
        with open(self.run_dir / "logs" / "krtlab.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if not self.quiet:
            sys.stderr.write(line + "\n")

    def read_logs(self) -> dict[str, str]:
        """Log text of krtlab's events, the entrypoint, each worker and nats-server, by name."""
        out = {"krtlab": "\n".join(self.events)}
        for occ in self.procs:
            out[occ.label] = _read(occ.log_path)
        out["nats-server"] = _read(self.nats.log_path)
        return out

    def status(self) -> dict[str, Any]:
        ep = self.entrypoint.status()
        return {
            "nats": {
                "url": self.nats.url,
                "pid": self.nats.proc.pid if self.nats.proc and self.nats.alive() else None,
            },
            "entrypoint": {k: ep[k] for k in ("pid", "state", "restarts", "last_exit")},
            "mongo_writer": {  # in the entrypoint's process
                "subject": self.entrypoint.env["KRT_NATS_MONGO_WRITER"],
                "ready": self.writer_ready,
            },
            "workers": [o.status() for o in self.occurrences],
            "workflows": self.workflow_status(),
            "events": self.events[-20:],
        }

    def workflow_status(self) -> dict[str, dict[str, str]]:
        """``{workflow: {"rpc", "state", "reason"}}``; state ``up``, ``starting``,
        ``restarting``, ``down`` (a node did not start: ``reason``) or ``not served``."""
        out = {}
        for workflow, rpc in self.routes.items():
            occs = [o for o in self.occurrences if o.workflow == workflow]
            if workflow in self.down:
                state, reason = "down", self.down[workflow]
            elif all(o.state == "ready" for o in occs):
                state, reason = "up", ""
            else:
                state = "restarting" if any(o.state == "restarting" for o in occs) else "starting"
                reason = next((o.last_exit for o in occs if o.state == "restarting"), "")
            out[workflow] = {"rpc": rpc, "state": state, "reason": reason}
        for workflow, rpc in self.unserved.items():
            out[workflow] = {"rpc": rpc, "state": "not served", "reason": ""}
        return out


_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z? (?:[A-Z]+ )?")


def last_words(log_path: Path, base_path: str) -> str:
    """The line of a worker's log that says why it stopped: kre-py's ``error loading handler
    script ...`` when there is one, else the last line (bundle paths made relative)."""
    lines = [line.strip() for line in tail(log_path, 80).splitlines() if line.strip()]
    said = next(
        (x for x in lines if "error loading handler script" in x), lines[-1] if lines else ""
    )
    said = _STAMP.sub("", said).replace(os.path.join(base_path, ""), "")
    return said if len(said) <= 300 else said[:297] + "..."


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
