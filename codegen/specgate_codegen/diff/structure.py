"""Findings only spec trees can give (a lock records neither inheritance nor unused definitions)."""

from __future__ import annotations

from specgate.core.versions import parse_key

from .compare import PinFinding
from .inputs import Side


def tree_findings(base: Side, head: Side) -> list[PinFinding]:
    if not (base.is_tree and head.is_tree):
        return []
    return rebased(base, head) + unused_definitions(base, head)


def rebased(base: Side, head: Side) -> list[PinFinding]:
    """Versions whose ``${}`` base changed; what they now contain is judged by the schema rules."""
    before, after = base.bases(), head.bases()
    return [
        PinFinding("version.rebased", endpoint, parse_key(key), old=before[(endpoint, key)], new=after[(endpoint, key)],
                   message=f"{key} now extends {after[(endpoint, key)]} (was {before[(endpoint, key)]})")
        for endpoint, key in sorted(set(before) & set(after))
        if before[(endpoint, key)] != after[(endpoint, key)]
    ]


def unused_definitions(base: Side, head: Side) -> list[PinFinding]:
    """Definitions no endpoint reaches, added or removed: no wire change, worth a line in the changelog."""
    old, new = _definitions(base), _definitions(head)
    out = []
    for (service, name), used in sorted(new.items()):
        if not used and (service, name) not in old:
            out.append(PinFinding("def.added-unused", service, None, location=f"/_definitions/{name}", new=name,
                                  message=f"definition {name} added; no endpoint uses it"))
    for (service, name), used in sorted(old.items()):
        if not used and (service, name) not in new:
            out.append(PinFinding("def.removed-unused", service, None, location=f"/_definitions/{name}", old=name,
                                  message=f"definition {name} removed; no endpoint used it"))
    return out


def _definitions(side: Side) -> dict[tuple[str, str], bool]:
    """(service, definition) → whether some endpoint version of the service reaches it."""
    out = {}
    for sname, located in side.located.items():
        service = side.api.services.get(sname)
        used: set[str] = set()
        for action in service.actions.values() if service else ():
            for v in action.versions:
                for schema in (v.request, v.response, v.batch_request and v.batch_request.item):
                    used |= set((schema or {}).get("definitions") or ())
        for name in located.tree.get("_definitions") or {}:
            out[(sname, name)] = name in used
    return out
