"""Timing of ``specgate diff`` on schemas/ (a plain script: prints numbers and ratios).

schemas/ is copied to a temporary folder and one change is made there (an optional request property added
to tasks.get_by_id 2.1, an existing released version), then, in-process through ``specgate.cli.main``:

- tree vs tree, cold: ``specgate diff schemas/ <copy> --format json`` with SPECGATE_CACHE_DIR pointed at an
  empty folder (pyhocon parses every file; the copy's unchanged files then hit what the base side cached)
- tree vs tree, warm: the same command again (both sides' parses cached)
- one change, base parsed before: the situation in CI and on a developer machine, where ``compile``
  already parsed schemas/; only the changed file is parsed again
- lock vs tree: ``specgate diff specgate.lock.json <copy>``, with an empty cache and again warm
- for reference, the whole CLI as a fresh process (imports included), cold cache

Goal: each diff run < 3 s. The exit status is non-zero only when a diff run could not compare (exit >= 2).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = 3.0
ANCHOR = "\nget_by_id {"  # tasks.conf: the action whose "2.1" request gains a property
ADDED = "\n                bench_flag { type: boolean, description: \"Added by bench/diff.py\" }"


def changed_copy(tmp: Path) -> Path:
    """schemas/ copied, with one optional request property added to tasks.get_by_id 2.1."""
    copy = tmp / "schemas"
    shutil.copytree(ROOT / "schemas", copy)
    tasks = copy / "tasks.conf"
    text = tasks.read_text()
    at = text.index("properties {", text.index(ANCHOR)) + len("properties {")
    tasks.write_text(text[:at] + ADDED + text[at:])
    return copy


def run(base: Path, head: Path) -> tuple[float, int, dict]:
    from specgate.cli import main

    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(["diff", str(base), str(head), "--format", "json"])
    elapsed = time.perf_counter() - start
    try:
        report = json.loads(out.getvalue())
    except ValueError:
        report = {}
    return elapsed, code, report


def show(label: str, elapsed: float, code: int, report: dict) -> None:
    findings = report.get("findings", [])
    rules = ", ".join(sorted({f"{f['rule']} ({f['level']})" for f in findings})[:4])
    more = "" if len({f["rule"] for f in findings}) <= 4 else ", ..."
    print(
        f"{label:<34} {elapsed:6.2f} s  {elapsed / GOAL:5.2f}x of the {GOAL:.0f} s goal   "
        f"exit {code}, {len(findings)} finding(s){': ' + rules + more if findings else ''}"
    )


def subprocess_cold(base: Path, head: Path, cache: str) -> float:
    exe = Path(sys.executable).with_name("specgate")
    cmd = [str(exe), "diff", str(base), str(head), "--format", "json"]
    env = {**os.environ, "SPECGATE_CACHE_DIR": cache}
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    codes = []
    with tempfile.TemporaryDirectory() as tmp:
        head = changed_copy(Path(tmp))
        schemas, lock = ROOT / "schemas", ROOT / "specgate.lock.json"
        previous = os.environ.get("SPECGATE_CACHE_DIR")
        try:
            with tempfile.TemporaryDirectory() as cache:
                os.environ["SPECGATE_CACHE_DIR"] = cache
                for label in ("tree vs tree, cold cache", "tree vs tree, warm cache"):
                    elapsed, code, report = run(schemas, head)
                    show(label, elapsed, code, report)
                    codes.append(code)
            with tempfile.TemporaryDirectory() as cache:
                os.environ["SPECGATE_CACHE_DIR"] = cache
                run(schemas, schemas)  # what CI has done by then: `compile --check` parsed schemas/
                elapsed, code, report = run(schemas, head)
                show("one change, base parsed before", elapsed, code, report)
                codes.append(code)
            with tempfile.TemporaryDirectory() as cache:
                os.environ["SPECGATE_CACHE_DIR"] = cache
                for label in ("lock vs tree, cold cache", "lock vs tree, warm cache"):
                    elapsed, code, report = run(lock, head)
                    show(label, elapsed, code, report)
                    codes.append(code)
            with tempfile.TemporaryDirectory() as cache:
                elapsed = subprocess_cold(schemas, head, cache)
                label = "whole CLI process, cold cache"
                print(f"{label:<34} {elapsed:6.2f} s  {elapsed / GOAL:5.2f}x of the {GOAL:.0f} s goal")
        finally:
            if previous is None:
                os.environ.pop("SPECGATE_CACHE_DIR", None)
            else:
                os.environ["SPECGATE_CACHE_DIR"] = previous
    return 0 if all(c in (0, 1) for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
