"""The fuzzed actions: every RPC action at its lowest, a middle and its highest version key, each with
its request schema's strategies and oracle."""

from __future__ import annotations

from fuzz.schemas import Oracle, Schemas, mutated
from specgate.core.versions import parse_pin
from specgate.runtime.tables import load

TABLES = load(drafts=False)


def _targets() -> list[tuple[str, str]]:
    out = []
    for name, endpoint in sorted(TABLES.endpoints.items()):
        serve = endpoint.routing.serve
        for pin in sorted({serve[0], serve[len(serve) // 2], serve[-1]}):
            out.append((name, str(pin)))
    return out


TARGETS = _targets()


class Target:
    """One action at one pin: its request schema's strategies and oracle."""

    _cache: dict[tuple[str, str], "Target"] = {}

    def __init__(self, name: str, pin: str):
        endpoint = TABLES.endpoints[name]
        entry = endpoint.versions[endpoint.routing.pick(parse_pin(pin))]
        key = entry.request or entry.batch_request
        schema = TABLES.schemas[key]
        self.name, self.path = name, f"/v{pin}/{name}"
        self.schemas = Schemas(schema)
        self.valid, self.mutated = self.schemas.valid(), mutated(self.schemas)
        self.oracle = Oracle(schema, TABLES.defaults.get(key))

    @classmethod
    def of(cls, name: str, pin: str) -> "Target":
        if (name, pin) not in cls._cache:
            cls._cache[(name, pin)] = cls(name, pin)
        return cls._cache[(name, pin)]
