"""The workers of ``serve --workers N`` start together on a fresh data directory and each reads or
generates the token signing secret; they must all end up with the same one, or a token issued by
one worker is refused by the others."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from specgate.runtime.app import _secret_file


def _read(path: str, start, out) -> None:
    start.wait()  # every process calls at the same moment
    try:
        out.put(_secret_file(Path(path)))
    except Exception as e:  # reported, so the test says what broke
        out.put(f"error: {type(e).__name__}: {e}")


def test_workers_starting_together_agree_on_one_generated_secret(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for attempt in range(5):
        path = tmp_path / f"attempt-{attempt}" / "auth_secret"
        start, out = ctx.Barrier(8), ctx.Queue()
        procs = [ctx.Process(target=_read, args=(str(path), start, out)) for _ in range(8)]
        for p in procs:
            p.start()
        seen = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        assert len(set(seen)) == 1 and len(seen[0]) == 64, seen
        assert path.read_text() == seen[0]
        assert sorted(f.name for f in path.parent.iterdir()) == ["auth_secret"]  # nothing left aside
