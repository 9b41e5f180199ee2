"""The ``@action`` decorator: handlers say which ``service.action`` they serve and from which key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Registration:
    endpoint: str
    since: str | None  # None: from the action's first version key
    handler: Handler


REGISTERED: list[Registration] = []


def action(endpoint: str, since: str | None = None) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        REGISTERED.append(Registration(endpoint, since, fn))
        return fn

    return register
