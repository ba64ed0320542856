"""Helpers for the served-runtime tests (no tests here): small projects on disk and the
price-estimator's answer computed independently of its nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import REPO

PRICE = REPO / "templates" / "price-estimator"
GREETER_PROTO = """syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint {
  rpc PyGreet (Request) returns (Response) {};
  rpc GoGreet (Request) returns (Response) {};
}
"""

# A greeter with faults on demand: "bad..." raises, "slow" sleeps 5 s ("nap..." 5 ms), "die"
# kills the worker, "huge" answers more than KRE can carry even gzipped (random base64).
FAULTY_MAIN = """import asyncio
import base64
import os

from public_input_pb2 import Request, Response


async def handler(ctx, data):
    req = Request()
    data.Unpack(req)
    if req.name.startswith("bad"):
        raise ValueError(f"no greeting for {req.name}")
    if req.name == "slow":
        await asyncio.sleep(5)
    if req.name.startswith("nap"):
        await asyncio.sleep(0.005)
    if req.name == "die":
        os._exit(3)
    if req.name == "wrong-type":
        return Request(name="not a Response")
    if req.name == "huge":
        return Response(greeting=base64.b64encode(os.urandom(1600 * 1024)).decode())
    return Response(greeting=f"Hello {req.name}!")
"""


def write_project(
    root: Path,
    *,
    version: str = "faulty-v1",
    proto: str = GREETER_PROTO,
    nodes: dict[str, tuple[str, str | bytes, str]],
    workflows: dict[str, tuple[str, list[str]]],
) -> Path:
    """A project folder: ``nodes`` is name -> (src, content, image), ``workflows`` is
    name -> (rpc, node names)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "public_input.proto").write_text(proto)
    lines = [
        f"version: {version}",
        "description: a test version",
        "entrypoint:",
        "  proto: public_input.proto",
        "  image: konstellation/kre-entrypoint:1.7.1",
        "nodes:",
    ]
    for name, (src, content, image) in nodes.items():
        path = root / src
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
            path.chmod(0o755)
        else:
            path.write_text(content)
        lines += [f"  - name: {name}", f"    image: {image}", f"    src: {src}"]
    lines.append("workflows:")
    for name, (rpc, seq) in workflows.items():
        lines += [f"  - name: {name}", f"    entrypoint: {rpc}", "    sequential:"]
        lines += [f"      - {n}" for n in seq]
    (root / "krt.yml").write_text("\n".join(lines) + "\n")
    return root


def expected_price(req: dict[str, Any], currency: str = "USD") -> float:
    """The price-estimator's answer from its coefficients, computed here, not by its nodes."""
    model = json.loads((PRICE / "models" / "coefficients.json").read_text())
    features = [
        1.0 if req.get("neighbourhood", "").lower() == "manhattan" else 0.0,
        1.0 if req.get("neighbourhood", "").lower() == "brooklyn" else 0.0,
        1.0 if req.get("room_type", "").lower() == "entire home/apt" else 0.0,
        float(req.get("accommodates", 0)),
        float(req.get("bedrooms", 0)),
        float(req.get("minimum_nights", 0)),
    ]
    price = model["intercept"] + sum(w * x for w, x in zip(model["weights"], features, strict=True))
    rates = {"USD": 1.0, "EUR": 0.92, "GBP": 0.79}
    return round(max(price, 0.0) * rates.get(currency, 1.0), 2)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in out:
                    out.add(kid)
                    todo.append(kid)
    return out


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
