"""krtlab's lean NATS client (``NatsConnection``) vs. nats-py, on the served runtime's NATS work.

One nats-server (krtlab's ``NatsServer``) serves both clients; both run on a plain
``asyncio.run`` loop (no uvloop), in this process for the measuring side and in a responder
process of their own for the answering side, as the entrypoint and a worker are. Measured for
each client, in turns (the order swaps every round), medians of ``--repeat`` rounds:

* request/reply of a ~200-byte payload (a small KreNatsMessage): p50/p99 latency and requester
  CPU time over ``-n`` sequential requests, and requests/s with 16 concurrent requesters. The
  responder answers like a worker: one message at a time, publish the reply, then flush. krtlab
  has no ``request()``: the bench does what its entrypoint does (one wildcard inbox
  subscription, a future per request, publish with a reply subject); nats-py uses
  ``nc.request()``. The sequential p50 is also taken against the other client's responder, to
  show which side a difference comes from.
* publishing ~1 KB messages (no subscriber on the subject): ``--pub`` publishes then one flush,
  and a worker's pattern, publish + flush per message.
* import time: ``python -c "import nats"`` and ``python -c "import krtlab.runtime.natsserver"``,
  over ``python -c pass``, run alternately.

Prints each client's medians and the ratio krtlab/nats-py per metric (lower is better for
latency, CPU and import time; higher for throughput). Reports only: it sets no target.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CLIENTS = ("krtlab", "nats-py")
REQUEST_SIZE = 200
PUBLISH_SIZE = 1024
CONCURRENCY = 16
IMPORT_RUNS = 15
TIMEOUT = 10.0

Request = Callable[[str, bytes], Awaitable[Any]]


# -- connecting, one adapter per client (the hot loops below call each client's own API) ----------


async def _connect(client: str, url: str, name: str) -> Any:
    if client == "krtlab":
        from krtlab.runtime.natsserver import NatsConnection

        return await NatsConnection.connect(url, name=name)
    import nats

    return await nats.connect(f"nats://{url}", name=name)


async def _close(client: str, nc: Any) -> None:
    if client == "krtlab":
        nc.close()
    else:
        await nc.close()


class KrtlabRequester:
    """Request/reply over ``NatsConnection`` as krtlab's entrypoint does it
    (``krtlab.runtime.entrypoint``): one ``_INBOX.<id>.*`` subscription, a future per token."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.inbox = f"_INBOX.{secrets.token_hex(11)}."
        self.pending: dict[str, asyncio.Future[bytes]] = {}
        self.seq = 0
        nc.subscribe(self.inbox + "*", self._on_reply)

    def _on_reply(self, subject: str, reply: str, data: bytes, status: str) -> None:
        fut = self.pending.get(subject[len(self.inbox) :])
        if fut is None or fut.done():
            return
        if status == "503":
            fut.set_exception(RuntimeError("no responders"))
        else:
            fut.set_result(data)

    async def request(self, subject: str, payload: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        self.seq += 1
        token = str(self.seq)
        fut: asyncio.Future[bytes] = loop.create_future()
        self.pending[token] = fut
        timer = loop.call_later(TIMEOUT, _expire, fut)
        try:
            self.nc.publish(subject, payload, reply=self.inbox + token)
            return await fut
        finally:
            timer.cancel()
            del self.pending[token]


def _expire(fut: asyncio.Future[bytes]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError("no reply"))


# -- the responder: a process of its own, answering like a worker ---------------------------------


async def _respond(client: str, url: str, subject: str) -> None:
    """Answer each request on ``subject`` (queue group, as a worker) with its own payload:
    one message at a time, publish the reply, then flush. Ends when stdin closes."""
    nc = await _connect(client, url, f"responder-{client}")
    queue = f"queue_{subject}"
    if client == "krtlab":
        backlog: deque[tuple[str, bytes]] = deque()
        task: list[asyncio.Task[None] | None] = [None]

        async def drain() -> None:  # krtlab.runtime.worker's order: one at a time
            try:
                while backlog:
                    reply, data = backlog.popleft()
                    nc.publish(reply, data)
                    await nc.flush(TIMEOUT)
            finally:
                task[0] = None

        def received(subject: str, reply: str, data: bytes, status: str) -> None:
            backlog.append((reply, data))
            if task[0] is None:
                task[0] = asyncio.get_running_loop().create_task(drain())

        nc.subscribe(subject, received, queue=queue)
        await nc.flush(TIMEOUT)
    else:

        async def answer(msg: Any) -> None:  # nats-py runs a subscription's callbacks in turn
            await nc.publish(msg.reply, msg.data)
            await nc.flush(TIMEOUT)

        await nc.subscribe(subject, queue=queue, cb=answer)
        await nc.flush(TIMEOUT)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await _close(client, nc)


def _responder_process(client: str, url: str, subject: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--responder", client, url, subject],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"the {client} responder did not start")
    return proc


# -- the measurements --------------------------------------------------------------------------


async def _sequential(request: Request, subject: str, payload: bytes, n: int) -> dict[str, float]:
    for _ in range(50):
        await request(subject, payload)
    latencies = []
    cpu = time.process_time()
    for _ in range(n):
        t = time.perf_counter()
        await request(subject, payload)
        latencies.append(time.perf_counter() - t)
    cpu = time.process_time() - cpu
    latencies.sort()
    return {
        "p50_us": statistics.median(latencies) * 1e6,
        "p99_us": latencies[int(len(latencies) * 0.99) - 1] * 1e6,
        "cpu_us": cpu / n * 1e6,
    }


async def _concurrent(request: Request, subject: str, payload: bytes, n: int) -> float:
    await asyncio.gather(*(request(subject, payload) for _ in range(CONCURRENCY)))
    left = [n]

    async def requester() -> None:
        while left[0] > 0:
            left[0] -= 1
            await request(subject, payload)

    t0 = time.perf_counter()
    await asyncio.gather(*(requester() for _ in range(CONCURRENCY)))
    return n / (time.perf_counter() - t0)


async def _publish_bulk(client: str, nc: Any, subject: str, payload: bytes, n: int) -> float:
    t0 = time.perf_counter()
    if client == "krtlab":
        for _ in range(n):
            nc.publish(subject, payload)
    else:
        for _ in range(n):
            await nc.publish(subject, payload)
    await nc.flush(TIMEOUT)
    return n / (time.perf_counter() - t0)


async def _publish_flush(client: str, nc: Any, subject: str, payload: bytes, n: int) -> float:
    t0 = time.perf_counter()
    if client == "krtlab":
        for _ in range(n):
            nc.publish(subject, payload)
            await nc.flush(TIMEOUT)
    else:
        for _ in range(n):
            await nc.publish(subject, payload)
            await nc.flush(TIMEOUT)
    return n / (time.perf_counter() - t0)


async def _round(client: str, url: str, args: argparse.Namespace, warm: bool) -> dict[str, float]:
    """Every metric once for ``client`` (a fresh connection; a short warm-up first)."""
    nc = await _connect(client, url, f"bench-{client}")
    subject = f"bench.req.{client}"
    payload = secrets.token_bytes(REQUEST_SIZE)
    message = secrets.token_bytes(PUBLISH_SIZE)
    pub_subject = f"bench.pub.{client}"
    try:
        if client == "krtlab":
            request: Request = KrtlabRequester(nc).request
        else:
            request = functools.partial(nc.request, timeout=TIMEOUT)
        answer = await request(subject, payload)
        assert (answer if client == "krtlab" else answer.data) == payload, "wrong reply"
        if warm:  # the first round of a client: its code paths, the server's and responder's
            await _sequential(request, subject, payload, 200)
            await _concurrent(request, subject, payload, 500)
            await _publish_bulk(client, nc, pub_subject, message, 2000)
            await _publish_flush(client, nc, pub_subject, message, 200)
        result = await _sequential(request, subject, payload, args.n)
        other = f"bench.req.{CLIENTS[1 - CLIENTS.index(client)]}"
        result["p50_cross"] = (await _sequential(request, other, payload, args.n))["p50_us"]
        result["rps16"] = await _concurrent(request, subject, payload, args.n16)
        result["pub_bulk"] = await _publish_bulk(client, nc, pub_subject, message, args.pub)
        result["pub_flush"] = await _publish_flush(client, nc, pub_subject, message, args.pub_flush)
        return result
    finally:
        await _close(client, nc)


def _import_times(runs: int) -> dict[str, float]:
    """Median wall time (ms) of a ``python -c`` per statement, run alternately."""
    codes = {
        "pass": "pass",
        "krtlab": "import krtlab.runtime.natsserver",
        "nats-py": "import nats",
    }
    times: dict[str, list[float]] = {k: [] for k in codes}
    for _ in range(runs):
        for key, code in codes.items():
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times[key].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def _loaded(module: str) -> str:
    """How many modules ``import module`` loads over a bare interpreter, and the big ones."""
    code = (
        f"import sys; before = set(sys.modules); import {module}; new = set(sys.modules) - before; "
        "print(len(new), sorted(m for m in ('aiohttp', 'nats.js', 'krtlab') if m in new))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


# -- output ----------------------------------------------------------------------------------------

METRICS = (  # key, label, unit, format, higher is better
    ("p50_us", "request/reply p50, sequential", "µs", "{:10.1f}", False),
    ("p99_us", "request/reply p99, sequential", "µs", "{:10.1f}", False),
    ("cpu_us", "requester CPU per request", "µs", "{:10.1f}", False),
    ("rps16", f"request/reply x{CONCURRENCY} requesters", "req/s", "{:10,.0f}", True),
    ("pub_bulk", "publish 1 KB, 1 flush at end", "msg/s", "{:10,.0f}", True),
    ("pub_flush", "publish 1 KB + flush each", "msg/s", "{:10,.0f}", True),
)


def _report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    k, p = results["krtlab"], results["nats-py"]
    print(
        f"NATS clients on one nats-server, median of {args.repeat} rounds "
        f"({args.n} sequential / {args.n16} x{CONCURRENCY} requests of {REQUEST_SIZE} B, "
        f"{args.pub} and {args.pub_flush} publishes of {PUBLISH_SIZE} B)"
    )
    print(f"  {'':<34} {'krtlab':>10} {'nats-py':>10}        krtlab/nats-py")
    wins = 0
    for key, label, unit, fmt, higher in METRICS:
        ratio = k[key] / p[key]
        better = ratio > 1 if higher else ratio < 1
        wins += better
        print(
            f"  {label:<34} {fmt.format(k[key])} {fmt.format(p[key])} {unit:<6}"
            f"{ratio:6.2f}x  ({'krtlab' if better else 'nats-py'} better)"
        )
    print(f"  krtlab better on {wins} of {len(METRICS)} metrics")
    print("  request/reply p50 by side (µs; the rows above have the same client at both ends)")
    corner = "requester / responder"
    print(f"  {corner:<34} {'krtlab':>10} {'nats-py':>10}")
    print(f"  {'krtlab':<34} {k['p50_us']:10.1f} {k['p50_cross']:10.1f}")
    print(f"  {'nats-py':<34} {p['p50_cross']:10.1f} {p['p50_us']:10.1f}")


# -- main ------------------------------------------------------------------------------------------


async def _bench(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CLIENTS}
    for i in range(args.repeat):
        order = CLIENTS if i % 2 == 0 else CLIENTS[::-1]
        for client in order:
            runs[client].append(await _round(client, url, args, warm=i == 0))
    return {
        c: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for c, rs in runs.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="sequential requests per round")
    parser.add_argument("--n16", type=int, default=5000, help="requests per round at x16")
    parser.add_argument("--pub", type=int, default=20000, help="publishes before one flush")
    parser.add_argument("--pub-flush", type=int, default=2000, help="publish + flush rounds")
    parser.add_argument("--repeat", type=int, default=5, help="rounds (medians kept)")
    parser.add_argument("--imports", type=int, default=IMPORT_RUNS, help="runs per import")
    parser.add_argument("--responder", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.responder:
        asyncio.run(_respond(*args.responder))
        return 0

    from krtlab.runtime.natsserver import NatsServer

    with tempfile.TemporaryDirectory(prefix="krtlab-bench-") as tmp:
        server = NatsServer(Path(tmp) / "nats-server.log")
        server.start()
        responders = []
        try:
            for client in CLIENTS:
                responders.append(_responder_process(client, server.url, f"bench.req.{client}"))
            results = asyncio.run(_bench(server.url, args))
        finally:
            for proc in responders:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(10)
            server.stop()
    _report(results, args)

    imports = _import_times(args.imports)
    base = imports["pass"]
    over = {c: imports[c] - base for c in CLIENTS}
    print(f"import, median of {args.imports} (python -c, alternately)")
    print(f"  python -c pass                           {base:7.1f} ms (baseline)")
    for client, stmt in (("krtlab", "krtlab.runtime.natsserver"), ("nats-py", "nats")):
        print(f"  import {stmt:<33} {imports[client]:7.1f} ms  +{over[client]:.1f} ms")
    print(f"  krtlab/nats-py, over the baseline        {over['krtlab'] / over['nats-py']:7.2f}x")
    for stmt in ("nats", "krtlab.runtime.natsserver"):
        print(f"  modules loaded by 'import {stmt}' (count, of which): {_loaded(stmt)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
