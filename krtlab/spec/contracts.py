"""Checks KRE never makes and then fails on at run time: node sources, the proto, and the
message chain of each workflow (rpc request → node 1 → … → node n → rpc response)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from krtlab.spec import rules
from krtlab.spec.checker import Checker
from krtlab.spec.facts import (
    FileFacts,
    NodeContract,
    NodeEnv,
    ProtoFacts,
    RpcFacts,
    SourceFacts,
)
from krtlab.spec.findings import Location
from krtlab.spec.model import Manifest, NodeSpec, WorkflowSpec
from krtlab.spec.runner_checks import check_runner
from krtlab.spec.suggest import did_you_mean

__all__ = ["check_contracts", "check_sources", "resolve_contract"]

_ELF = b"\x7fELF"


def check_sources(
    check: Checker,
    manifest: Manifest,
    files: Mapping[str, FileFacts] | None,
    sources: Mapping[str, SourceFacts],
    envs: Mapping[str, NodeEnv] | None = None,
) -> None:
    """The handler file of each node, as the kre-py / kre-go runner will load it (and as its
    image's runner will run it: see :mod:`krtlab.spec.runner_checks`)."""
    for i, node in enumerate(manifest.nodes):
        if not node.src:
            continue
        loc = ("nodes", i, "src")
        src = posixpath.normpath(node.src)
        kind = rules.runner_kind(node.image)
        if kind == "python" and not src.endswith(".py"):
            check.error(
                "src.not_python",
                f"node {node.name!r} runs on {node.image} (kre-py) but "
                f"src {node.src!r} is not a .py file",
                loc,
                hint="use konstellation/kre-go for compiled Go nodes",
            )
        if node.runtime == "go":
            _check_go_src(check, node.name, src, files, loc)
            continue
        facts = sources.get(src)
        if facts is None:
            continue
        env = (envs or {}).get(node.name)
        _check_python_src(
            check, node.name, node.image, src, facts, files, loc, sources, env, raw_src=node.src
        )


def _check_go_src(
    check: Checker, name: str, src: str, files: Mapping[str, FileFacts] | None, loc: Location
) -> None:
    if src.endswith(".go"):
        check.error(
            "src.go_source",
            f"Go node {name!r} points at Go source {src!r}; kre-go runs the compiled binary at src",
            loc,
            hint="build it (GOOS=linux go build -o bin/<node>) and point src at bin/<node>",
        )
        return
    facts = (files or {}).get(src)
    if facts is not None and facts.kind == "file" and facts.head[:4] != _ELF:
        check.warning(
            "src.not_binary",
            f"Go node {name!r}: {src!r} is not a Linux (ELF) "
            "executable; kre-go copies it to ./app and executes it",
            loc,
        )


def _no_handler_quote(image: str, raw_src: str) -> str:
    """kre-py's own refusal (``main.py`` ``load_handler``): the path is ``KRT_BASE_PATH``
    (``/krt-files``) joined with ``KRT_HANDLER_PATH`` (the node's src as written)."""
    path = posixpath.join("/krt-files", raw_src)
    tag = image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    version = tuple(int(p) for p in tag.split(".")) if re.fullmatch(r"\d+(\.\d+)*", tag) else ()
    if version[:2] >= (2, 1):  # kre-runners kre-py-v2.1.0 … v2.1.5
        return f"kre-py 2.1: Handler module '{path}' must implement a function 'handler(ctx, data)'"
    # kre-runners kre-py-v1.22.0 … kre-py-v2.0.0
    return (
        f"kre-py 1.22-2.0: handler module '{path}' must implement a function 'handler(ctx, data)'"
    )


def _check_python_src(
    check: Checker,
    name: str,
    image: str,
    src: str,
    facts: SourceFacts,
    files: Mapping[str, FileFacts] | None,
    loc: Location,
    sources: Mapping[str, SourceFacts] | None = None,
    env: NodeEnv | None = None,
    raw_src: str | None = None,
) -> None:
    if facts.syntax_error:
        line, msg = facts.syntax_error
        check.error(
            "src.syntax",
            f"node {name!r}: {msg}",
            loc,
            file=src,
            line=line,
            # no quote: kre-py prints Python 3.7/3.9's SyntaxError, krtlab's Python words it anew
        )
        return
    from krtlab.spec.generations import check_generation, runner_generation

    generation = runner_generation(image, env.base if env is not None else None)
    if generation in ("json", "v3"):  # another handler contract than kre-py 1.2x-2.x's
        check_generation(check, name, image, src, facts.text, loc, generation)
        return
    if facts.handler_line is None:
        check.error(
            "src.no_handler",
            f"node {name!r}: {src} defines no handler(ctx, data)",
            loc,
            file=src,
            hint="add: async def handler(ctx, data): ...",
            kre=_no_handler_quote((env.base if env else None) or image, raw_src or src),
        )
        return
    if not facts.handler_async:
        check.error(
            "src.handler_not_async",
            f"node {name!r}: handler must be 'async def': kre-py "
            "awaits it, so a plain function fails on the first request",
            loc,
            file=src,
            line=facts.handler_line,
            hint="async def handler(ctx, data):",
        )
    if facts.handler_params != 2:
        check.error(
            "src.handler_signature",
            f"node {name!r}: handler takes "
            f"{facts.handler_params} parameters; kre-py calls handler(ctx, data)",
            loc,
            file=src,
            line=facts.handler_line,
        )
    if facts.init_params is not None and facts.init_params != 1:
        check.error(
            "src.init_signature",
            f"node {name!r}: init takes {facts.init_params} parameters; kre-py calls init(ctx)",
            loc,
            file=src,
        )
    check_runner(check, name, image, src, facts, files, sources, env, loc)


def resolve_contract(
    node_name: str,
    src: str,
    proto: ProtoFacts,
    sources: Mapping[str, SourceFacts],
    contracts: Mapping[str, NodeContract],
) -> NodeContract | None:
    """The node's message types: declared/hinted ones first, else inferred from its source."""
    if node_name in contracts:
        return contracts[node_name]
    facts = sources.get(posixpath.normpath(src))  # no src: "." names no source
    if facts is None or facts.handler_line is None:
        return None

    def full(ref: tuple[str, str] | None) -> str | None:
        if ref is None:
            return None
        module, short = ref
        return proto.modules.get(module, {}).get(short)

    inp, out = full(facts.input_ref), full(facts.output_ref)
    if inp is None and out is None:
        return None
    return NodeContract(inp, out, "inferred", src, facts.output_line)


def check_contracts(
    check: Checker,
    manifest: Manifest,
    proto: ProtoFacts,
    sources: Mapping[str, SourceFacts],
    contracts: Mapping[str, NodeContract],
) -> None:
    """The proto and every workflow's message chain."""
    ploc = ("entrypoint", "proto")
    if proto.issues:
        for file, line, _col, message in proto.issues:
            check.error(
                "proto.syntax", f"{file} does not compile: {message}", ploc, file=file, line=line
            )
        return
    if proto.rpcs is None:
        others = f" (it has: {', '.join(proto.services)})" if proto.services else ""
        check.error(
            "proto.no_service",
            f"{proto.file} has no 'service Entrypoint'{others}; KRE's "
            "entrypoint generator only reads that service",
            ploc,
            hint="service Entrypoint { rpc MyRpc (Request) returns (Response) {}; }",
        )
        return
    if proto.package != "entrypoint":
        check.warning(
            "proto.package",
            f"{proto.file} has package {proto.package or '(none)'!r}; "
            "KRE clients call entrypoint.Entrypoint/<Rpc>",
            ploc,
            hint="package entrypoint;",
        )
    served = {wf.entrypoint for wf in manifest.workflows}
    for each in proto.rpcs.values():
        if each.streaming:
            check.error(
                "proto.streaming",
                f"rpc {each.name} streams; KRE's entrypoint serves unary rpcs only",
                ploc,
                file=proto.file,
                line=each.line,
            )
        elif each.name not in served:
            check.warning(
                "proto.rpc_unused",
                f"rpc {each.name} has no workflow; calls to it fail",
                ploc,
                file=proto.file,
                line=each.line,
            )

    nodes = {n.name: n for n in manifest.nodes}
    for i, wf in enumerate(manifest.workflows):
        if not wf.entrypoint:
            continue
        rpc = proto.rpcs.get(wf.entrypoint)
        if rpc is None:
            check.error(
                "workflow.unknown_rpc",
                f"workflow {wf.name!r} serves rpc {wf.entrypoint!r}, which service Entrypoint in "
                f"{proto.file} does not define",
                ("workflows", i, "entrypoint"),
                hint=did_you_mean(wf.entrypoint, proto.rpcs)
                or f"rpcs in {proto.file}: {', '.join(proto.rpcs) or 'none'}",
            )
            continue
        _check_chain(check, i, wf, rpc, nodes, proto, sources, contracts)


def _check_chain(
    check: Checker,
    i: int,
    wf: WorkflowSpec,
    rpc: RpcFacts,
    nodes: Mapping[str, NodeSpec],
    proto: ProtoFacts,
    sources: Mapping[str, SourceFacts],
    contracts: Mapping[str, NodeContract],
) -> None:
    expected: str | None = rpc.input
    producer = f"rpc {rpc.name} receives"
    for j, name in enumerate(wf.sequential):
        node = nodes.get(name)
        if node is None:
            return  # reported as sequential.unknown_node
        loc = ("workflows", i, "sequential", j)
        c = resolve_contract(name, node.src, proto, sources, contracts)
        if c is not None and c.origin == "hints" and (c.input is None or c.output is None):
            missing = " and ".join(
                w for w, t in (("request", c.input), ("return", c.output)) if t is None
            )
            check.warning(
                "chain.untyped",
                f"node {name!r} has no type hint for its {missing}; krtlab cannot check that "
                "the messages chain",
                loc,
                hint="annotate it, e.g. def f(ctx, req: pb.Request) -> pb.Response",
            )
        for t in (c.input, c.output) if c else ():
            if t and t not in proto.messages:
                check.error(
                    "chain.unknown_type",
                    f"node {name!r} uses message {t!r}, which no proto of the version defines",
                    loc,
                    hint=did_you_mean(t, proto.messages),
                )
        severity = check.warning if c is not None and c.origin == "inferred" else check.error
        how = " (read from its source)" if c is not None and c.origin == "inferred" else ""
        if c is not None and c.input and expected and c.input != expected:
            severity(
                "chain.input_mismatch",
                f"node {name!r} takes {c.input}{how} but {producer} {expected}; Unpack fails in "
                f"{name!r} and every {rpc.name} call errors",
                loc,
                hint=f"make {name!r} take {expected}, or change what comes before it",
            )
        if c is not None and c.output:
            expected, producer = c.output, f"node {name!r} returns"
        else:
            expected, producer = None, ""
    if wf.sequential and expected and expected != rpc.output:
        last = wf.sequential[-1]
        c = resolve_contract(last, nodes[last].src, proto, sources, contracts)
        severity = check.warning if c is not None and c.origin == "inferred" else check.error
        severity(
            "chain.output_mismatch",
            f"last node {last!r} returns {expected} but rpc {rpc.name} returns {rpc.output}; "
            "KRE's entrypoint unpacks it into the wrong type and answers an empty response",
            ("workflows", i, "sequential", len(wf.sequential) - 1),
            hint=f"make {last!r} return {rpc.output}",
        )
