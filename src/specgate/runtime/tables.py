"""Load the generated dispatch and validator tables once, and refuse a half-regenerated tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson

from specgate.core.versions import Routing, Version, parse_key, routable


@dataclass(frozen=True)
class VersionEntry:
    key: str
    draft: bool
    response: str
    request: str | None
    batch_request: str | None


@dataclass(frozen=True)
class Endpoint:
    name: str
    internal: bool
    authorize: bool  # a token is required (``authorize: null`` or ``false`` only checks one when sent)
    allow_roles: tuple[str, ...]
    versions: dict[Version, VersionEntry]
    routing: Routing


@dataclass(frozen=True)
class Tables:
    digest: str
    max_version: Version
    endpoints: dict[str, Endpoint]
    schemas: dict[str, Any]
    defaults: dict[str, Any]
    dialects: dict[str, Any] = field(default_factory=dict)  # REST dialect profiles with their route tables


def _read(name: str) -> dict[str, Any]:
    return orjson.loads(resources.files("specgate._generated").joinpath(name).read_bytes())


def load(*, drafts: bool = False, dispatch: dict | None = None, validators: dict | None = None) -> Tables:
    """Build the tables from ``_generated/`` (or from given table data, for tests)."""
    from specgate import _generated

    digests = {_generated.DIGEST} if dispatch is None else set()
    dispatch = dispatch if dispatch is not None else _read("dispatch.json")
    validators = validators if validators is not None else _read("validators.json")
    if len(digests | {dispatch["digest"], validators["digest"]}) != 1:
        raise RuntimeError("generated tables disagree (half-regenerated tree): run `make generate`")
    max_version = parse_key(dispatch["max_version"])
    endpoints = {}
    for name, e in dispatch["endpoints"].items():
        versions = {
            parse_key(v["key"]): VersionEntry(v["key"], v["draft"], v["response"], v.get("request"), v.get("batch_request"))
            for v in e["versions"]
        }
        a = e["attributes"]
        pairs = routable(sorted(versions), drafts=drafts, max_version=max_version)
        endpoints[name] = Endpoint(name, a["internal"], a["authorize"] is True, tuple(a["allow_roles"]), versions, Routing(pairs))
    return Tables(
        dispatch["digest"], max_version, endpoints, validators["schemas"], validators["defaults"], dispatch.get("dialects", {})
    )
