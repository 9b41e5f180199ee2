"""What every Redis-backed adapter shares: one client per process, opened with the app and closed with
it, and failures of the server (unreachable, restarting, read-only after a failover) turned into
``QueueUnavailable``, a 503 the clients retry.

Reconnection is the client pool's: a connection found closed when taken from the pool is opened
again, so calls work again as soon as Redis answers, without a gateway restart. Commands are never
retried automatically: a command whose reply was lost may have run, and running a pop twice would
hand out two entries. ``RedisQueues`` settles such commands itself. Connects time out after 2 s and
commands after 5 s, so a hung server gives a 503, not a hung call; ``socket_timeout`` and
``socket_connect_timeout`` in the URL override both.
"""

from __future__ import annotations

from typing import Any, Awaitable

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .ports import QueueUnavailable

CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 5.0
# the server is there but cannot serve right now: loading (a BusyLoadingError is a ConnectionError),
# a replica after a failover, a cluster reconfiguring, persistence failing, memory full
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, ReadOnlyError, ClusterDownError, TryAgainError, OutOfMemoryError)


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the Redis server cannot serve right now (so: 503, try again)."""
    if isinstance(error, (QueueUnavailable, *_UNAVAILABLE)):
        return True
    return isinstance(error, ResponseError) and str(error).startswith("MISCONF")


class _Answers503:
    """Every command's "cannot serve" failure raised as ``QueueUnavailable``, so that code using
    ``adapter.client`` directly (asynchronous call records) answers 503 too, not 500."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)
        except Exception as e:
            if unavailable(e) and not isinstance(e, QueueUnavailable):
                raise QueueUnavailable(f"redis unreachable: {e}") from None
            raise


class _Redis(_Answers503, redis.Redis):
    pass


class _RedisCluster(_Answers503, RedisCluster):
    pass


class RedisAdapter:
    what = "redis"  # named in the unavailable message

    def __init__(self, url: str):
        self.url = url
        self.client: redis.Redis | None = None

    async def open(self) -> None:
        # redis+cluster://host:port (rediss+cluster:// with TLS): any node of a Redis Cluster. Every
        # multi-key script and MULTI touches keys of one hash tag, so one slot and one node.
        cluster = self.url.startswith(("redis+cluster://", "rediss+cluster://"))
        self.client = (_RedisCluster if cluster else _Redis).from_url(
            self.url.replace("+cluster://", "://", 1),
            decode_responses=True,
            health_check_interval=10,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self.prepare(self.client)
        await self._guard(self.client.ping())

    def prepare(self, client: redis.Redis) -> None:
        """Register scripts and the like on a new client (nothing by default)."""

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def _guard(self, awaitable: Awaitable) -> Any:
        try:
            return await awaitable
        except QueueUnavailable as e:
            raise QueueUnavailable(f"{self.what} unreachable: {str(e).removeprefix('redis unreachable: ')}") from None
        except Exception as e:
            if unavailable(e):
                raise QueueUnavailable(f"{self.what} unreachable: {e}") from None
            raise
