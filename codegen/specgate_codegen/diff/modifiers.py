"""Level modifiers, in the order of schema-diff §2.8: unreleased, internal, experimental, deprecation,
strict versions, per-rule overrides. Waivers come last and live in ``waivers``."""

from __future__ import annotations

from datetime import date

from specgate.core.ir import Api

from .compare import PinFinding, Released
from .model import rank
from .rules import SECURITY
from .settings import DiffSettings

_REMOVALS = ("action.removed", "req.prop.removed-open", "req.prop.removed-closed", "resp.prop.removed-required",
             "resp.prop.removed-optional", "version.removed")  # fmt: skip


def apply(found: list[PinFinding], base: Api, settings: DiffSettings, released: Released, today: date) -> list[PinFinding]:
    out = []
    for f in found:
        f.level = f.level or f.default_level
        attrs = _attributes(base, f.endpoint)
        if f.pin is not None and not released(f.endpoint, f.pin) or "unreleased" in f.tags:
            f.level = "info"
            f.tags.add("unreleased")
        security = "security" in f.tags or f.rule in SECURITY
        if attrs is not None and attrs.internal:
            f.tags.add("internal")
            cap = settings.internal_cap
            if cap != "none" and not security and rank(f.level) > rank(cap):
                f.level = cap
        if attrs is not None and attrs.stability == "experimental":
            f.tags.add("experimental")
            if not security:
                f.level = "info"
        if f.rule in _REMOVALS and (f.rule == "action.removed" and attrs is not None and attrs.deprecated or "deprecated" in f.tags):
            f.tags.add("deprecated")
            sunset = attrs.sunset if attrs is not None and f.rule == "action.removed" else None
            if sunset is not None:
                f.level = "info" if date.fromisoformat(sunset) <= today else "breaking"
            elif settings.deprecation_min_days == 0:
                f.level = "info"
        if settings.strict_versions and f.level != "info" and f.tags & {"existing-version", "existing-pin-reresolved"}:
            f.level = "breaking"
        override = settings.levels.get(f.rule)
        if override == "off":
            continue
        if override:
            f.level = override
        out.append(f)
    return out


def _attributes(api: Api, endpoint: str):
    sname, _, aname = endpoint.partition(".")
    service = api.services.get(sname)
    action = service.actions.get(aname) if service else None
    return action.attributes if action else None
