"""Served runtime vs. a plain in-process grpcio server running the same handlers.

For the greeter (1 node) and the price-estimator's ``ny-room-price`` (3 nodes): requests/s and
p50/p99 latency, sequential and at concurrency 16, of

* the baseline: a grpc.aio server (same process, background loop, like the served entrypoint)
  whose method packs the request into ``Any`` and awaits each node's ``handler`` in turn;
* ``v.serve()``: nats-server, one worker process per node, the gRPC entrypoint.

The baseline server runs in a process of its own, as the served entrypoint does; both are called
by the same clients from this process (a blocking stub in sequence, grpc.aio for 16 at once),
in turns, and the medians of ``--repeat`` rounds are kept. Prints the ratios and checks the
targets: served 1-node p50 <= 2x the baseline, throughput at 16 >= 0.5x, ``serve()`` ready in
<= 1.5 s for the 4-node example.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"
TARGETS = {"p50": 2.0, "rps16": 0.5, "ready_s": 1.5}

GREETER = ("greeter", "PyGreet", {"name": "John"})
PRICE = (
    "price-estimator",
    "MakePrediction",
    {"neighbourhood": "Brooklyn", "room_type": "Private room", "accommodates": 2, "bedrooms": 1},
)


# -- the baseline: the same handlers behind a plain grpc.aio server -------------------------------


class Baseline:
    """A grpc.aio server on a background loop; each rpc runs its workflow's handlers in turn."""

    def __init__(self, version: Any, root: Path) -> None:
        import grpc
        from google.protobuf import any_pb2

        from krtlab.runtime.context import Context
        from krtlab.runtime.store import LocalStore

        project = version.project()
        for rel, data in project.files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        store = LocalStore(root / "store.sqlite")
        fileset = version._protos.fileset
        rpcs = fileset.entrypoint_rpcs("public_input.proto")
        nodes = {n.name: n for n in project.manifest.nodes}
        handlers: dict[str, Any] = {}
        for wf in project.manifest.workflows:
            chain = []
            for name in wf.sequential:
                module, ctx = _load_node(root, nodes[name].src, name, version.name, store, Context)
                chain.append((module.handler, ctx))
            in_url = "type.googleapis.com/" + rpcs[wf.entrypoint].input_type

            async def method(request: bytes, context: Any, chain: Any = chain, url: str = in_url):
                data = any_pb2.Any(type_url=url, value=request)
                result = None
                for handler, ctx in chain:
                    result = await handler(ctx, data)
                    data = any_pb2.Any()
                    data.Pack(result)
                return result.SerializeToString()

            handlers[wf.entrypoint] = grpc.unary_unary_rpc_method_handler(method)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def start() -> int:
            self.server = grpc.aio.server()
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler("entrypoint.Entrypoint", handlers),)
            )
            port = self.server.add_insecure_port("127.0.0.1:0")
            await self.server.start()
            return port

        self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result()
        self.address = f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)


def _load_node(root: Path, src: str, node: str, version: str, store: Any, context: Any) -> Any:
    path = root / src
    sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(f"node_{node.replace('-', '_')}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ctx = context(base_path=str(root), version=version, node_name=node, store=store)
    init = getattr(module, "init", None)
    if init is not None:
        result = init(ctx)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    return module, ctx


# -- the client ------------------------------------------------------------------------------------


def measure(address: str, rpc: str, request: Any, out_cls: Any, n: int, concurrency: int) -> dict:
    """Run ``n`` calls, ``concurrency`` at a time; return rps, p50 and p99 (ms).

    Sequential calls use a blocking stub; concurrent ones a grpc.aio channel on a loop of their
    own (grpc's blocking futures cost the client more CPU than the servers under test).
    """
    import grpc

    method = f"/entrypoint.Entrypoint/{rpc}"
    kwargs = {"request_serializer": type(request).SerializeToString}
    kwargs["response_deserializer"] = out_cls.FromString
    latencies: list[float] = []
    if concurrency == 1:
        with grpc.insecure_channel(address) as channel:
            stub = channel.unary_unary(method, **kwargs)
            for _ in range(50):  # warm up connections and code paths
                stub(request, timeout=30)
            t0 = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                stub(request, timeout=30)
                latencies.append(time.perf_counter() - t)
            wall = time.perf_counter() - t0
    else:

        async def run() -> float:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = channel.unary_unary(method, **kwargs)
                for _ in range(50):
                    await stub(request, timeout=30)
                left = [n]

                async def client() -> None:
                    while left[0] > 0:
                        left[0] -= 1
                        t = time.perf_counter()
                        await stub(request, timeout=30)
                        latencies.append(time.perf_counter() - t)

                t0 = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(concurrency)))
                return time.perf_counter() - t0

        wall = asyncio.run(run())
    latencies.sort()
    return {
        "rps": n / wall,
        "p50": statistics.median(latencies) * 1e3,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
    }


def _row(label: str, r: dict[str, float]) -> str:
    return (
        f"  {label:<26} {r['rps']:>9,.0f} req/s   p50 {r['p50']:6.2f} ms   p99 {r['p99']:6.2f} ms"
    )


def _baseline_process(folder: str) -> tuple[subprocess.Popen[str], str]:
    """The baseline server in a process of its own, as the served entrypoint is."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--baseline-server", folder],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _baseline_server(folder: str) -> int:
    import krtlab as krt

    with tempfile.TemporaryDirectory() as tmp:
        server = Baseline(krt.load(TEMPLATES / folder), Path(tmp))
        print(server.address, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        server.stop()
    return 0


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def bench_one(case: tuple[str, str, dict[str, Any]], n: int, repeat: int) -> dict[str, Any]:
    """Baseline and served, each measured ``repeat`` times in turn (medians are kept)."""
    import grpc

    import krtlab as krt
    from krtlab.runtime.serve import serve

    folder, rpc, fields = case
    version = krt.load(TEMPLATES / folder)
    registry = version._protos.registry
    rpcs = version._protos.fileset.entrypoint_rpcs("public_input.proto")
    request = registry.message_class(rpcs[rpc].input_type)(**fields)
    out_cls = registry.message_class(rpcs[rpc].output_type)
    runs: dict[str, list[dict[str, float]]] = {}
    proc, address = _baseline_process(folder)
    t0 = time.perf_counter()
    svc = serve(version, port=0, config={"OUTPUT_PRICE_CURRENCY": "USD"})  # as the baseline
    ready = time.perf_counter() - t0
    try:
        answers = {}
        for addr in (address, svc.address):
            with grpc.insecure_channel(addr) as channel:
                stub = channel.unary_unary(
                    f"/entrypoint.Entrypoint/{rpc}",
                    request_serializer=type(request).SerializeToString,
                    response_deserializer=out_cls.FromString,
                )
                answers[addr] = stub(request, timeout=30)
        assert answers[address] == answers[svc.address], "served and baseline answers differ"
        for _ in range(repeat):
            for name, addr in (("baseline", address), ("served", svc.address)):
                for conc in (1, 16):
                    result = measure(addr, rpc, request, out_cls, n, conc)
                    runs.setdefault(f"{name}-{conc}", []).append(result)
    finally:
        svc.stop()
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)
    results: dict[str, Any] = {key: _median(r) for key, r in runs.items()}
    results["ready_s"] = ready
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements (medians kept)")
    parser.add_argument("--baseline-server", metavar="TEMPLATE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("KRTLAB_DATA_DIR", tempfile.mkdtemp(prefix="krtlab-bench-"))
    if args.baseline_server:
        return _baseline_server(args.baseline_server)
    ok = True
    for case, title in ((GREETER, "greeter (1 node)"), (PRICE, "ny-room-price (3 nodes)")):
        r = bench_one(case, args.n, args.repeat)
        print(f"\n{title}: {args.n} requests per row, median of {args.repeat}")
        for key, label in (
            ("baseline-1", "baseline sequential"),
            ("served-1", "served sequential"),
            ("baseline-16", "baseline x16"),
            ("served-16", "served x16"),
        ):
            print(_row(label, r[key]))
        p50 = r["served-1"]["p50"] / r["baseline-1"]["p50"]
        p50_16 = r["served-16"]["p50"] / r["baseline-16"]["p50"]
        rps1 = r["served-1"]["rps"] / r["baseline-1"]["rps"]
        rps16 = r["served-16"]["rps"] / r["baseline-16"]["rps"]
        print(f"  served/baseline: p50 {p50:.2f}x sequential, {p50_16:.2f}x at 16;")
        print(f"                   throughput {rps1:.2f}x sequential, {rps16:.2f}x at 16")
        print(f"  serve() ready in {r['ready_s']:.2f} s")
        if case is GREETER:
            hit = p50 <= TARGETS["p50"] and rps16 >= TARGETS["rps16"]
            ok &= hit
            print(f"  target (1 node): p50 <= {TARGETS['p50']}x, x16 throughput >= "
                  f"{TARGETS['rps16']}x: {'OK' if hit else 'MISSED'}")  # fmt: skip
        else:
            hit = r["ready_s"] <= TARGETS["ready_s"]
            ok &= hit
            print(f"  target: 4-node example ready <= {TARGETS['ready_s']} s: "
                  f"{'OK' if hit else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
