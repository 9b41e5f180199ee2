"""A background-job worker for test_background_leases, run in its own process so that it can be
SIGKILLed mid-job: ``python -m faults.claimer <redis url> <lease seconds> <worker name>``.

The job ``faults.slow`` appends ``start <worker>`` to a Redis list, sleeps, then appends
``done <worker>``: the list tells who ran it and whether anyone ran it twice.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as redis

from specgate.runtime.background import BackgroundJobs, job


@job("faults.slow")
async def slow(worker: str, payload: dict) -> None:
    client = redis.Redis.from_url(payload["url"], decode_responses=True)
    try:
        await client.rpush(payload["marks"], f"start {worker}")
        await asyncio.sleep(payload["seconds"])
        await client.rpush(payload["marks"], f"done {worker}")
    finally:
        await client.aclose()


async def main(url: str, lease: float, worker: str) -> None:
    jobs = BackgroundJobs(url, lease=lease)
    await jobs.open()
    await jobs.run(worker, idle=0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
