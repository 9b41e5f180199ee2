"""Background jobs through Redis: work a REST dialect promises to do after answering (a Qarnot task
moving through its states, a CVAT background request). Every gateway process runs one worker loop;
a job is claimed by exactly one of them (a Lua script moves due jobs from the due set to the leased
set atomically), so the gateway stays stateless and scales out. Jobs are plain JSON; a job may
schedule its next step.

A claim is a lease, not a removal: the claimed job stays in the leased set, scored by when its lease
runs out, while it waits and runs; the worker renews the leases of the jobs it holds every third of
the lease, and removes a job when it has run (or failed: failures are logged, never retried). A job
whose lease ran out was claimed by a process that died or hung: the next claim takes it again, so it
runs once elsewhere. A job can therefore run twice when its process dies after doing the work and
before removing it: jobs must tolerate that (they are steps that set states). A job claimed
``MAX_CLAIMS`` times without finishing kills its workers, so it is set aside in the dead set.

A claim whose reply was lost (Redis died or the connection broke after the script ran) leased jobs
that no worker holds: they would wait out the whole lease. So a claim that takes something records
what it took and the lease's score, under a key named by a fresh token (kept for two leases), and a
worker whose claim failed undoes it before its next claim: those jobs go back to the due set and run
within a second or so of Redis coming back. A job whose score changed was claimed again since (its
lease ran out first) and is left to that claim.

Lease times come from the Redis server's clock (``TIME``), so gateways with skewed clocks agree on
them; due times are the submitting gateway's clock, as before. All keys share the hash tag
``{specgate:bg}``, so every script touches one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from typing import Any, Awaitable, Callable

from specgate.adapters.ports import QueueUnavailable
from specgate.adapters.redis_client import RedisAdapter

log = logging.getLogger("specgate.background")
Job = Callable[[Any, dict[str, Any]], Awaitable[None]]
JOBS: dict[str, Job] = {}
KEY = "{specgate:bg}:due"
LEASED = "{specgate:bg}:leased"  # job → when its lease runs out (server time, seconds)
CLAIMS = "{specgate:bg}:claims"  # job → how many times it was claimed
DEAD = "{specgate:bg}:dead"  # jobs set aside after MAX_CLAIMS claims, scored by when
CLAIM_RECORD = "{specgate:bg}:claim:"  # + a claim's token → the jobs it took and their lease score
LEASE = 30.0  # seconds a claim lasts unless renewed
MAX_CLAIMS = 5

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
# KEYS: due, leased, claims, dead, this claim's record. ARGV: client time, how many, lease seconds,
# max claims, record lifetime (ms). The record holds the lease's score as Redis wrote it, and the jobs.
_CLAIM = _NOW + """
local out, dead = {}, {}
local function take(member)
  local n = redis.call('HINCRBY', KEYS[3], member, 1)
  if n > tonumber(ARGV[4]) then
    redis.call('HDEL', KEYS[3], member)
    redis.call('ZADD', KEYS[4], now, member)
    dead[#dead + 1] = member
    return
  end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), member)
  out[#out + 1] = member
end
local limit = tonumber(ARGV[2])
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)) do
  take(member)
end
if #out < limit then
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit - #out)) do
    redis.call('ZREM', KEYS[1], member)
    take(member)
  end
end
if #out > 0 then
  redis.call('SET', KEYS[5], cjson.encode({redis.call('ZSCORE', KEYS[2], out[1]), out}), 'PX', ARGV[5])
end
return {out, dead}
"""
# KEYS: leased. ARGV: lease seconds, members. Extends the leases still held; how many were.
_RENEW = _NOW + """
local held = 0
for i = 2, #ARGV do
  if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[i]) == 1 then held = held + 1 end
end
return held
"""
# KEYS: leased, claims. ARGV: member. The job ran (or failed): forget it.
_DONE = """
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
"""
# KEYS: leased, due, claims, a failed claim's record. ARGV: client time. Undo the claim: its jobs
# still leased under its score (nobody claimed them since) go back to the due set.
_UNCLAIM = """
local record = redis.call('GET', KEYS[4])
if not record then return 0 end
redis.call('DEL', KEYS[4])
local score, members = unpack(cjson.decode(record))
local back = 0
for _, member in ipairs(members) do
  if redis.call('ZSCORE', KEYS[1], member) == score then
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZADD', KEYS[2], ARGV[1], member)
    redis.call('HINCRBY', KEYS[3], member, -1)
    back = back + 1
  end
end
return back
"""
# KEYS: leased, due, claims. ARGV: client time, members. Give jobs not run back (shutting down).
_RELEASE = """
for i = 2, #ARGV do
  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
    redis.call('HINCRBY', KEYS[3], ARGV[i], -1)
  end
end
return #ARGV - 1
"""


def _cancelled(error: Exception | None = None) -> None:
    """Re-raise a cancellation that the Redis client swallowed. On Python 3.11 a cancel that lands in
    redis-py's zero-second ``asyncio.timeout`` (the check of a pooled connection) can come out as a
    ConnectionError, which the cluster client even retries: the call then returns normally. A worker
    loop would never end, and neither would the gateway's shutdown, which cancels it and waits."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from error


def job(name: str) -> Callable[[Job], Job]:
    """Register ``async def fn(services, payload)`` as the job ``name``."""

    def register(fn: Job) -> Job:
        JOBS[name] = fn
        return fn

    return register


class BackgroundJobs(RedisAdapter):
    what = "background jobs"

    def __init__(self, url: str, *, lease: float = LEASE):
        super().__init__(url)
        self.lease = lease

    def prepare(self, client: Any) -> None:
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._done = client.register_script(_DONE)
        self._release = client.register_script(_RELEASE)
        self._unclaim = client.register_script(_UNCLAIM)

    async def submit(self, name: str, payload: dict[str, Any], delay: float = 0.0) -> str:
        if name not in JOBS:
            raise KeyError(f"no background job named {name!r}")
        job_id = uuid.uuid4().hex
        member = json.dumps({"id": job_id, "name": name, "payload": payload}, sort_keys=True)
        await self._guard(self.client.zadd(KEY, {member: time.time() + delay}))
        return job_id

    async def run(self, services: Any, idle: float = 0.1) -> None:
        """Claim and run due jobs until cancelled; a failing job is logged, never retried forever."""
        held: set[str] = set()  # claimed here and not done: their leases are renewed
        unsettled: list[str] = []  # records of claims sent whose replies never came
        renewer = asyncio.create_task(self._keep(held), name="specgate-background-leases")
        away = False
        try:
            while True:
                try:
                    due, dead = await self._claim_due(unsettled)
                except Exception as e:  # Redis away for a moment: say so once, try again shortly
                    _cancelled(e)
                    if not away:
                        log.warning("background jobs paused: %s", e)
                    away = True
                    await asyncio.sleep(1.0)
                    continue
                held.update(due)
                _cancelled()
                for raw in dead:
                    log.error("background job set aside in %s after %d claims without finishing: %s", DEAD, MAX_CLAIMS, raw[:500])
                if away:
                    log.warning("background jobs resumed")
                    away = False
                for raw in due:
                    await self._one(services, raw)
                    held.discard(raw)
                    await self._forget(raw)
                if not due:
                    await asyncio.sleep(idle)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            if held or unsettled:  # not run (or interrupted): back to the due set, for any process to take now
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._give_back(held, unsettled), 2.0)

    async def _claim_due(self, unsettled: list[str]) -> tuple[list[str], list[str]]:
        """Claim due jobs (and those whose lease ran out), after undoing the claims in ``unsettled``.
        The claim's record is in ``unsettled`` until its reply arrives, so a failure or a cancel
        leaves it there to be undone."""
        await self._settle(unsettled)
        record = CLAIM_RECORD + os.urandom(16).hex()
        unsettled.append(record)
        claimed = await self._guard(self._claim(keys=[KEY, LEASED, CLAIMS, DEAD, record],
                                                args=[time.time(), 32, self.lease, MAX_CLAIMS, max(1, int(self.lease * 2000))]))  # fmt: skip
        unsettled.remove(record)
        return claimed

    async def _settle(self, unsettled: list[str]) -> None:
        """Undo failed claims, oldest first; 503 while Redis is away (the next round tries again)."""
        while unsettled:
            try:
                back = await self._guard(self._unclaim(keys=[LEASED, KEY, CLAIMS, unsettled[0]], args=[time.time()]))
            except QueueUnavailable:
                raise
            except Exception:  # never stop claiming over a claim that cannot be undone: its lease runs out
                log.exception("could not undo a failed background job claim")
                back = 0
            unsettled.pop(0)
            if back:
                log.warning("undid a background job claim whose reply was lost: %d job(s) due again", back)

    async def _give_back(self, held: set[str], unsettled: list[str]) -> None:
        await self._settle(unsettled)
        if held:
            await self._release(keys=[LEASED, KEY, CLAIMS], args=[time.time(), *held])

    async def _one(self, services: Any, raw: str) -> None:
        name = "?"
        try:
            item = json.loads(raw)
            name = item["name"]
            fn = JOBS.get(name)
            if fn is None:
                raise KeyError(f"no background job named {name!r}")
            await fn(services, item["payload"])
        except Exception:
            log.exception("background job %s failed", name)

    async def _forget(self, raw: str) -> None:
        """Remove a job that ran (or failed), once Redis answers; until then its lease stands."""
        while True:
            try:
                await self._guard(self._done(keys=[LEASED, CLAIMS], args=[raw]))
                _cancelled()
                return
            except Exception as e:
                _cancelled(e)
                log.warning("a background job ran; its removal waits for Redis: %s", e)
                await asyncio.sleep(1.0)

    async def _keep(self, held: set[str]) -> None:
        """Renew the leases of the jobs this worker holds, every third of the lease."""
        while True:
            await asyncio.sleep(self.lease / 3)
            if not held:
                continue
            members = sorted(held)
            try:
                kept = await self._guard(self._renew(keys=[LEASED], args=[self.lease, *members]))
                _cancelled()
            except Exception as e:  # the lease has two more thirds to go: try again next round
                _cancelled(e)
                log.warning("background job leases not renewed: %s", e)
                continue
            if kept < len(members):
                log.warning("%d background job leases ran out before renewal: another process may run them", len(members) - kept)
