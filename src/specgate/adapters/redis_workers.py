"""The worker registry in Redis (or Valkey): one expiring key per worker, and a per-company index.

A worker's entry is a JSON document under ``sg:{w:<company>}:worker:<worker id>`` that expires
``timeout`` seconds after it was last written (registration or status report), as ClearML's registry
does. Redis cannot list keys by prefix cheaply (``SCAN`` walks the whole keyspace, and on a cluster only
one node's), so each company also has a sorted set ``sg:{w:<company>}:index`` of its worker ids scored
by their expiry time; listing prunes the lapsed ids and reads the live entries in one ``MGET``. Every
key of a company shares the hash tag ``{w:<company>}``, so the MULTI blocks and the MGET touch a single
slot and run unchanged on Redis Cluster.

Status-report samples for ``workers.get_stats`` / ``get_activity_report`` are kept per worker as a
sorted set scored by report time (epoch ms), trimmed to ``stats_retention`` seconds (default one day),
with a per-company sorted set of the workers that have samples, scored by their latest one.
"""

from __future__ import annotations

import time
from typing import Sequence

import orjson

from .redis_client import RedisAdapter

DEFAULT_STATS_RETENTION = 24 * 3600


def _worker_key(company: str, worker: str) -> str:
    return f"sg:{{w:{company}}}:worker:{worker}"


def _index_key(company: str) -> str:
    return f"sg:{{w:{company}}}:index"


def _stats_key(company: str, worker: str) -> str:
    return f"sg:{{w:{company}}}:stats:{worker}"


def _stats_index_key(company: str) -> str:
    return f"sg:{{w:{company}}}:stats-index"


def _metric_keys_key(company: str, worker: str) -> str:
    return f"sg:{{w:{company}}}:metric-keys:{worker}"


class RedisWorkers(RedisAdapter):
    """Expiring worker entries per company. Entries are JSON-compatible dicts; the caller owns their
    shape. Connection failures surface as ``QueueUnavailable`` (the same Redis serves queues)."""

    what = "worker registry"

    def __init__(self, url: str, *, stats_retention: int = DEFAULT_STATS_RETENTION):
        super().__init__(url)
        self.stats_retention = stats_retention

    # --- entries ---------------------------------------------------------------------------------

    async def save(self, company: str, worker: str, entry: dict, timeout: int) -> None:
        """Store ``entry`` and (re)start its expiry: it lapses ``timeout`` seconds from now."""
        timeout = max(1, int(timeout))
        pipe = self.client.pipeline(transaction=True)
        pipe.set(_worker_key(company, worker), orjson.dumps(entry), ex=timeout)
        pipe.zadd(_index_key(company), {worker: time.time() + timeout})
        await self._guard(pipe.execute())

    async def load(self, company: str, worker: str) -> dict | None:
        raw = await self._guard(self.client.get(_worker_key(company, worker)))
        return None if raw is None else orjson.loads(raw)

    async def delete(self, company: str, worker: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(_worker_key(company, worker))
        pipe.zrem(_index_key(company), worker)
        removed, _ = await self._guard(pipe.execute())
        return bool(removed)

    async def all(self, company: str) -> list[dict]:
        """The company's live entries, ordered by worker id."""
        index = _index_key(company)
        pipe = self.client.pipeline(transaction=True)
        pipe.zremrangebyscore(index, "-inf", f"({time.time()}")
        pipe.zrange(index, 0, -1)
        _, workers = await self._guard(pipe.execute())
        if not workers:
            return []
        workers = sorted(workers)
        raws = await self._guard(self.client.mget([_worker_key(company, w) for w in workers]))
        return [orjson.loads(raw) for raw in raws if raw is not None]

    # --- statistics ------------------------------------------------------------------------------

    async def add_sample(self, company: str, worker: str, sample: dict, at_ms: int) -> None:
        """Keep one report sample of ``worker`` and drop its samples past the retention."""
        key, index = _stats_key(company, worker), _stats_index_key(company)
        oldest = f"({int((time.time() - self.stats_retention) * 1000)}"
        # the member must be unique: two identical samples in one ms would otherwise collapse into one
        member = orjson.dumps({**sample, "_at": at_ms, "_n": time.time_ns()})
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(key, {member: at_ms})
        pipe.zremrangebyscore(key, "-inf", oldest)
        pipe.expire(key, self.stats_retention)
        pipe.zadd(index, {worker: at_ms}, gt=True)  # GT still adds new members
        pipe.zremrangebyscore(index, "-inf", oldest)
        pipe.expire(index, self.stats_retention)
        metric_keys = [k for k, v in (sample.get("stats") or {}).items() if v not in (None, [], "")]
        if metric_keys:
            pipe.sadd(_metric_keys_key(company, worker), *metric_keys)
            pipe.expire(_metric_keys_key(company, worker), self.stats_retention)
        await self._guard(pipe.execute())

    async def metric_keys(self, company: str, workers: Sequence[str] | None) -> set[str]:
        """Names of the machine statistics reported within the retention by ``workers`` (None: all)."""
        if workers is None:
            workers = await self._guard(self.client.zrange(_stats_index_key(company), 0, -1))
        if not workers:
            return set()
        return set(await self._guard(self.client.sunion([_metric_keys_key(company, w) for w in workers])))

    async def samples(
        self, company: str, workers: Sequence[str] | None, from_ms: float, to_ms: float
    ) -> dict[str, list[dict]]:
        """Samples with ``from_ms <= time <= to_ms`` per worker, oldest first (each carries its time as
        ``_at``); ``workers`` None means every worker that reported since ``from_ms``."""
        if workers is None:
            workers = await self._guard(self.client.zrangebyscore(_stats_index_key(company), from_ms, "+inf"))
        workers = sorted(set(workers))
        if not workers:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for worker in workers:
            pipe.zrangebyscore(_stats_key(company, worker), from_ms, to_ms)
        found = await self._guard(pipe.execute())
        return {w: [orjson.loads(raw) for raw in raws] for w, raws in zip(workers, found) if raws}
