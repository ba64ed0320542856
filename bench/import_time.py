"""How much ``import krtlab`` costs over a bare interpreter start, measured in the same run.

Target (DEVELOPERS.md): at most 50 ms over ``python -c pass`` (kfp takes 356 ms). Runs both
commands alternately so machine noise hits both alike, and reports medians.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 21
TARGET_MS = 50.0


def _time(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    base, krt = [], []
    for _ in range(RUNS):
        base.append(_time("pass"))
        krt.append(_time("import krtlab"))
    b, k = statistics.median(base), statistics.median(krt)
    over = k - b
    print(f"python -c pass          median {b:7.1f} ms (baseline)")
    print(f"python -c import krtlab median {k:7.1f} ms  ratio {k / b:5.2f}x  +{over:.1f} ms")
    heavy = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, krtlab; print(sorted(m for m in "
            "('grpc','google.protobuf','yaml','IPython','kubernetes','graphviz','ipywidgets',"
            "'nbformat') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"heavy modules imported by 'import krtlab': {heavy}")
    ok = over <= TARGET_MS
    print(f"target +{TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
