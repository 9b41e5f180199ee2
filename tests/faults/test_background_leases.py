"""Background jobs survive the death of the process that claimed them.

A worker process claims a job and is SIGKILLed while running it; once its lease runs out, one of two
other workers takes the job and runs it to the end, exactly once, although the job outlasts several
leases (its worker keeps renewing it, so the other worker never steals it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis.asyncio as redis

from specgate.adapters.embedded import EmbeddedValkey
from specgate.runtime.background import KEY, LEASED, BackgroundJobs

from . import claimer  # noqa: F401  (registers the job faults.slow here too)

LEASE = 1.0  # seconds; the job runs 3.5 s, more than three leases
TESTS = Path(__file__).resolve().parent.parent


async def _wait_for(client: redis.Redis, key: str, mark: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while mark not in (marks := await client.lrange(key, 0, -1)):
        assert time.monotonic() < deadline, f"no {mark!r} within {timeout} s: {marks}"
        await asyncio.sleep(0.02)
    return marks


async def _scenario(url: str) -> dict:
    client = redis.Redis.from_url(url, decode_responses=True)
    marks = f"faults:marks:{uuid.uuid4().hex}"
    submitter = BackgroundJobs(url, lease=LEASE)
    await submitter.open()
    workers: list[asyncio.Task] = []
    adapters: list[BackgroundJobs] = [submitter]
    try:
        await submitter.submit("faults.slow", {"url": url, "marks": marks, "seconds": 3.5})
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        first = subprocess.Popen([sys.executable, "-m", "faults.claimer", url, str(LEASE), "A"], env=env,
                                 stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        try:
            await _wait_for(client, marks, "start A", 30)
            os.kill(first.pid, signal.SIGKILL)
            killed = time.monotonic()
        finally:
            first.kill()
            first.wait(timeout=10)
        for name in ("B", "C"):  # two live workers compete for the orphaned job
            adapters.append(BackgroundJobs(url, lease=LEASE))
            await adapters[-1].open()
            workers.append(asyncio.create_task(adapters[-1].run(name, idle=0.02)))
        deadline = time.monotonic() + 10
        while len(found := await client.lrange(marks, 0, -1)) < 2:
            assert time.monotonic() < deadline, f"nobody took the job over: {found}"
            await asyncio.sleep(0.02)
        taken = time.monotonic()
        await _wait_for(client, marks, f"done {found[1].split()[1]}", deadline - time.monotonic())
        await asyncio.sleep(3 * LEASE)  # long enough for a wrongly expired lease to show
        return {
            "marks": await client.lrange(marks, 0, -1),
            "left": (await client.zcard(KEY), await client.zcard(LEASED)),
            "killed": killed,
            "taken": taken,
        }
    finally:
        for task in workers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for adapter in adapters:
            await adapter.close()
        await client.aclose()


def test_a_job_whose_claimer_is_sigkilled_runs_once_elsewhere(tmp_path):
    valkey = EmbeddedValkey(tmp_path)
    url = valkey.start()
    try:
        run = asyncio.run(_scenario(url))
    finally:
        valkey.stop()
    marks = run["marks"]
    assert marks[0] == "start A" and len(marks) == 3, marks
    other = marks[1].split()[1]
    assert other in ("B", "C") and marks[1:] == [f"start {other}", f"done {other}"]
    assert run["left"] == (0, 0)  # nothing due, nothing leased: the job is gone for good
    print(f"\nbackground lease: claimer A killed mid-job; {other} took it over "
          f"{run['taken'] - run['killed']:.2f} s after the kill (lease {LEASE} s, job 3.5 s); runs to the end: 1")  # fmt: skip
