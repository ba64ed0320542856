"""What a graph shows, built from a :class:`~krtlab.Version` (and a run result).

The model is small and frozen: the entrypoint's rpcs, each workflow as a cluster of boxes in
order, arrows labelled with the message they carry (red where validation reports a mismatch),
badges, config variables and, after a run, each node's status. It uses the same facts as
``v.validate()`` (node contracts from type hints, or read from the source of loaded nodes) so
the picture and the report agree. Renderers: :mod:`krtlab.notebook.dot` (a ``graphviz.Digraph``)
and :mod:`krtlab.notebook.svg` (a pure-Python layout and a text outline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from krtlab.errors import SpecError
from krtlab.spec.contracts import resolve_contract
from krtlab.spec.facts import NodeContract, RpcFacts
from krtlab.spec.model import Manifest, WorkflowSpec
from krtlab.spec.suggest import did_you_mean

if TYPE_CHECKING:
    from krtlab.authoring.version import Version, Workflow

__all__ = [
    "Arrow",
    "Box",
    "Cluster",
    "GraphModel",
    "RpcRow",
    "badge",
    "build_model",
    "clean",
    "error_text",
    "first_line",
    "names_only_model",
    "short",
]

Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class Box:
    """One node of a workflow, as drawn (``id`` is a generated, DOT-safe identifier)."""

    id: str
    name: str
    badges: tuple[str, ...] = ()
    tooltip: str = ""
    kind: str = "python"
    status: Status | None = None
    note: str = ""  # duration, or the error's first line
    missing: bool = False  # named in the workflow but not defined in the version


@dataclass(frozen=True)
class Arrow:
    """An edge: ``src``/``dst`` are box ids, ``port`` the entrypoint row it leaves from."""

    src: str
    dst: str
    label: str = ""
    tooltip: str = ""
    bad: bool = False
    port: str | None = None


@dataclass(frozen=True)
class Cluster:
    """One workflow: its boxes in order, the reply box (``exit_id``) and the arrows."""

    name: str
    rpc: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    exit_id: str
    note: str = ""
    bad: bool = False


@dataclass(frozen=True)
class RpcRow:
    """An rpc of ``service Entrypoint`` (``port`` names its row in the entrypoint box)."""

    name: str
    port: str
    tooltip: str = ""
    used: bool = True


@dataclass(frozen=True)
class GraphModel:
    """Everything a renderer needs; every string is already free of control characters."""

    title: str
    description: str = ""
    entrypoint_image: str = ""
    rpcs: tuple[RpcRow, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    config: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    run: str = ""  # "run ok in 3.1 ms" / "run failed at model: ..." after a run
    run_ok: bool | None = None


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_MISMATCH = ("chain.input_mismatch", "chain.output_mismatch")


def clean(text: Any, limit: int | None = None) -> str:
    """Text safe for XML and DOT: no ANSI colours or control characters, cut at ``limit``."""
    s = _CONTROL.sub("", _ANSI.sub("", str(text)))
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def error_text(error: Any) -> str:
    """``ValueError: boom`` for exceptions, the text (or ``.message``) of anything else."""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return str(getattr(error, "message", error))


def first_line(error: Any, limit: int = 60) -> str:
    """The first non-empty line of :func:`error_text`, cleaned and cut at ``limit``."""
    lines = [line for line in error_text(error).splitlines() if line.strip()]
    return clean(lines[0].strip() if lines else "", limit)


def short(full: str | None) -> str:
    """``entrypoint.Request`` → ``Request``."""
    return full.rsplit(".", 1)[-1] if full else ""


def badge(image: str) -> str:
    """``konstellation/kre-py:1.23.0`` → ``kre-py:1.23.0``."""
    return image.rsplit("/", 1)[-1] if image else "no image"


@dataclass
class _Facts:
    """What the version says, gathered once: manifest, rpcs, contracts, mismatches, statuses."""

    manifest: Manifest
    rpcs: dict[str, RpcFacts] = field(default_factory=dict)
    contracts: dict[str, NodeContract] = field(default_factory=dict)
    mismatches: dict[tuple[int, int, str], str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    statuses: dict[str, tuple[Status, str, str]] | None = None  # None: not a run
    runners: dict[str, Any] = field(default_factory=dict)  # node -> its kre-py Runner
    needs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> requirements
    findings: dict[str, list[str]] = field(default_factory=dict)  # node -> its findings


def build_model(version: Version, *, workflow: str | None = None, run: Any = None) -> GraphModel:
    """The model of ``version``: every workflow, the one named (by workflow or rpc name), or
    the one ``run`` went through, with each node's status when ``run`` is given.

    Raises:
        SpecError: ``workflow`` names no workflow of the version.
    """
    facts = _gather(version)
    summary, run_ok = "", None
    if run is not None:
        facts.statuses, summary, run_ok = _run_statuses(run)
        workflow = workflow or _run_workflow(run, facts.manifest, facts.statuses)
    m = facts.manifest
    picked = [(i, w) for i, w in enumerate(m.workflows) if workflow in (None, w.name, w.entrypoint)]
    if workflow is not None and not picked:
        names = [w.name for w in m.workflows]
        raise SpecError(
            f"{version.name} has no workflow {workflow!r}; "
            + (did_you_mean(workflow, names) or f"workflows: {', '.join(names) or 'none'}")
        )
    served = {w.entrypoint for w in m.workflows}
    shown = [w.entrypoint for _, w in picked]
    names = list(dict.fromkeys([*(facts.rpcs if workflow is None else ()), *shown]))
    ports = {name: f"r{k}" for k, name in enumerate(names)}
    rows = tuple(
        RpcRow(clean(name, 40), ports[name], clean(_rpc_tooltip(name, facts)), name in served)
        for name in names
    )
    config = tuple(clean(v, 40) for v in m.config.variables)
    config += tuple(clean(f, 34) + " (file)" for f in m.config.files)
    return GraphModel(
        title=clean(m.version or "version", 60),
        description=clean(" ".join(m.description.split()), 120),
        entrypoint_image=clean(badge(m.entrypoint.image), 60),
        rpcs=rows,
        clusters=tuple(_cluster(i, w, facts, ports) for i, w in picked),
        config=config,
        notes=tuple(clean(n, 120) for n in facts.notes),
        run=clean(summary, 120),
        run_ok=run_ok,
    )


def _gather(version: Version) -> _Facts:
    from krtlab.bundle.images import envs_from_files, runner_of

    facts = _Facts(version.manifest())
    facts.contracts = version.contracts()
    for node in version._nodes.values():
        facts.runners[node.name] = runner_of(version, node)
    try:  # the facts v.validate() uses, so red edges are exactly the reported mismatches
        project = version.project()
        proto = project.proto_facts()
        if proto is not None and proto.rpcs and not proto.issues:
            facts.rpcs = dict(proto.rpcs)
            sources = project.source_facts()
            for spec in facts.manifest.nodes:  # loaded nodes: types read from their source
                c = resolve_contract(spec.name, spec.src, proto, sources, facts.contracts)
                if c is not None:
                    facts.contracts[spec.name] = c
        if version._base is None:
            from krtlab.authoring.images import node_envs

            envs = node_envs(version, project)
        else:
            envs = envs_from_files(project.files, facts.manifest)
        facts.needs = {name: env.requirements for name, env in envs.items() if env.requirements}
        report = project.validate(facts.contracts, envs)
    except Exception as exc:  # a version that cannot be assembled still deserves a picture
        facts.notes.append(f"message types not checked: {first_line(exc, 80)}")
        return facts
    nodes = [n.name for n in facts.manifest.nodes]
    for f in report.findings:
        if len(f.loc) >= 2 and f.loc[0] == "nodes" and isinstance(f.loc[1], int):
            if f.loc[1] < len(nodes):  # shown with the node it is about
                facts.findings.setdefault(nodes[f.loc[1]], []).append(f"{f.severity}: {f.message}")
        if f.code in _MISMATCH and len(f.loc) == 4 and isinstance(f.loc[1], int):
            text = f.message + (f"\nhint: {f.hint}" if f.hint else "")
            facts.mismatches[(f.loc[1], int(f.loc[3]), f.code)] = clean(text)
    if report.errors:
        n = len(report.errors)
        facts.notes.append(f"{n} validation error{'s' if n > 1 else ''}: see v.validate()")
    return facts


def _rpc_tooltip(name: str, facts: _Facts) -> str:
    rpc = facts.rpcs.get(name)
    if rpc is None:
        return f"rpc {name} is not in the proto" if facts.rpcs else f"rpc {name}"
    text = f"rpc {name} ({rpc.input}) returns ({rpc.output})"
    if name not in {w.entrypoint for w in facts.manifest.workflows}:
        text += "\nno workflow serves it: calls fail"
    return text


def _cluster(i: int, wf: WorkflowSpec, facts: _Facts, ports: dict[str, str]) -> Cluster:
    """Workflow ``i``: rpc request → node 1 → … → node n → reply, each arrow labelled with the
    message it carries (what the sender produces, else what the receiver takes)."""
    rpc = facts.rpcs.get(wf.entrypoint)
    boxes, arrows = [], []
    sent, src, port = (rpc.input if rpc else None), "ep", ports.get(wf.entrypoint)
    for j, name in enumerate(wf.sequential):
        c, box_id = facts.contracts.get(name), f"w{i}n{j}"
        taken = c.input if c else None
        why = facts.mismatches.get((i, j, "chain.input_mismatch"), "")
        label = f"{short(sent)} ≠ {short(taken)}" if why else short(sent or taken)
        tip = why or sent or taken or ""
        arrows.append(Arrow(src, box_id, clean(label, 60), tip, bool(why), port))
        boxes.append(_box(box_id, name, facts))
        sent, src, port = (c.output if c else None), box_id, None
    exit_id = f"w{i}out"
    wanted = rpc.output if rpc else None
    why = facts.mismatches.get((i, len(wf.sequential) - 1, "chain.output_mismatch"), "")
    label = f"{short(sent)} ≠ {short(wanted)}" if why else short(sent or wanted)
    tip = why or sent or wanted or ""
    arrows.append(Arrow(src, exit_id, clean(label, 60), tip, bool(why), port))
    note = f"rpc {wf.entrypoint} is not in the proto" if facts.rpcs and rpc is None else ""
    return Cluster(
        clean(wf.name, 40),
        clean(wf.entrypoint, 40),
        tuple(boxes),
        tuple(arrows),
        exit_id,
        clean(note, 80),
        bool(note),
    )


def _box(box_id: str, name: str, facts: _Facts) -> Box:
    spec, c = facts.manifest.node(name), facts.contracts.get(name)
    status: Status | None = None
    note = why = ""
    if facts.statuses is not None:
        status, note, why = facts.statuses.get(name, ("skipped", "not reached", "not reached"))
    if spec is None:
        tip = f"{name} is not a node of this version"
        return Box(box_id, clean(name, 40), (), clean(tip), "python", status, note, True)
    runner, needs = facts.runners.get(name), facts.needs.get(name, ())
    lines = [name, f"image: {spec.image}", f"src: {spec.src}"]
    if runner is not None:
        lines.append(f"runs on: {runner.image}, Python {runner.python_text}")
    if needs:
        lines.append("installs: " + ", ".join(needs))
    if c is not None:
        how = " (read from its source)" if c.origin == "inferred" else ""
        lines += [f"takes: {c.input or '?'}{how}", f"returns: {c.output or '?'}"]
    lines += ["gpu: true"] * spec.gpu + ([f"\n{why}"] if why else [])
    lines += [f"\n{text}" for text in facts.findings.get(name, [])[:5]]
    first = f"kre-py {runner.tag} · py{runner.python_text}" if runner else badge(spec.image)
    badges = (clean(first, 40),) + ((f"+{len(needs)} pkg",) if needs else ())
    badges += ("gpu",) if spec.gpu else ()
    if any(t.startswith("error") for t in facts.findings.get(name, [])):
        badges += ("⚠ errors",)
    return Box(box_id, clean(name, 40), badges, clean("\n".join(lines)), spec.runtime, status, note)


def names_only_model(workflow: Workflow) -> GraphModel:
    """A workflow whose version is unknown: its rpc and node names, nothing else."""
    spec = WorkflowSpec(workflow.name, workflow.entrypoint, tuple(workflow.sequential))
    facts = _Facts(Manifest(version=workflow.name, description=""))
    cluster = _cluster(0, spec, facts, {workflow.entrypoint: "r0"})
    # the nodes are unknown here, not missing: neutral boxes
    boxes = tuple(replace(b, missing=False, tooltip=b.name) for b in cluster.boxes)
    return GraphModel(
        title=clean(workflow.name, 60),
        rpcs=(RpcRow(clean(workflow.entrypoint, 40), "r0", f"rpc {workflow.entrypoint}"),),
        clusters=(replace(cluster, boxes=boxes),),
        notes=("node details unknown: show it with v.graph(workflow=...)",),
    )


# -- runs ------------------------------------------------------------------------------------------


def _run_statuses(run: Any) -> tuple[dict[str, tuple[Status, str, str]], str, bool]:
    """node name → (status, label note, tooltip) from a run result's trace; a summary; ok."""
    out: dict[str, tuple[Status, str, str]] = {}
    total = 0.0
    for t in list(getattr(run, "trace", None) or ()):
        ms = getattr(t, "duration_ms", None)
        total += ms if isinstance(ms, (int, float)) else 0.0
        logs = [clean(x, 200) for x in list(getattr(t, "logs", None) or ())[-5:]]
        tail = ("\nlogs:\n" + "\n".join(logs)) if logs else ""
        error = getattr(t, "error", None)
        if error is not None:
            text = f"failed after {_ms(ms)}\n{clean(error_text(error), 1000)}{tail}"
            out[_node_name(t)] = ("failed", first_line(error, 48), text)
        else:
            out[_node_name(t)] = ("ok", _ms(ms), f"ok in {_ms(ms)}{tail}")
    error = getattr(run, "error", None)
    failed = getattr(error, "node", None) if error is not None else None
    failed = str(getattr(failed, "name", failed)) if failed is not None else None
    if failed and out.get(failed, ("",))[0] != "failed":
        out[failed] = ("failed", first_line(error, 48), clean(error_text(error), 1000))
    ok = bool(getattr(run, "ok", error is None))
    if ok:  # the run's own figure (as its header shows it), else the nodes' sum
        duration = getattr(run, "duration_ms", None)
        return out, f"run ok in {_ms(duration if _is_ms(duration) else total)}", True
    summary = f"run failed at {failed}" if failed else "run failed"
    return out, summary + (f": {first_line(error, 80)}" if error is not None else ""), False


def _node_name(trace: Any) -> str:
    node = getattr(trace, "node", "")
    return str(getattr(node, "name", node))


def _run_workflow(run: Any, m: Manifest, statuses: dict[str, Any]) -> str | None:
    """The workflow a run went through: ``run.workflow`` (a name or object) when set, else
    the one whose node list starts with the traced nodes."""
    named = getattr(run, "workflow", None)
    named = getattr(named, "name", named)
    if isinstance(named, str) and m.workflow(named) is not None:
        return named
    traced = [_node_name(t) for t in list(getattr(run, "trace", None) or ())]
    for w in m.workflows:
        if traced and list(w.sequential[: len(traced)]) == traced:
            return w.name
    return next((w.name for w in m.workflows if set(statuses) & set(w.sequential)), None)


def _is_ms(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ms(value: Any) -> str:
    """A duration as the run's table and header write it (a node that ran never reads 0)."""
    if not _is_ms(value):
        return "?"
    from krtlab.runtime.result import format_ms  # loaded already: the run made the value

    return format_ms(value)
