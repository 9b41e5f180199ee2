"""What a handler gets besides its validated request: who calls, at which version, and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specgate.core.versions import Version
from specgate.domain.identity import Identity

if TYPE_CHECKING:
    from specgate.adapters.ports import DocumentStore, QueueBackend
    from specgate.domain.queues import Queues
    from specgate.domain.accounts import Accounts
    from specgate.domain.tokens import TokenIssuer


@dataclass
class Services:
    """Long-lived collaborators, built once by the app and shared by every call."""

    store: "DocumentStore"
    accounts: "Accounts"
    tokens: "TokenIssuer"
    max_version: Version
    settings: Any
    queues: "QueueBackend"
    workers: Any  # adapters.redis_workers.RedisWorkers: expiring worker entries in the same Redis
    redis_url: str  # the Redis (or embedded Valkey) holding queue contents and the worker registry
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallContext:
    call_id: str
    endpoint: str
    requested: Version
    actual: Version
    identity: Identity | None
    services: Services
    headers: dict[str, str]  # lower-case names
    client: str = ""
    cookies: dict[str, str] = field(default_factory=dict)  # to set on the response
    http: Any = None  # runtime.rest.HttpInfo for calls through a REST dialect (URL, query, files, headers out)

    @property
    def company(self) -> str:
        assert self.identity is not None, "handler of an unauthenticated endpoint asked for a company"
        return self.identity.company

    def queues(self) -> "Queues":
        """The queue domain over this call's store and queue backend."""
        from specgate.domain.queues import Queues

        return Queues(self.services.store, self.services.queues)

    def header(self, name: str) -> str:
        """A ClearML header by its short name: X-ClearML-<name> wins over X-Trains-<name>."""
        return self.headers.get(f"x-clearml-{name}") or self.headers.get(f"x-trains-{name}") or ""
