"""The compiled API as plain frozen data: what the lock file records and every emitter reads.

``Api`` → ``Service`` → ``Action`` (attributes, versions ascending) → ``EndpointVersion``. Schemas are
*effective*: ``${}`` inheritance applied, ``$schema`` set, and the closure of the definitions they
reference carried under ``definitions``, so each one validates on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .versions import Version

Schema = dict[str, Any]


@dataclass(frozen=True)
class Source:
    """Where a piece of the spec was written (for diagnostics and diff annotations); not in the lock."""

    file: str
    line: int


@dataclass(frozen=True)
class Attributes:
    """Who may call an action, and its lifecycle. ``authorize=None`` checks a token when one is sent
    and never requires one (ClearML's ``authorize: null``); ``sunset`` is an ISO date."""

    internal: bool = False
    authorize: bool | None = True
    allow_roles: tuple[str, ...] = ("*",)
    deprecated: bool = False
    sunset: str | None = None
    stability: str = "stable"  # stable | experimental

    def lifecycle(self) -> dict:
        """The lifecycle attributes that differ from their defaults (the lock records only those)."""
        out: dict = {}
        if self.deprecated:
            out["deprecated"] = True
        if self.sunset is not None:
            out["sunset"] = self.sunset
        if self.stability != "stable":
            out["stability"] = self.stability
        return out


@dataclass(frozen=True)
class BatchRequest:
    """A json-lines endpoint: each line is validated like ``action``'s request (``version`` as written)."""

    action: str
    version: str
    item: Schema


@dataclass(frozen=True)
class EndpointVersion:
    key: Version
    response: Schema
    request: Schema | None = None
    batch_request: BatchRequest | None = None
    description: str = ""
    source: Source | None = field(default=None, compare=False)

    @property
    def draft(self) -> bool:
        return self.key.is_draft


@dataclass(frozen=True)
class Action:
    name: str
    attributes: Attributes
    versions: tuple[EndpointVersion, ...]
    source: Source | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Service:
    name: str
    actions: dict[str, Action]
    description: str = ""


@dataclass(frozen=True)
class Api:
    digest: str
    max_version: Version
    services: dict[str, Service]

    def endpoints(self):
        """Every (``service.action`` name, Action), sorted by name."""
        for sname in sorted(self.services):
            actions = self.services[sname].actions
            for aname in sorted(actions):
                yield f"{sname}.{aname}", actions[aname]
