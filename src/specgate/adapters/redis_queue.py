"""Queue contents in Redis (or Valkey): per queue, a list of task ids, a hash of their added times,
and a hash of the entries popped (task → when), which tells a delivered task from one whose entry a
crash lost (both are ``queued`` with no entry; see ``task_queueing.reconcile``).

Every operation that touches several keys is one Lua script, so it is atomic: a pop hands an entry
to exactly one consumer and a push never duplicates one. The keys of a queue share the hash tag
``{q:<id>}``, so each script touches a single slot and runs unchanged on Redis Cluster.

A push or pop that fails because Redis went away (503) is undone. Its reply may have been lost after
the script ran: a pop would then have taken an entry nobody received, a push would have queued a
task whose enqueue was reported failed (and undone in the store). So each push and pop that changes
something records itself under an op key ``sg:{q:<id>}:op:<token>`` (kept an hour), and before this
process runs its next queue command it settles the failed ones: an entry popped by a failed pop goes
back to the head, an entry pushed by a failed push is taken out again. A failed call therefore
changed nothing, and a client may simply retry it (the SDK does, on 503). (A process that dies with
failed commands unsettled leaves them as they are: that needs Redis and the gateway to fail at once.)
``restore`` likewise puts back an entry that ``queues.get_next_task`` popped but could not hand out
because the document store failed.
"""

from __future__ import annotations

import asyncio
import logging
import os

from specgate.core.clock import now_iso

from .ports import QueueUnavailable
from .redis_client import RedisAdapter, unavailable

log = logging.getLogger("specgate.queues")

OP_TTL = 3600  # seconds an op record is kept: how long a failed push or pop can still be undone

_PUSH = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
return 1
"""
_POP = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then return false end
if ARGV[1] ~= '' and head ~= ARGV[1] then return false end
redis.call('LPOP', KEYS[1])
local added = redis.call('HGET', KEYS[2], head) or ''
redis.call('HDEL', KEYS[2], head)
redis.call('HSET', KEYS[3], head, ARGV[2])
redis.call('SET', KEYS[4], cjson.encode({head, added, ARGV[2]}), 'EX', ARGV[3])
return {head, added}
"""
# undo a failed pop: its entry goes back to the head, unless the task was pushed again since
_UNPOP = """
local done = redis.call('GET', KEYS[4])
if not done then return false end
redis.call('DEL', KEYS[4])
local task, added, popped = unpack(cjson.decode(done))
if redis.call('HGET', KEYS[3], task) ~= popped then return false end
redis.call('LPUSH', KEYS[1], task)
redis.call('HSET', KEYS[2], task, added)
redis.call('HDEL', KEYS[3], task)
return task
"""
# undo a failed push: its entry comes out again, unless it was popped (or pushed anew) since
_UNPUSH = """
local added = redis.call('GET', KEYS[4])
if not added then return false end
redis.call('DEL', KEYS[4])
if redis.call('HGET', KEYS[2], ARGV[1]) ~= added then return false end
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return ARGV[1]
"""
# put a popped entry back at the head (its caller could not hand it out), unless queued again since
_RESTORE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
# hand out again an entry popped at ARGV[2] whose task nobody started: unless popped again or queued since
_REDELIVER = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
_REMOVE = """
local n = redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return n
"""
_MOVE = """
local at = redis.call('LPOS', KEYS[1], ARGV[1])
if not at then return -1 end
redis.call('LREM', KEYS[1], 1, ARGV[1])
local size = redis.call('LLEN', KEYS[1])
local to = tonumber(ARGV[2])
if to < 0 then to = size + 1 + to end
if to < 0 then to = 0 end
if to >= size then
  redis.call('RPUSH', KEYS[1], ARGV[1])
  return size
end
local pivot = redis.call('LINDEX', KEYS[1], to)
redis.call('LINSERT', KEYS[1], 'BEFORE', pivot, ARGV[1])
return to
"""
_CLEAR = """
local all = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return all
"""


def _keys(queue: str, op: str | None = None) -> list[str]:
    keys = [f"sg:{{q:{queue}}}:list", f"sg:{{q:{queue}}}:added", f"sg:{{q:{queue}}}:popped"]
    return keys if op is None else [*keys, f"sg:{{q:{queue}}}:op:{op}"]


class RedisQueues(RedisAdapter):
    what = "queue backend"

    def prepare(self, client) -> None:
        self._push = client.register_script(_PUSH)
        self._pop = client.register_script(_POP)
        self._unpush = client.register_script(_UNPUSH)
        self._unpop = client.register_script(_UNPOP)
        self._restore = client.register_script(_RESTORE)
        self._redeliver = client.register_script(_REDELIVER)
        self._remove = client.register_script(_REMOVE)
        self._move = client.register_script(_MOVE)
        self._clear = client.register_script(_CLEAR)
        self._unsettled: list[tuple[str, str, str, str]] = []  # (push|pop, queue, op token, task)
        self._settling = asyncio.Lock()

    async def _recorded(self, kind: str, queue: str, task: str, args: list) -> object:
        """Run the push or pop script under a fresh op token; if it fails for want of Redis,
        remember it to be undone before the next command."""
        await self._settle()
        op = os.urandom(16).hex()  # a quarter of uuid4's cost
        script = self._push if kind == "push" else self._pop
        try:
            return await script(keys=_keys(queue, op), args=[*args, OP_TTL])
        except Exception as e:
            if not unavailable(e):
                raise
            self._unsettled.append((kind, queue, op, task))
            raise QueueUnavailable(f"{self.what} unreachable: {str(e).removeprefix('redis unreachable: ')}") from None

    async def _settle(self) -> None:
        """Undo the pushes and pops that failed (see the module docstring); 503 while Redis is away."""
        if not self._unsettled:
            return
        async with self._settling:
            while self._unsettled:
                kind, queue, op, task = self._unsettled[0]
                script = self._unpush if kind == "push" else self._unpop
                try:
                    undone = await self._guard(script(keys=_keys(queue, op), args=[task]))
                except QueueUnavailable:
                    raise  # still away: the next command tries again
                except Exception:  # never wedge every queue command on one that cannot be settled
                    log.exception("could not undo a failed %s in queue %s", kind, queue)
                    undone = None
                self._unsettled.pop(0)
                if undone:
                    log.warning("undid a failed %s of task %s in queue %s: it had run, its reply was lost", kind, undone, queue)

    async def push(self, queue: str, task: str, added: str) -> bool:
        return bool(await self._recorded("push", queue, task, [task, added]))

    async def pop(self, queue: str, expected: str | None = None) -> tuple[str, str] | None:
        found = await self._recorded("pop", queue, "", [expected or "", now_iso()])
        return (found[0], found[1]) if found else None

    async def restore(self, queue: str, task: str, added: str) -> bool:
        """Undo a pop whose entry could not be handed out: back at the head with its added time."""
        await self._settle()
        return bool(await self._guard(self._restore(keys=_keys(queue), args=[task, added])))

    async def remove(self, queue: str, task: str) -> bool:
        await self._settle()
        return bool(await self._guard(self._remove(keys=_keys(queue), args=[task])))

    async def popped(self, queue: str) -> set[str]:
        await self._settle()
        return set(await self._guard(self.client.hkeys(_keys(queue)[2])))

    async def popped_at(self, queue: str) -> dict[str, str]:
        """The entries popped and not yet settled: task → when it was popped."""
        await self._settle()
        found = await self._guard(self.client.hgetall(_keys(queue)[2]))
        return dict(found)

    async def redeliver(self, queue: str, task: str, popped: str) -> bool:
        """Put a popped entry back at the head, if it is still the pop made at ``popped``."""
        await self._settle()
        return bool(await self._guard(self._redeliver(keys=_keys(queue), args=[task, popped, now_iso()])))

    async def forget_popped(self, queue: str, tasks: list[str]) -> None:
        if tasks:
            await self._settle()
            await self._guard(self.client.hdel(_keys(queue)[2], *tasks))

    async def entries(self, queue: str, limit: int | None = None) -> list[tuple[str, str]]:
        await self._settle()
        lst, added, _ = _keys(queue)
        tasks = await self._guard(self.client.lrange(lst, 0, -1 if limit is None else limit - 1))
        if not tasks:
            return []
        times = await self._guard(self.client.hmget(added, tasks))
        return [(t, a or "") for t, a in zip(tasks, times)]

    async def length(self, queue: str) -> int:
        await self._settle()
        return await self._guard(self.client.llen(_keys(queue)[0]))

    async def move(self, queue: str, task: str, position: int) -> int | None:
        await self._settle()
        moved = await self._guard(self._move(keys=_keys(queue), args=[task, position]))
        return None if moved < 0 else moved

    async def position(self, queue: str, task: str) -> int | None:
        await self._settle()
        return await self._guard(self.client.lpos(_keys(queue)[0], task))

    async def clear(self, queue: str) -> list[str]:
        await self._settle()
        return list(await self._guard(self._clear(keys=_keys(queue))))
