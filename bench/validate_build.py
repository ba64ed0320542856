"""Validate + build of a 100-node, 50-workflow authored version (target: under 1 s).

Also times the same work for the 1-node greeter in the same run, as a baseline, and prints the
ratio. Node functions are defined in a generated module so source capture reads real files.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0
NODES, WORKFLOWS = 100, 50

PROTO_HEAD = 'syntax = "proto3";\npackage entrypoint;\nmessage Request { string name = 1; }\n'
PROTO_HEAD += "message Response { string greeting = 1; }\n"


def _module_source(nodes: int, workflows: int) -> str:
    rpcs = "".join(f"  rpc Rpc{w} (Request) returns (Response) {{}};\n" for w in range(workflows))
    lines = [
        "import krtlab as krt",
        "",
        "v = krt.Version('bench-v1', description='bench')",
        f"pb = v.proto('''{PROTO_HEAD}service Entrypoint {{\n{rpcs}}}\n''')",
        "SUFFIX = '!'",
        "",
        "def shout(text):",
        "    return text.upper() + SUFFIX",
        "",
    ]
    for i in range(nodes):
        lines += [
            f"@v.node(name='node-{i}')",
            f"def node_{i}(ctx, req: pb.Request) -> pb.Request:",
            f"    return pb.Request(name=shout(req.name) + '{i}')",
            "",
        ]
    lines += [
        "@v.node(name='reply')",
        "def reply(req: pb.Request) -> pb.Response:",
        "    return pb.Response(greeting=req.name)",
        "",
    ]
    per = nodes // workflows
    for w in range(workflows):
        seq = ", ".join(f"'node-{w * per + k}'" for k in range(per))
        lines.append(f"v.workflow('wf-{w}', entrypoint='Rpc{w}', sequential=[{seq}, 'reply'])")
    return "\n".join(lines) + "\n"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.v


def _time(v, out: Path, runs: int = 5) -> float:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        report = v.validate()
        assert report.ok, str(report)
        v.build(out / f"b{i}.krt")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        big = root / "big.py"
        big.write_text(_module_source(NODES, WORKFLOWS))
        small = root / "small.py"
        small.write_text(_module_source(1, 1))
        v_big, v_small = _load(big, "bench_big"), _load(small, "bench_small")
        base = _time(v_small, root)
        t = _time(v_big, root)
    print(f"validate+build 1 node, 1 workflow      median {base * 1000:8.1f} ms (baseline)")
    print(
        f"validate+build {NODES} nodes, {WORKFLOWS} workflows median {t * 1000:8.1f} ms "
        f"ratio {t / base:6.1f}x"
    )
    ok = t < TARGET_S
    print(f"target < {TARGET_S:.0f} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
