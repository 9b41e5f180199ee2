"""Queue round trips: specgate's queue adapter vs raw redis-py, against an embedded Valkey.

    .venv/bin/python bench/queue.py                       # about 30 s
    .venv/bin/python bench/queue.py --seconds 1 --concurrency 1,16,64
    .venv/bin/python bench/queue.py --redis-url redis://127.0.0.1:6379/0

One pair is one enqueue and one dequeue of the same entry:

- adapter: ``RedisQueues.push`` (the Lua script ``tasks.enqueue`` runs) then ``RedisQueues.pop`` (the
  Lua script ``queues.get_next_task`` runs), each one EVALSHA round trip;
- raw: ``LPUSH`` then ``LMOVE`` (a reliable-queue pop into a processing list), two plain commands,

issued from the same redis-py client (the adapter's own ``client``, same connection pool), under
uvloop as the server runs. Each coroutine uses a queue of its own. Rounds alternate adapter and raw,
three times; the best round of each is reported. Issue 8's target for the full HTTP round trip
(``tasks.enqueue`` + ``queues.get_next_task``, in ``bench/http.py``) is >= 0.3 of raw pairs/s; the
adapter alone should be close to 1.
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH] + [_BENCH]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from benchlib import env_float, env_list, int_list, verdict  # noqa: E402

from specgate.adapters.redis_queue import RedisQueues, _keys  # noqa: E402
from specgate.core.clock import now_iso  # noqa: E402


async def pairs_per_second(one_pair, concurrency: int, seconds: float) -> float:
    """Run ``one_pair(i, n)`` in ``concurrency`` coroutines for ``seconds``; pairs per second."""
    stop = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(i: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            await one_pair(i, n)
            n += 1
        counts[i] = n

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return sum(counts) / (time.perf_counter() - start)


async def bench(url: str, concurrencies: list[int], seconds: float) -> list[tuple[int, float, float]]:
    backend = RedisQueues(url)
    await backend.open()
    client = backend.client
    run = uuid.uuid4().hex[:8]
    width = max(concurrencies)
    queues = [f"bench-{run}-{i}" for i in range(width)]
    tasks = [uuid.uuid4().hex for _ in range(width)]
    raw_keys = [(f"bench:{run}:{i}:list", f"bench:{run}:{i}:processing") for i in range(width)]

    async def adapter_pair(i: int, n: int) -> None:
        assert await backend.push(queues[i], tasks[i], now_iso())
        popped = await backend.pop(queues[i])
        assert popped is not None and popped[0] == tasks[i]

    async def raw_pair(i: int, n: int) -> None:
        lst, processing = raw_keys[i]
        await client.lpush(lst, tasks[i])
        assert await client.lmove(lst, processing, "RIGHT", "LEFT") == tasks[i]
        if n % 1000 == 999:
            await client.delete(processing)

    results = []
    try:
        await pairs_per_second(adapter_pair, width, 0.3)  # warm up: scripts loaded, connections open
        await pairs_per_second(raw_pair, width, 0.3)
        for c in concurrencies:
            adapter = raw = 0.0
            for _ in range(3):
                adapter = max(adapter, await pairs_per_second(adapter_pair, c, seconds / 3))
                raw = max(raw, await pairs_per_second(raw_pair, c, seconds / 3))
            results.append((c, adapter, raw))
            print(f"  concurrency {c:>3}:  adapter {adapter:>9,.0f} pairs/s   raw LPUSH+LMOVE {raw:>9,.0f} pairs/s"
                  f"   ratio {adapter / raw:5.2f}", flush=True)  # fmt: skip
    finally:
        for q in queues:
            await client.delete(*_keys(q))
        for keys in raw_keys:
            await client.delete(*keys)
        await backend.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=env_float("BENCH_QUEUE_SECONDS", 3.0),
                        help="time per measurement, split over 3 rounds (env BENCH_QUEUE_SECONDS, default 3)")
    parser.add_argument("--concurrency", type=int_list, default=env_list("BENCH_QUEUE_CONCURRENCY", [1, 16, 64]),
                        help="comma-separated coroutine counts (env BENCH_QUEUE_CONCURRENCY, default 1,16,64)")
    parser.add_argument("--redis-url", help="benchmark this Redis instead of a private embedded Valkey")
    args = parser.parse_args()  # fmt: skip

    try:
        import uvloop

        runner = uvloop.run
        loop_name = "uvloop"
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner, loop_name = asyncio.run, "asyncio"

    with tempfile.TemporaryDirectory(prefix="specgate-bench-queue-") as tmp:
        embedded = None
        if args.redis_url:
            url = args.redis_url
            print(f"queue round trips against {url} ({loop_name})")
        else:
            from specgate.adapters.embedded import EmbeddedValkey

            embedded = EmbeddedValkey(Path(tmp))
            url = embedded.start()
            print(f"queue round trips against an embedded Valkey at {url}, AOF everysec ({loop_name})")
        try:
            results = runner(bench(url, args.concurrency, args.seconds))
        finally:
            if embedded is not None:
                embedded.stop()
    worst = min(a / r for _, a, r in results)
    print(f"\nadapter pairs/s / raw pairs/s, worst: {worst:.2f} (the HTTP round trip's target is >= 0.3 of raw: "
          f"bench/http.py; the adapter alone should stay near 1: {verdict(worst >= 0.8)} at >= 0.8)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
