"""A readable summary of a project (``krtlab inspect``)."""

from __future__ import annotations

import posixpath
from typing import Any

from krtlab.errors import ProtoError

from .project import Project

__all__ = ["format_summary", "summarize"]


def summarize(project: Project) -> dict[str, Any]:
    """Plain data: version, entrypoint, rpcs, nodes (runtime, image, gpu, types, the modules
    beside their src), workflows."""
    from krtlab.bundle.images import envs_from_files
    from krtlab.spec.contracts import resolve_contract
    from krtlab.spec.runners import kre_py_runner

    m = project.manifest
    envs = envs_from_files(project.files, m)
    report = project.validate()  # with the same envs, read from the same files
    proto = project.proto_facts()
    sources = project.source_facts()
    rpcs = (proto.rpcs or {}) if proto is not None else {}  # a proto with issues has no rpcs
    nodes = []
    for i, n in enumerate(m.nodes):
        c = (
            resolve_contract(n.name, n.src, proto, sources, {})
            if rpcs and proto is not None
            else None
        )
        env = envs.get(n.name)
        runner = kre_py_runner(env.base if env is not None and env.base else n.image)
        found = [f for f in report.findings if f.loc[:2] == ("nodes", i)]
        src = posixpath.normpath(n.src)  # "." for no src: no file, no folder
        folder = posixpath.dirname(src)
        # the node's own modules beside its src (copied from beside the notebook on export)
        modules = sorted(
            p[len(folder) + 1 :]
            for p in project.files
            if folder and p.startswith(folder + "/") and p != src and p.endswith(".py")
            and not p.endswith("_pb2.py")
        )  # fmt: skip
        nodes.append(
            {
                "name": n.name,
                "runtime": n.runtime,
                "image": n.image,
                "gpu": n.gpu,
                "src": n.src,
                "size": len(project.files.get(src, b"")),
                "input": c.input if c else None,
                "output": c.output if c else None,
                "modules": modules,
                "runner": runner.image if runner else None,
                "python": runner.python_text if runner else None,
                "requirements": list(env.requirements) if env is not None else [],
                "findings": [f"{f.severity}: {f.where()}: {f.message}" for f in found],
            }
        )
    compiled = project.compiled
    return {
        "origin": project.origin,
        "version": m.version,
        "description": m.description,
        "entrypoint": {"proto": m.entrypoint.proto, "image": m.entrypoint.image},
        "rpcs": {r.name: {"input": r.input, "output": r.output} for r in rpcs.values()},
        "messages": sorted(compiled.all_messages()) if not isinstance(compiled, ProtoError) else [],
        "config": {"variables": list(m.config.variables), "files": list(m.config.files)},
        "nodes": nodes,
        "workflows": [
            {"name": w.name, "entrypoint": w.entrypoint, "sequential": list(w.sequential)}
            for w in m.workflows
        ],
        "files": len(project.files),
        "bytes": sum(len(d) for d in project.files.values()),
    }


def format_summary(data: dict[str, Any]) -> str:
    """The summary as text for a terminal."""

    def short(t: str | None) -> str:
        return t.rpartition(".")[2] if t else "?"

    lines = [
        f"version     {data['version'] or '(none)'}",
        f"description {data['description'] or '(none)'}",
        f"entrypoint  {data['entrypoint']['proto']} on {data['entrypoint']['image']}",
        f"files       {data['files']} ({data['bytes']:,} bytes) from {data['origin']}",
    ]
    if data["config"]["variables"] or data["config"]["files"]:
        cfg = data["config"]["variables"] + [f"{f} (file)" for f in data["config"]["files"]]
        lines.append(f"config      {', '.join(cfg)}")
    lines += ["", "workflows"]
    for w in data["workflows"]:
        rpc = data["rpcs"].get(w["entrypoint"])
        sig = f"({short(rpc['input'])}) -> {short(rpc['output'])}" if rpc else "(rpc not in proto)"
        lines.append(f"  {w['name']}: rpc {w['entrypoint']} {sig}")
        lines.append("    " + " -> ".join(w["sequential"]))
    lines += ["", "nodes"]
    for n in data["nodes"]:
        gpu = ", gpu" if n["gpu"] else ""
        types = (
            f" ({short(n['input'])}) -> {short(n['output'])}" if n["input"] or n["output"] else ""
        )
        lines.append(f"  {n['name']:<19} {n['runtime']:<6} {n['image']}{gpu}")
        lines.append(f"  {'':<19} {n['src']}{types}")
        if n.get("runner"):
            lines.append(f"  {'':<19} runs on {n['runner']} (Python {n['python']})")
        if n.get("requirements"):
            lines.append(f"  {'':<19} installs {', '.join(n['requirements'])}")
        if n.get("modules"):
            lines.append(f"  {'':<19} with {', '.join(n['modules'])}")
        for text in n.get("findings", []):
            lines.append(f"  {'':<19} {text}")
    return "\n".join(lines)
