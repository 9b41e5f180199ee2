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
class HttpBinding:
    """How a REST dialect reaches this endpoint version: one more transport for the same action.

    ``path`` is relative to the dialect's mount, with typed parameters ``{name:type}``; ``kind`` says what
    the body of a success is (``list`` items are rendered into the dialect's pagination envelope).
    """

    method: str
    path: str
    status: int = 200
    body: str = "json"  # json | none | multipart | json-or-array
    kind: str = "object"  # object | list | array | none
    pagination: str | None = None  # page_number | offset_limit | token_body
    nulls: str = "drop"  # drop | keep (PATCH: null clears a field)

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path, "status": self.status, "body": self.body,
                               "kind": self.kind, "nulls": self.nulls}  # fmt: skip
        if self.pagination:
            out["pagination"] = self.pagination
        return out


@dataclass(frozen=True)
class Dialect:
    """A REST dialect's conventions, written once in ``schemas/dialects/<name>.conf``."""

    name: str
    mount: str
    pin: Version
    aliases: tuple[str, ...] = ()
    ids: str = "uuid"
    auth_schemes: tuple[str, ...] = ("bearer",)
    anonymous: tuple[str, ...] = ()
    errors: str = "message"  # detail | message | message_errors
    validation_status: int = 400
    trailing_slash: str = "exact"  # exact | optional | required

    def to_data(self) -> dict[str, Any]:
        return {
            "mount": self.mount, "aliases": list(self.aliases), "pin": str(self.pin), "ids": self.ids,
            "auth": {"schemes": list(self.auth_schemes), "anonymous": list(self.anonymous)},
            "errors": self.errors, "validation_status": self.validation_status, "trailing_slash": self.trailing_slash,
        }  # fmt: skip


@dataclass(frozen=True)
class EndpointVersion:
    key: Version
    response: Schema
    request: Schema | None = None
    batch_request: BatchRequest | None = None
    http: HttpBinding | None = None
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
    dialect: str | None = None  # the REST dialect its http bindings belong to


@dataclass(frozen=True)
class Api:
    digest: str
    max_version: Version
    services: dict[str, Service]
    dialects: dict[str, Dialect] = field(default_factory=dict)

    def endpoints(self):
        """Every (``service.action`` name, Action), sorted by name."""
        for sname in sorted(self.services):
            actions = self.services[sname].actions
            for aname in sorted(actions):
                yield f"{sname}.{aname}", actions[aname]
