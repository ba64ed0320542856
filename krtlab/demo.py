"""``make demo``: validate, build and inspect the example versions, author one in Python, serve
it like KRE, then deploy it to a local KAI Server stand-in and query it there.

Runs from a checkout (it uses ``templates/``) and writes under ``build/demo/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "templates"
OUT = REPO / "build" / "demo"


def _rule(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))


def main() -> int:
    import krtlab as krt
    from krtlab.bundle.inspect import format_summary

    if not TEMPLATES.is_dir():
        print(f"templates not found at {TEMPLATES}: run the demo from a krtlab checkout")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ("greeter", "price-estimator"):
        _rule(f"{name}: hand-written project")
        v = krt.load(TEMPLATES / name)
        print(v.validate())
        path = v.build(OUT / f"{name}.krt", overwrite=True)
        print(f"built {path.relative_to(REPO)} ({path.stat().st_size:,} bytes)")
        print(format_summary(krt.load(path).project().summary()))

    _rule("price-estimator: authored from Python functions")
    v = krt.load(TEMPLATES / "price_estimator.py")  # runs the script, takes its Version
    print(v.validate())
    folder = v.export(OUT / "price-estimator-authored", overwrite=True)
    path = v.build(OUT / "price-estimator-authored.krt", overwrite=True)
    print(f"exported {folder.relative_to(REPO)}, built {path.relative_to(REPO)}")
    main_py = folder / "src" / "model" / "main.py"
    print(f"\n--- {main_py.relative_to(REPO)} " + "-" * 40)
    print(main_py.read_text())
    _serve_demo()
    _deploy_demo(v)
    _rule("done")
    return 0


def _serve_demo() -> None:
    """Serve the price-estimator like KRE, ask both workflows, stop everything."""
    import os

    from krtlab.runtime.client import call
    from krtlab.runtime.serve import serve

    _rule("price-estimator: served like KRE (nats-server, a worker per node, gRPC)")
    os.environ.setdefault("KRTLAB_DATA_DIR", str(OUT / "data"))
    requests = [
        {"neighbourhood": "Manhattan", "room_type": "Entire home/apt", "accommodates": 4,
         "bedrooms": 2, "minimum_nights": 3},
        {"neighbourhood": "Brooklyn", "room_type": "Private room", "accommodates": 2,
         "bedrooms": 1, "minimum_nights": 1},
    ]  # fmt: skip
    config = {"OUTPUT_PRICE_CURRENCY": "EUR"}
    with serve(TEMPLATES / "price-estimator", port=0, config=config) as svc:
        print(f"serving on {svc.address} (ready in {svc.ready_seconds:.2f} s), protos at "
              f"{svc.web_url}")  # fmt: skip
        for w in svc.status()["workers"]:
            print(f"  {w['workflow']:<14} {w['node']:<12} id {w['node_id']}  pid {w['pid']:<7} "
                  f"{w['input']} -> {w['output'] or '(reply)'}")  # fmt: skip
        for request in requests:
            answer = svc.call("MakePrediction", request)
            print(f"MakePrediction {request}\n  -> price {answer.price} {answer.currency}")
        metric = {"predicted_price": 251.6, "real_price": 240.0, "date": "2026-11-25"}
        answer = svc.call("SavePredictionMetric", metric)
        print(f"SavePredictionMetric {metric}\n  -> saved={answer.saved} ({answer.message!r})")
        json_answer = call(svc.address, "MakePrediction", '{"neighbourhood": "Queens"}')
        print(f"krtlab call {svc.address} MakePrediction '{{\"neighbourhood\": \"Queens\"}}'"
              f"\n  -> {json_answer}  (types from the server's reflection)")  # fmt: skip
    print(f"stopped: {svc!r}, every process gone")


def _deploy_demo(v: object) -> None:
    """Deploy the authored price-estimator to LocalKai (the admin API stand-in), query it."""
    from krtlab.deploy import Cluster, KaiServer, LocalKai

    _rule("price-estimator: deployed to a KAI Server (LocalKai stand-in) and queried")
    request = {"neighbourhood": "Manhattan", "room_type": "Entire home/apt", "accommodates": 4,
               "bedrooms": 2, "minimum_nights": 3}  # fmt: skip
    with LocalKai() as kai:
        server = KaiServer(kai.url, api_token=kai.api_token)
        d = v.deploy(server, config={"OUTPUT_PRICE_CURRENCY": "EUR"}, publish=True,  # type: ignore[attr-defined]
                     cluster=kai.kubeconfig, progress=lambda line: print(f"  {line}"))  # fmt: skip
        print(repr(d))
        print(f"MakePrediction {request}\n  -> {d.call('MakePrediction', request)}")
        print(d.compare("MakePrediction", request))
        for svc in Cluster(kai.kubeconfig).services("type=entrypoint"):
            meta = svc["metadata"]
            print(f"Service {meta['name']} (version-name={meta['labels']['version-name']})")
        try:
            d.stop()
        except Exception as exc:  # KRE's rule, shown on purpose
            print(f"stop refused: {exc}")
        d.unpublish()
        d.stop()
        print(", ".join(str(i) for i in server.versions()))


if __name__ == "__main__":
    sys.exit(main())
