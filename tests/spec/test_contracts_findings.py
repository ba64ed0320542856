"""``krtlab.spec.contracts``: each finding about node sources, the proto and the message chain
of each workflow, whole (severity, code, message, YAML path, file, line, hint, KRE's words)."""

from __future__ import annotations

import pytest

from krtlab.spec.checker import Checker
from krtlab.spec.contracts import check_contracts, check_sources, resolve_contract
from krtlab.spec.facts import FileFacts, NodeContract, NodeEnv, ProtoFacts, RpcFacts, SourceFacts
from krtlab.spec.model import Manifest, NodeSpec, WorkflowSpec
from krtlab.spec.pysource import read_python_source

PY = "konstellation/kre-py:1.23.0"
GO = "konstellation/kre-go:1.0"
SRC = "src/a/main.py"
GOOD = "async def handler(ctx, data):\n    return data\n"
NO_HANDLER = read_python_source("x = 1\n")
MIDDLE = read_python_source(
    "import public_input_pb2 as pb\nasync def handler(ctx, data):\n    req = pb.Middle()\n"
    "    data.Unpack(req)\n    return pb.Middle()\n"
)


def sources_found(nodes, sources, files=None, envs=None):
    check = Checker(None)
    check_sources(check, Manifest("v", "", nodes=tuple(nodes)), files, sources, envs)
    return [(f.severity, f.code, f.message, f.loc, f.file, f.line, f.hint, f.kre)
            for f in check.findings]  # fmt: skip


RPCS = {
    "Greet": RpcFacts("Greet", "entrypoint.Request", "entrypoint.Response", 7),
    "Stream": RpcFacts("Stream", "entrypoint.Request", "entrypoint.Response", 8, True),
    "Unused": RpcFacts("Unused", "entrypoint.Request", "entrypoint.Response", 9),
}
PB = {
    "Request": "entrypoint.Request",
    "Response": "entrypoint.Response",
    "Middle": "entrypoint.Middle",
}
P = ProtoFacts("public_input.proto", package="entrypoint", rpcs=RPCS,
               messages=frozenset(PB.values()), modules={"public_input_pb2": PB})  # fmt: skip
NODES = tuple(NodeSpec(n, PY, f"src/{n}/main.py") for n in "abc")
PROTO_FINDINGS = [
    ("error", "proto.streaming", "rpc Stream streams; KRE's entrypoint serves unary rpcs only",
     ("entrypoint", "proto"), "public_input.proto", 8, None, None),
    ("warning", "proto.rpc_unused", "rpc Unused has no workflow; calls to it fail",
     ("entrypoint", "proto"), "public_input.proto", 9, None, None),
]  # fmt: skip


def manifest(*workflows):
    return Manifest("v", "", nodes=NODES, workflows=tuple(workflows))


def contracts_found(m, proto=P, sources=None, contracts=None):
    check = Checker(None)
    check_contracts(check, m, proto, sources or {}, contracts or {})
    return [(f.severity, f.code, f.message, f.loc, f.file, f.line, f.hint, f.kre)
            for f in check.findings]  # fmt: skip


def no_handler(kre: str) -> tuple:
    """The finding for node 'a' whose src defines no handler, quoting ``kre``."""
    return (
        "error",
        "src.no_handler",
        "node 'a': src/a/main.py defines no handler(ctx, data)",
        ("nodes", 0, "src"),
        "src/a/main.py",
        None,
        "add: async def handler(ctx, data): ...",
        kre,
    )


def test_a_node_without_src_is_skipped():
    found = sources_found([NodeSpec("a", PY, "")], {})
    assert found == []


def test_a_kre_py_node_needs_a_py_file():
    found = sources_found([NodeSpec("a", PY, "src/a/main.go")], {})
    assert found == [
        (
            "error",
            "src.not_python",
            (
                "node 'a' runs on konstellation/kre-py:1.23.0 (kre-py) but "
                "src 'src/a/main.go' is not a .py file"
            ),
            ("nodes", 0, "src"),
            "krt.yml",
            None,
            "use konstellation/kre-go for compiled Go nodes",
            None,
        ),
    ]


def test_a_go_node_points_at_its_binary_not_its_source():
    found = sources_found([NodeSpec("g", GO, "src/g/main.go")], {})
    assert found == [
        (
            "error",
            "src.go_source",
            (
                "Go node 'g' points at Go source 'src/g/main.go'; kre-go runs "
                "the compiled binary at src"
            ),
            ("nodes", 0, "src"),
            "krt.yml",
            None,
            ("build it (GOOS=linux go build -o bin/<node>) and point src at bin/<node>"),
            None,
        ),
    ]


def test_a_go_binary_must_be_an_elf_executable():
    found = sources_found(
        [NodeSpec("g", "registry/x:1", "./bin/../bin/g")],
        {},
        files={"bin/g": FileFacts("file", 10, b"#!/bin/sh")},
    )
    assert found == [
        (
            "warning",
            "src.not_binary",
            (
                "Go node 'g': 'bin/g' is not a Linux (ELF) executable; kre-go "
                "copies it to ./app and executes it"
            ),
            ("nodes", 0, "src"),
            "krt.yml",
            None,
            None,
            None,
        ),
    ]


def test_elf_binaries_folders_and_unknown_files_are_fine():
    found = sources_found(
        [NodeSpec("g", GO, "bin/g"), NodeSpec("h", GO, "bin/h"), NodeSpec("i", GO, "bin/i")],
        {},
        files={"bin/g": FileFacts("file", 10, b"\x7fELF\x02\x01"), "bin/h": FileFacts("dir")},
    )
    assert found == []


def test_a_syntax_error_is_located_in_the_source():
    found = sources_found(
        [NodeSpec("a", PY, "./src/a/main.py")],
        {SRC: SourceFacts(syntax_error=(3, "invalid syntax"))},
    )
    assert found == [
        (
            "error",
            "src.syntax",
            "node 'a': invalid syntax",
            ("nodes", 0, "src"),
            "src/a/main.py",
            3,
            None,
            None,
        ),
    ]


OLD_KRE_PY = (
    "kre-py 1.22-2.0: handler module '/krt-files/{}' must implement a function 'handler(ctx, data)'"
)
NEW_KRE_PY = (
    "kre-py 2.1: Handler module '/krt-files/{}' must implement a function 'handler(ctx, data)'"
)


@pytest.mark.parametrize(
    ("image", "src", "base", "kre"),
    [
        (PY, "./src/a/main.py", None, OLD_KRE_PY.format("./src/a/main.py")),  # src as written
        ("konstellation/kre-py:2.0.0", SRC, None, OLD_KRE_PY.format(SRC)),
        ("konstellation/kre-py:2.1.0@sha256:abc", SRC, None, NEW_KRE_PY.format(SRC)),
        ("registry.local:5000/konstellation/kre-py:2.1.5", SRC, None, NEW_KRE_PY.format(SRC)),
        ("kre-py:2.1.0", SRC, None, NEW_KRE_PY.format(SRC)),  # an image without a folder
        ("konstellation/kre-py:latest", SRC, None, OLD_KRE_PY.format(SRC)),  # no version
        ("registry/x:1", SRC, "konstellation/kre-py:2.1.1", NEW_KRE_PY.format(SRC)),  # custom
    ],
)
def test_no_handler_quotes_the_kre_py_of_the_image(image, src, base, kre):
    envs = {"a": NodeEnv(base=base)} if base else None
    found = sources_found([NodeSpec("a", image, src)], {SRC: NO_HANDLER}, envs=envs)
    assert found == [no_handler(kre)]


def test_handler_and_init_signatures():
    found = sources_found(
        [NodeSpec("a", PY, SRC)],
        {SRC: read_python_source("def handler(ctx):\n    pass\ndef init(ctx, x):\n    pass\n")},
    )
    assert found == [
        (
            "error",
            "src.handler_not_async",
            (
                "node 'a': handler must be 'async def': kre-py awaits it, so "
                "a plain function fails on the first request"
            ),
            ("nodes", 0, "src"),
            "src/a/main.py",
            1,
            "async def handler(ctx, data):",
            None,
        ),
        (
            "error",
            "src.handler_signature",
            ("node 'a': handler takes 1 parameters; kre-py calls handler(ctx, data)"),
            ("nodes", 0, "src"),
            "src/a/main.py",
            1,
            None,
            None,
        ),
        (
            "error",
            "src.init_signature",
            "node 'a': init takes 2 parameters; kre-py calls init(ctx)",
            ("nodes", 0, "src"),
            "src/a/main.py",
            None,
            None,
            None,
        ),
    ]


def test_a_good_handler_and_init():
    found = sources_found(
        [NodeSpec("a", PY, SRC)], {SRC: read_python_source(GOOD + "def init(ctx):\n    pass\n")}
    )
    assert found == []


def test_kre_py_3_nodes_are_checked_against_its_contract():
    found = sources_found(
        [NodeSpec("a", "konstellation/kre-py:3.0.0", SRC)], {SRC: read_python_source(GOOD)}
    )
    assert found == [
        (
            "error",
            "src.no_handler",
            (
                "node 'a': src/a/main.py defines neither default_handler nor "
                "custom_handlers; konstellation/kre-py:3.0.0 (a KRT v2 "
                "runner) calls default_handler(ctx, data) for every message"
            ),
            ("nodes", 0, "src"),
            "src/a/main.py",
            1,
            (
                "kre-py 3 renamed handler to default_handler, and sends "
                "nothing you return: call await ctx.send_output(message)"
            ),
            None,
        ),
    ]


def test_a_custom_image_on_kre_py_3_is_checked_against_its_contract():
    found = sources_found(
        [NodeSpec("a", "registry/x:1", SRC)],
        {SRC: read_python_source(GOOD)},
        envs={"a": NodeEnv(base="konstellation/kre-py:3.0.0")},
    )
    assert found == [
        (
            "error",
            "src.no_handler",
            (
                "node 'a': src/a/main.py defines neither default_handler nor "
                "custom_handlers; registry/x:1 (a KRT v2 runner) calls "
                "default_handler(ctx, data) for every message"
            ),
            ("nodes", 0, "src"),
            "src/a/main.py",
            1,
            (
                "kre-py 3 renamed handler to default_handler, and sends "
                "nothing you return: call await ctx.send_output(message)"
            ),
            None,
        ),
    ]


def test_the_runner_checks_get_the_nodes_own_env():
    found = sources_found(
        [NodeSpec("a", PY, SRC)],
        {SRC: read_python_source("import yaml\n" + GOOD)},
        files={SRC: FileFacts("file")},
        envs={"b": NodeEnv(provides=frozenset({"yaml"}))},
    )
    assert found == [
        (
            "error",
            "src.import_not_in_image",
            (
                "node 'a' imports 'yaml', which the "
                "konstellation/kre-py:1.23.0 image does not have; the node "
                "would fail to start"
            ),
            ("nodes", 0, "src"),
            "src/a/main.py",
            1,
            (
                "declare it: @v.node(..., requirements=[...]) (krtlab then "
                "writes an image FROM konstellation/kre-py:1.23.0 that "
                "installs it), or use a custom image FROM "
                "konstellation/kre-py:1.23.0"
            ),
            None,
        ),
    ]


def test_what_the_node_provides_is_importable():
    found = sources_found(
        [NodeSpec("a", PY, SRC)],
        {SRC: read_python_source("import yaml\n" + GOOD)},
        files={SRC: FileFacts("file")},
        envs={"a": NodeEnv(provides=frozenset({"yaml"}))},
    )
    assert found == []


def test_a_source_not_read_is_not_checked():
    found = sources_found([NodeSpec("a", PY, SRC)], {})
    assert found == []


def test_a_proto_that_does_not_compile():
    found = contracts_found(
        manifest(),
        ProtoFacts(
            "p.proto", issues=(("p.proto", 3, 5, "Expected ;"), ("other.proto", None, None, "bad"))
        ),
    )
    assert found == [
        (
            "error",
            "proto.syntax",
            "p.proto does not compile: Expected ;",
            ("entrypoint", "proto"),
            "p.proto",
            3,
            None,
            None,
        ),
        (
            "error",
            "proto.syntax",
            "other.proto does not compile: bad",
            ("entrypoint", "proto"),
            "other.proto",
            None,
            None,
            None,
        ),
    ]


def test_a_proto_without_the_entrypoint_service_names_those_it_has():
    found = contracts_found(manifest(), ProtoFacts("p.proto", services=("Svc", "Other")))
    assert found == [
        (
            "error",
            "proto.no_service",
            (
                "p.proto has no 'service Entrypoint' (it has: Svc, Other); "
                "KRE's entrypoint generator only reads that service"
            ),
            ("entrypoint", "proto"),
            "krt.yml",
            None,
            ("service Entrypoint { rpc MyRpc (Request) returns (Response) {}; }"),
            None,
        ),
    ]


def test_a_proto_without_any_service():
    found = contracts_found(manifest(), ProtoFacts("p.proto"))
    assert found == [
        (
            "error",
            "proto.no_service",
            (
                "p.proto has no 'service Entrypoint'; KRE's entrypoint "
                "generator only reads that service"
            ),
            ("entrypoint", "proto"),
            "krt.yml",
            None,
            ("service Entrypoint { rpc MyRpc (Request) returns (Response) {}; }"),
            None,
        ),
    ]


def test_a_proto_without_a_package():
    found = contracts_found(manifest(), ProtoFacts("p.proto", package="", rpcs={}))
    assert found == [
        (
            "warning",
            "proto.package",
            ("p.proto has package '(none)'; KRE clients call entrypoint.Entrypoint/<Rpc>"),
            ("entrypoint", "proto"),
            "krt.yml",
            None,
            "package entrypoint;",
            None,
        ),
    ]


def test_a_proto_of_another_package():
    found = contracts_found(manifest(), ProtoFacts("p.proto", package="pkg", rpcs={}))
    assert found == [
        (
            "warning",
            "proto.package",
            ("p.proto has package 'pkg'; KRE clients call entrypoint.Entrypoint/<Rpc>"),
            ("entrypoint", "proto"),
            "krt.yml",
            None,
            "package entrypoint;",
            None,
        ),
    ]


def test_streaming_and_unused_rpcs():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Greet", ()), WorkflowSpec("x", "Stream", ())), P
    )
    assert found == [
        (
            "error",
            "proto.streaming",
            "rpc Stream streams; KRE's entrypoint serves unary rpcs only",
            ("entrypoint", "proto"),
            "public_input.proto",
            8,
            None,
            None,
        ),
        (
            "warning",
            "proto.rpc_unused",
            "rpc Unused has no workflow; calls to it fail",
            ("entrypoint", "proto"),
            "public_input.proto",
            9,
            None,
            None,
        ),
    ]


def test_a_workflow_serving_an_rpc_the_proto_lacks():
    found = contracts_found(
        manifest(
            WorkflowSpec("w", "Gret", ("a",)),
            WorkflowSpec("x", "Zzz", ("a",)),
            WorkflowSpec("y", "", ("a",)),
        ),
        P,
    )
    assert found == [
        (
            "warning",
            "proto.rpc_unused",
            "rpc Greet has no workflow; calls to it fail",
            ("entrypoint", "proto"),
            "public_input.proto",
            7,
            None,
            None,
        ),
        (
            "error",
            "proto.streaming",
            "rpc Stream streams; KRE's entrypoint serves unary rpcs only",
            ("entrypoint", "proto"),
            "public_input.proto",
            8,
            None,
            None,
        ),
        (
            "warning",
            "proto.rpc_unused",
            "rpc Unused has no workflow; calls to it fail",
            ("entrypoint", "proto"),
            "public_input.proto",
            9,
            None,
            None,
        ),
        (
            "error",
            "workflow.unknown_rpc",
            (
                "workflow 'w' serves rpc 'Gret', which service Entrypoint in "
                "public_input.proto does not define"
            ),
            ("workflows", 0, "entrypoint"),
            "krt.yml",
            None,
            "did you mean 'Greet'?",
            None,
        ),
        (
            "error",
            "workflow.unknown_rpc",
            (
                "workflow 'x' serves rpc 'Zzz', which service Entrypoint in "
                "public_input.proto does not define"
            ),
            ("workflows", 1, "entrypoint"),
            "krt.yml",
            None,
            "rpcs in public_input.proto: Greet, Stream, Unused",
            None,
        ),
    ]


def test_an_rpc_of_a_proto_without_any():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Zzz", ("a",))),
        ProtoFacts("p.proto", package="entrypoint", rpcs={}),
    )
    assert found == [
        (
            "error",
            "workflow.unknown_rpc",
            ("workflow 'w' serves rpc 'Zzz', which service Entrypoint in p.proto does not define"),
            ("workflows", 0, "entrypoint"),
            "krt.yml",
            None,
            "rpcs in p.proto: none",
            None,
        ),
    ]


def test_untyped_nodes_and_unknown_types():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Greet", ("a", "b", "c"))),
        contracts={
            "a": NodeContract("entrypoint.Request", None),
            "b": NodeContract(None, None),
            "c": NodeContract(None, "entrypoint.Respons"),
        },
    )
    assert found == [
        *PROTO_FINDINGS,
        (
            "warning",
            "chain.untyped",
            (
                "node 'a' has no type hint for its return; krtlab cannot "
                "check that the messages chain"
            ),
            ("workflows", 0, "sequential", 0),
            "krt.yml",
            None,
            "annotate it, e.g. def f(ctx, req: pb.Request) -> pb.Response",
            None,
        ),
        (
            "warning",
            "chain.untyped",
            (
                "node 'b' has no type hint for its request and return; krtlab "
                "cannot check that the messages chain"
            ),
            ("workflows", 0, "sequential", 1),
            "krt.yml",
            None,
            "annotate it, e.g. def f(ctx, req: pb.Request) -> pb.Response",
            None,
        ),
        (
            "warning",
            "chain.untyped",
            (
                "node 'c' has no type hint for its request; krtlab cannot "
                "check that the messages chain"
            ),
            ("workflows", 0, "sequential", 2),
            "krt.yml",
            None,
            "annotate it, e.g. def f(ctx, req: pb.Request) -> pb.Response",
            None,
        ),
        (
            "error",
            "chain.unknown_type",
            ("node 'c' uses message 'entrypoint.Respons', which no proto of the version defines"),
            ("workflows", 0, "sequential", 2),
            "krt.yml",
            None,
            ("did you mean 'entrypoint.Response', 'entrypoint.Request' or 'entrypoint.Middle'?"),
            None,
        ),
        (
            "error",
            "chain.output_mismatch",
            (
                "last node 'c' returns entrypoint.Respons but rpc Greet "
                "returns entrypoint.Response; KRE's entrypoint unpacks it "
                "into the wrong type and answers an empty response"
            ),
            ("workflows", 0, "sequential", 2),
            "krt.yml",
            None,
            "make 'c' return entrypoint.Response",
            None,
        ),
    ]


#: 'a' and 'b' of the chains below take what does not come before them
A_AND_B_MISMATCH = [
    (
        "error",
        "chain.input_mismatch",
        (
            "node 'a' takes entrypoint.Middle but rpc Greet receives "
            "entrypoint.Request; Unpack fails in 'a' and every Greet call "
            "errors"
        ),
        ("workflows", 0, "sequential", 0),
        "krt.yml",
        None,
        ("make 'a' take entrypoint.Request, or change what comes before it"),
        None,
    ),
    (
        "error",
        "chain.input_mismatch",
        (
            "node 'b' takes entrypoint.Request but node 'a' returns "
            "entrypoint.Middle; Unpack fails in 'b' and every Greet call "
            "errors"
        ),
        ("workflows", 0, "sequential", 1),
        "krt.yml",
        None,
        ("make 'b' take entrypoint.Middle, or change what comes before it"),
        None,
    ),
]


def test_a_chain_stops_at_an_unknown_node():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Greet", ("a", "b", "c", "zz"))),
        contracts={
            "a": NodeContract("entrypoint.Middle", "entrypoint.Middle", "declared"),
            "b": NodeContract("entrypoint.Request", "entrypoint.Middle", "declared"),
            "c": NodeContract("entrypoint.Middle", "entrypoint.Middle", "declared"),
        },
    )
    assert found == [
        *PROTO_FINDINGS,
        *A_AND_B_MISMATCH,
    ]


def test_each_input_is_what_comes_before_it_and_the_last_output_the_rpcs():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Greet", ("a", "b", "c"))),
        contracts={
            "a": NodeContract("entrypoint.Middle", "entrypoint.Middle", "declared"),
            "b": NodeContract("entrypoint.Request", "entrypoint.Middle", "declared"),
            "c": NodeContract("entrypoint.Middle", "entrypoint.Middle", "declared"),
        },
    )
    assert found == [
        *PROTO_FINDINGS,
        *A_AND_B_MISMATCH,
        (
            "error",
            "chain.output_mismatch",
            (
                "last node 'c' returns entrypoint.Middle but rpc Greet "
                "returns entrypoint.Response; KRE's entrypoint unpacks it "
                "into the wrong type and answers an empty response"
            ),
            ("workflows", 0, "sequential", 2),
            "krt.yml",
            None,
            "make 'c' return entrypoint.Response",
            None,
        ),
    ]


def test_after_a_node_of_unknown_output_nothing_is_expected():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Greet", ("a", "b"))),
        contracts={
            "a": NodeContract("entrypoint.Request", None, "declared"),
            "b": NodeContract("entrypoint.Middle", "entrypoint.Response", "declared"),
        },
    )
    assert found == [
        *PROTO_FINDINGS,
    ]


def test_a_chain_that_fits():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Greet", ("a", "b"))),
        contracts={
            "a": NodeContract("entrypoint.Request", "entrypoint.Middle", "declared"),
            "b": NodeContract("entrypoint.Middle", "entrypoint.Response", "declared"),
        },
    )
    assert found == [
        *PROTO_FINDINGS,
    ]


def test_types_read_from_the_source_only_warn():
    found = contracts_found(manifest(WorkflowSpec("w", "Greet", ("a",))), sources={SRC: MIDDLE})
    assert found == [
        *PROTO_FINDINGS,
        (
            "warning",
            "chain.input_mismatch",
            (
                "node 'a' takes entrypoint.Middle (read from its source) but "
                "rpc Greet receives entrypoint.Request; Unpack fails in 'a' "
                "and every Greet call errors"
            ),
            ("workflows", 0, "sequential", 0),
            "krt.yml",
            None,
            ("make 'a' take entrypoint.Request, or change what comes before it"),
            None,
        ),
        (
            "warning",
            "chain.output_mismatch",
            (
                "last node 'a' returns entrypoint.Middle but rpc Greet "
                "returns entrypoint.Response; KRE's entrypoint unpacks it "
                "into the wrong type and answers an empty response"
            ),
            ("workflows", 0, "sequential", 0),
            "krt.yml",
            None,
            "make 'a' return entrypoint.Response",
            None,
        ),
    ]


def test_inferred_and_hinted_types_in_one_chain():
    found = contracts_found(
        manifest(WorkflowSpec("w", "Greet", ("a", "b"))),
        sources={SRC: MIDDLE},
        contracts={"b": NodeContract("entrypoint.Response", None)},
    )
    assert found == [
        *PROTO_FINDINGS,
        (
            "warning",
            "chain.input_mismatch",
            (
                "node 'a' takes entrypoint.Middle (read from its source) but "
                "rpc Greet receives entrypoint.Request; Unpack fails in 'a' "
                "and every Greet call errors"
            ),
            ("workflows", 0, "sequential", 0),
            "krt.yml",
            None,
            ("make 'a' take entrypoint.Request, or change what comes before it"),
            None,
        ),
        (
            "warning",
            "chain.untyped",
            (
                "node 'b' has no type hint for its return; krtlab cannot "
                "check that the messages chain"
            ),
            ("workflows", 0, "sequential", 1),
            "krt.yml",
            None,
            "annotate it, e.g. def f(ctx, req: pb.Request) -> pb.Response",
            None,
        ),
        (
            "error",
            "chain.input_mismatch",
            (
                "node 'b' takes entrypoint.Response but node 'a' returns "
                "entrypoint.Middle; Unpack fails in 'b' and every Greet call "
                "errors"
            ),
            ("workflows", 0, "sequential", 1),
            "krt.yml",
            None,
            ("make 'b' take entrypoint.Middle, or change what comes before it"),
            None,
        ),
    ]


def test_resolve_contract_prefers_what_is_declared_then_reads_the_source():
    declared = NodeContract("entrypoint.Request", None, "declared")
    assert resolve_contract("a", SRC, P, {}, {"a": declared}) is declared
    sources = {SRC: MIDDLE}
    assert resolve_contract("a", "./src/a/../a/main.py", P, sources, {}) == NodeContract(
        "entrypoint.Middle", "entrypoint.Middle", "inferred", "./src/a/../a/main.py", 5
    )
    assert resolve_contract("a", "", P, sources, {}) is None
    assert resolve_contract("a", "src/x.py", P, sources, {}) is None
    assert resolve_contract("a", SRC, P, {SRC: NO_HANDLER}, {}) is None
    other = (
        "import other_pb2 as o\nasync def handler(ctx, data):\n"
        "    data.Unpack(o.X())\n    return o.Y()\n"
    )
    assert resolve_contract("a", SRC, P, {SRC: read_python_source(other)}, {}) is None
    only_in = (
        "import public_input_pb2 as pb\nasync def handler(ctx, data):\n"
        "    data.Unpack(pb.Request())\n"
    )
    assert resolve_contract("a", SRC, P, {SRC: read_python_source(only_in)}, {}) == NodeContract(
        "entrypoint.Request", None, "inferred", SRC, None
    )


def test_the_tag_of_an_odd_image_reference_is_read_as_krtlab_splits_it():
    from krtlab.spec.contracts import _no_handler_quote

    must = "module '/krt-files/m.py' must implement a function 'handler(ctx, data)'"
    old, new = f"kre-py 1.22-2.0: handler {must}", f"kre-py 2.1: Handler {must}"
    assert _no_handler_quote("kre-py:2.1.0@sha256:a@b", "m.py") == new  # the first '@' ends it
    assert _no_handler_quote("a/b:c/kre-py:2.1.0", "m.py") == new  # the last '/' starts it
    assert _no_handler_quote("konstellation/kre-py:x:2.1.0", "m.py") == old  # its first ':'
    assert _no_handler_quote("konstellation/kre-py:2.0.9", "m.py") == old
    assert _no_handler_quote("konstellation/kre-py:2.1", "m.py") == new
    assert _no_handler_quote("konstellation/kre-py:3", "m.py") == new
    assert _no_handler_quote("konstellation/kre-py", "m.py") == old
