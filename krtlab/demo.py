"""``make demo``: validate, build and inspect the example versions, then author one in Python.

Runs from a checkout (it uses ``templates/``) and writes under ``build/demo/``.
"""

from __future__ import annotations

import importlib.util
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
    spec = importlib.util.spec_from_file_location(
        "price_estimator", TEMPLATES / "price_estimator.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    v = module.v
    print(v.validate())
    folder = v.export(OUT / "price-estimator-authored", overwrite=True)
    path = v.build(OUT / "price-estimator-authored.krt", overwrite=True)
    print(f"exported {folder.relative_to(REPO)}, built {path.relative_to(REPO)}")
    main_py = folder / "src" / "model" / "main.py"
    print(f"\n--- {main_py.relative_to(REPO)} " + "-" * 40)
    print(main_py.read_text())
    _rule("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
