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

import pytest
import redis.asyncio as redis

from specgate.adapters.embedded import EmbeddedValkey
from specgate.adapters.ports import QueueUnavailable
from specgate.runtime.background import KEY, LEASED, BackgroundJobs

from . import claimer  # noqa: F401  (registers the job faults.slow here too)
from .proxy import SwallowingProxy

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


async def test_undoing_a_lost_claim_gives_back_only_what_nobody_claimed_since(tmp_path):
    """A claim whose reply never came is undone before the worker's next claim. Its job goes back to
    the due set, unless its lease ran out meanwhile and another worker claimed it: that one keeps it."""
    valkey = EmbeddedValkey(tmp_path)
    url = valkey.start()
    proxy = SwallowingProxy(int(url.rsplit(":", 1)[1]))
    lost = BackgroundJobs(f"redis://127.0.0.1:{proxy.port}", lease=0.3)  # its claim replies can be lost
    other = BackgroundJobs(url, lease=0.3)
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        await lost.open()
        await other.open()

        async def claim_and_lose_the_reply() -> list[str]:
            await other.submit("faults.slow", {"seconds": 0})
            proxy.swallow_next_reply('"name": "faults.slow"')
            unsettled: list[str] = []
            with pytest.raises(QueueUnavailable):
                await lost._claim_due(unsettled)
            assert (len(unsettled), await client.zcard(LEASED), await client.zcard(KEY)) == (1, 1, 0)  # it ran
            return unsettled

        unsettled = await claim_and_lose_the_reply()
        await lost._settle(unsettled)
        assert (unsettled, await client.zcard(LEASED), await client.zcard(KEY)) == ([], 0, 1)  # due again
        taken, _ = await other._claim_due([])
        assert len(taken) == 1
        await other._forget(taken[0])

        unsettled = await claim_and_lose_the_reply()
        await asyncio.sleep(0.4)  # the lease runs out ...
        taken, _ = await other._claim_due([])  # ... and another worker claims the job
        await lost._settle(unsettled)
        assert len(taken) == 1 and await client.zrange(LEASED, 0, -1) == taken and await client.zcard(KEY) == 0
        assert proxy.swallowed == 2
    finally:
        await client.aclose()
        await lost.close()
        await other.close()
        proxy.close()
        valkey.stop()
