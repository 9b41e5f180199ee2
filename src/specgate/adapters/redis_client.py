"""What every Redis-backed adapter shares: one client per process, opened with the app and closed with
it, and connection failures turned into ``QueueUnavailable`` (a 503 the clients retry)."""

from __future__ import annotations

from typing import Any, Awaitable

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .ports import QueueUnavailable


class RedisAdapter:
    what = "redis"  # named in the unavailable message

    def __init__(self, url: str):
        self.url = url
        self.client: redis.Redis | None = None

    async def open(self) -> None:
        self.client = redis.Redis.from_url(self.url, decode_responses=True, health_check_interval=10)
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
        except (RedisConnectionError, RedisTimeoutError, OSError) as e:
            raise QueueUnavailable(f"{self.what} unreachable: {e}") from None
