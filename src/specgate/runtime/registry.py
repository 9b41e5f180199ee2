"""Bind registered handlers to the compiled endpoints, and pick one per call by the floor rule."""

from __future__ import annotations

import importlib

from specgate.core.versions import Version, floor, parse_key
from specgate.handlers import MODULES
from specgate.handlers.registry import REGISTERED, Handler

from .tables import Tables


class Handlers:
    def __init__(self, tables: Tables):
        for module in MODULES:
            importlib.import_module(f"specgate.handlers.{module}")
        bound: dict[str, dict[Version, Handler]] = {}
        problems = []
        for reg in REGISTERED:
            endpoint = tables.endpoints.get(reg.endpoint)
            if endpoint is None:
                problems.append(f"{reg.handler.__qualname__} serves {reg.endpoint}, which the specs do not have")
                continue
            since = parse_key(reg.since) if reg.since else min(endpoint.versions)
            if since not in endpoint.versions:
                problems.append(f"{reg.handler.__qualname__} serves {reg.endpoint} from {since}, not a key of it")
            elif since in bound.setdefault(reg.endpoint, {}):
                problems.append(f"two handlers serve {reg.endpoint} from {since}")
            else:
                bound[reg.endpoint][since] = reg.handler
        if problems:
            raise RuntimeError("handler registry does not match the specs:\n  " + "\n  ".join(problems))
        self._keys = {name: sorted(by_key) for name, by_key in bound.items()}
        self._handlers = bound

    def pick(self, endpoint: str, actual: Version) -> Handler | None:
        """The handler serving ``endpoint`` at its resolved version key, or None (not implemented)."""
        keys = self._keys.get(endpoint)
        if not keys:
            return None
        since = floor(keys, actual)
        return None if since is None else self._handlers[endpoint][since]


def routes(tables: Tables, handlers: Handlers) -> list[tuple[str, str, bool, str]]:
    """Every (endpoint, version key, draft, handler name or "") the compiled specs define, in order."""
    out = []
    for name in sorted(tables.endpoints):
        endpoint = tables.endpoints[name]
        for key in sorted(endpoint.versions):
            fn = handlers.pick(name, key)
            where = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}" if fn else ""
            out.append((name, str(key), endpoint.versions[key].draft, where))
    return out
