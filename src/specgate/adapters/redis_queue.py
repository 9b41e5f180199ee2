"""Queue contents in Redis (or Valkey): per queue, a list of task ids, a hash of their added times,
and a hash of the entries popped (task → when), which tells a delivered task from one whose entry a
crash lost (both are ``queued`` with no entry; see ``task_queueing.reconcile``).

Every operation that touches several keys is one Lua script, so it is atomic: a pop hands an entry
to exactly one consumer and a push never duplicates one. The keys of a queue share the hash tag
``{q:<id>}``, so each script touches a single slot and runs unchanged on Redis Cluster.
"""

from __future__ import annotations

from specgate.core.clock import now_iso

from .redis_client import RedisAdapter

_PUSH = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
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
return {head, added}
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


def _keys(queue: str) -> list[str]:
    return [f"sg:{{q:{queue}}}:list", f"sg:{{q:{queue}}}:added", f"sg:{{q:{queue}}}:popped"]


class RedisQueues(RedisAdapter):
    what = "queue backend"

    def prepare(self, client) -> None:
        self._push = client.register_script(_PUSH)
        self._pop = client.register_script(_POP)
        self._remove = client.register_script(_REMOVE)
        self._move = client.register_script(_MOVE)
        self._clear = client.register_script(_CLEAR)

    async def push(self, queue: str, task: str, added: str) -> bool:
        return bool(await self._guard(self._push(keys=_keys(queue), args=[task, added])))

    async def pop(self, queue: str, expected: str | None = None) -> tuple[str, str] | None:
        found = await self._guard(self._pop(keys=_keys(queue), args=[expected or "", now_iso()]))
        return (found[0], found[1]) if found else None

    async def remove(self, queue: str, task: str) -> bool:
        return bool(await self._guard(self._remove(keys=_keys(queue), args=[task])))

    async def popped(self, queue: str) -> set[str]:
        return set(await self._guard(self.client.hkeys(_keys(queue)[2])))

    async def forget_popped(self, queue: str, tasks: list[str]) -> None:
        if tasks:
            await self._guard(self.client.hdel(_keys(queue)[2], *tasks))

    async def entries(self, queue: str, limit: int | None = None) -> list[tuple[str, str]]:
        lst, added, _ = _keys(queue)
        tasks = await self._guard(self.client.lrange(lst, 0, -1 if limit is None else limit - 1))
        if not tasks:
            return []
        times = await self._guard(self.client.hmget(added, tasks))
        return [(t, a or "") for t, a in zip(tasks, times)]

    async def length(self, queue: str) -> int:
        return await self._guard(self.client.llen(_keys(queue)[0]))

    async def move(self, queue: str, task: str, position: int) -> int | None:
        moved = await self._guard(self._move(keys=_keys(queue), args=[task, position]))
        return None if moved < 0 else moved

    async def position(self, queue: str, task: str) -> int | None:
        return await self._guard(self.client.lpos(_keys(queue)[0], task))

    async def clear(self, queue: str) -> list[str]:
        return list(await self._guard(self._clear(keys=_keys(queue))))
