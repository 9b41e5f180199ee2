"""Background jobs through Redis: work a REST dialect promises to do after answering (a Qarnot task
moving through its states, a CVAT background request). Every gateway process runs one worker loop;
a job is claimed by exactly one of them (a Lua script takes due jobs off a sorted set atomically), so
the gateway stays stateless and scales out. Jobs are plain JSON; a job may schedule its next step."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

from specgate.adapters.redis_client import RedisAdapter

log = logging.getLogger("specgate.background")
Job = Callable[[Any, dict[str, Any]], Awaitable[None]]
JOBS: dict[str, Job] = {}
KEY = "{specgate:bg}:due"

_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do redis.call('ZREM', KEYS[1], member) end
return due
"""


def job(name: str) -> Callable[[Job], Job]:
    """Register ``async def fn(services, payload)`` as the job ``name``."""

    def register(fn: Job) -> Job:
        JOBS[name] = fn
        return fn

    return register


class BackgroundJobs(RedisAdapter):
    what = "background jobs"

    def prepare(self, client: Any) -> None:
        self._claim = client.register_script(_CLAIM)

    async def submit(self, name: str, payload: dict[str, Any], delay: float = 0.0) -> str:
        if name not in JOBS:
            raise KeyError(f"no background job named {name!r}")
        job_id = uuid.uuid4().hex
        member = json.dumps({"id": job_id, "name": name, "payload": payload}, sort_keys=True)
        await self._guard(self.client.zadd(KEY, {member: time.time() + delay}))
        return job_id

    async def run(self, services: Any, idle: float = 0.1) -> None:
        """Claim and run due jobs until cancelled; a failing job is logged, never retried forever."""
        away = False
        while True:
            try:
                due = await self._guard(self._claim(keys=[KEY], args=[time.time(), 32]))
            except Exception as e:  # Redis away for a moment: say so once, try again shortly
                if not away:
                    log.warning("background jobs paused: %s", e)
                away = True
                await asyncio.sleep(1.0)
                continue
            if away:
                log.warning("background jobs resumed")
                away = False
            for raw in due:
                item = json.loads(raw)
                fn = JOBS.get(item["name"])
                try:
                    if fn is None:
                        raise KeyError(f"no background job named {item['name']!r}")
                    await fn(services, item["payload"])
                except Exception:
                    log.exception("background job %s failed", item["name"])
            if not due:
                await asyncio.sleep(idle)
