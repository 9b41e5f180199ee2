"""Compile times of the spec compiler (a plain script: prints numbers against the goals).

- cold compile of schemas/ (empty parse cache, pyhocon on every file), goal < 5 s
- warm compile (unchanged tree, parse cache hit), goal < 1 s

The artefacts are built in memory and thrown away: nothing in the tree is written. Validation
throughput (generated validators vs ``jsonschema``) is in ``bench/validate.py``.
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH] + [_BENCH]

import tempfile  # noqa: E402
import time  # noqa: E402

from benchlib import ROOT, verdict  # noqa: E402


def compile_times() -> tuple[float, float]:
    from specgate_codegen.compiler import compile_tree

    with tempfile.TemporaryDirectory() as cache:
        os.environ["SPECGATE_CACHE_DIR"] = cache
        start = time.perf_counter()
        compile_tree(ROOT / "schemas", ROOT)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        compile_tree(ROOT / "schemas", ROOT)
        warm = time.perf_counter() - start
    return cold, warm


def main() -> int:
    cold, warm = compile_times()
    print(f"compile schemas/ cold: {cold:.2f} s (goal < 5 s, {verdict(cold < 5)})   "
          f"warm: {warm:.2f} s (goal < 1 s, {verdict(warm < 1)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
