"""Compare two compiled APIs pin point by pin point (schema-diff §2.1–2.3).

For an action, the pin points are the union of its version keys on both sides; what a pin resolves to
(the floor rule) only changes at those keys, so diffing old(k) against new(k) for each of them is
exhaustive. Each change is recorded per pin, with tags saying whether the pin was released and whether it
kept its key (``existing-version``) or moved to another (``existing-pin-reresolved``); ``modifiers``
turns those facts into levels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specgate.core import canonical
from specgate.core.ir import Action, Api, Attributes, EndpointVersion, HttpBinding
from specgate.core.versions import Version, floor

from .model import Finding, worst
from .rules import RULES, SECURITY
from .schemadiff import Change, SchemaDiff
from .settings import DiffSettings


@dataclass
class PinFinding:
    """A change seen at one pin point, before levels are adjusted and pins are collapsed."""

    rule: str
    endpoint: str
    pin: Version | None
    direction: str | None = None
    location: str = ""
    old: Any = None
    new: Any = None
    message: str = ""
    root_cause: str | None = None
    level: str | None = None
    tags: set[str] = field(default_factory=set)
    hint: str | None = None

    @property
    def default_level(self) -> str:
        return RULES[self.rule].level


class Comparison:
    def __init__(self, base: Api, head: Api, settings: DiffSettings, released: "Released"):
        self.base, self.head, self.settings, self.released = base, head, settings, released
        self.found: list[PinFinding] = []

    def run(self) -> list[PinFinding]:
        self._api()
        for sname in sorted(set(self.base.services) | set(self.head.services)):
            old, new = self.base.services.get(sname), self.head.services.get(sname)
            if old is None or new is None:
                self._service(sname, old is None, (old or new).actions)
                continue
            for aname in sorted(set(old.actions) | set(new.actions)):
                self._action(f"{sname}.{aname}", old.actions.get(aname), new.actions.get(aname))
        return self.found

    def _add(self, rule: str, endpoint: str, pin: Version | None, **kw: Any) -> PinFinding:
        f = PinFinding(rule, endpoint, pin, **kw)
        self.found.append(f)
        return f

    def _api(self) -> None:
        old, new = self.base.max_version, self.head.max_version
        if new < old:  # the pins lost are (new, old]; the old maximum stands for them
            self._add("api.max-lowered", "", old, old=str(old), new=str(new), message=f"max API version {old} → {new}")
        elif new > old:
            self._add("api.max-raised", "", new, old=str(old), new=str(new), message=f"max API version {old} → {new}")

    def _service(self, sname: str, added: bool, actions: dict[str, Action]) -> None:
        keys = sorted({v.key for a in actions.values() for v in a.versions})
        rule = "service.added" if added else "service.removed"
        released = any(self.released(f"{sname}.{a}", v.key) for a, act in actions.items() for v in act.versions)
        f = self._add(rule, sname, None, message=f"service {sname} {'added' if added else 'removed'}")
        f.old, f.new = (None, [str(k) for k in keys]) if added else ([str(k) for k in keys], None)
        if not released:
            f.tags.add("unreleased")

    def _action(self, endpoint: str, old: Action | None, new: Action | None) -> None:
        if old is None or new is None:
            action = old or new
            keys = [v.key for v in action.versions]
            rule = "action.added" if old is None else "action.removed"
            for key in keys:
                f = self._add(rule, endpoint, key, message=f"{endpoint} {'added' if old is None else 'removed'}")
                if old is not None and old.attributes.deprecated:
                    f.tags.add("deprecated")
            return
        okeys, nkeys = [v.key for v in old.versions], [v.key for v in new.versions]
        oby, nby = {v.key: v for v in old.versions}, {v.key: v for v in new.versions}
        drafts_renamed = self._versions(endpoint, okeys, nkeys, oby, nby)
        for pin in sorted(set(okeys) | set(nkeys)):
            ok, nk = floor(okeys, pin), floor(nkeys, pin)
            if ok is None:
                continue  # the pin gained the action: reported by the version rules
            if nk is None:
                self._add("action.unavailable-for-pins", endpoint, pin, old=str(ok),
                          message=f"{endpoint} no longer exists for pin {pin} (lowest key is now {nkeys[0]})")
                continue
            if (ok, nk) in drafts_renamed or (nk not in oby and not self.released(endpoint, nk)):
                continue  # a release step, or a new unreleased version: its version finding says it all
            tag = "existing-version" if ok == nk else "existing-pin-reresolved"
            self._http(endpoint, pin, oby[ok].http, nby[nk].http, tag)
            for c in self._schemas(oby[ok], nby[nk]):
                self._add(c.rule, endpoint, pin, direction=_direction(c.location), location=c.location,
                          old=c.old, new=c.new, message=c.message, root_cause=c.root_cause, level=c.level,
                          tags={tag, *c.tags}, hint=c.hint)
        self._attributes(endpoint, old.attributes, new.attributes, sorted(set(okeys) & set(nkeys)) or nkeys[:1])

    def _versions(self, endpoint, okeys, nkeys, oby, nby) -> set[tuple[Version, Version]]:
        """Keys added, removed or renamed from a draft; returns the (draft, new key) renames."""
        renamed: set[tuple[Version, Version]] = set()
        gone = [k for k in okeys if k not in nby]
        for key in [k for k in nkeys if k not in oby]:
            draft = next((d for d in gone if d.is_draft and not key.is_draft and _content(oby[d]) == _content(nby[key])), None)
            before = floor(okeys, key)
            if draft is not None:
                renamed.add((draft, key))
                gone.remove(draft)
                f = self._add("version.released", endpoint, key, old=str(draft), new=str(key),
                              message=f"draft {draft} released as {key}")
                if self.released(endpoint, key):  # released at a number clients already use
                    if before is None:
                        f.rule, f.old, f.message = "action.added", None, f"{endpoint} added (draft {draft} released as {key})"
                    else:
                        f.rule, f.old = "version.inserted", str(before)
                        f.tags.add("existing-pin-reresolved")
                        f.level = self._effective_level(oby[before], nby[key])
                continue
            if key.is_draft or key > self.released.ceiling(endpoint):
                self._add("version.added-unreleased", endpoint, key, new=str(key), message=f"new version {key} (unreleased)")
                continue
            effective = self._effective_level(oby[before], nby[key]) if before else "safe"
            f = self._add("version.inserted", endpoint, key, old=str(before) if before else None, new=str(key), level=effective,
                          message=f"pins from {key} now resolve to {key}" + (f" instead of {before}" if before else ""))
            if before is not None:
                f.tags.add("existing-pin-reresolved")
        lowest_new = nkeys[0] if nkeys else None
        for key in gone:
            if lowest_new is not None and key < lowest_new:
                continue  # reported per pin as action.unavailable-for-pins
            after = floor(nkeys, key)
            self._add("version.removed", endpoint, key, old=str(key), new=str(after),
                      level=self._effective_level(oby[key], nby[after]),
                      message=f"version {key} removed: its pins fall back to {after}")
        for key in [k for k in okeys if k in nby]:
            ov, nv = oby[key], nby[key]
            if (ov.request is None) != (nv.request is None):
                self._add("version.request-kind-changed", endpoint, key, old=_kind(ov), new=_kind(nv),
                          message=f"{_kind(ov)} → {_kind(nv)}", tags={"existing-version"})
        return renamed

    def _http(self, endpoint: str, pin: Version, old: HttpBinding | None, new: HttpBinding | None, tag: str) -> None:
        """A REST binding is part of the contract of its version, like the schemas."""
        if old == new:
            return
        before, after = old and old.to_data(), new and new.to_data()
        if old is None or new is None:
            rule = "http.binding-added" if old is None else "http.binding-removed"
            self._add(rule, endpoint, pin, location="/http", old=before, new=after, tags={tag},
                      message=f"{(new or old).method} {(new or old).path} {'added' if old is None else 'removed'}")
            return
        changed = sorted(k for k in before if k != "nulls" and before.get(k) != after.get(k))
        changed += sorted(k for k in after if k not in before)
        if changed:
            self._add("http.binding-changed", endpoint, pin, location="/http", old=before, new=after, tags={tag},
                      message=f"{old.method} {old.path} → {new.method} {new.path} ({', '.join(changed)} changed)")
        if old.nulls != new.nulls:
            self._add("http.nulls-changed", endpoint, pin, location="/http/nulls", old=old.nulls, new=new.nulls, tags={tag},
                      message=f"nulls {old.nulls} → {new.nulls}")

    def _effective_level(self, old: EndpointVersion, new: EndpointVersion) -> str:
        changes = self._schemas(old, new)
        return worst((c.level or RULES[c.rule].level for c in changes if not c.rule.startswith("doc.")), "info")

    def _schemas(self, old: EndpointVersion, new: EndpointVersion) -> list[Change]:
        if _content(old) == _content(new):
            return []
        out: list[Change] = []
        s = self.settings
        if old.request is not None and new.request is not None:
            out += SchemaDiff(old.request, new.request, "request", "/request", s).run()
        elif old.batch_request is not None and new.batch_request is not None:
            out += SchemaDiff(old.batch_request.item, new.batch_request.item, "request", "/batch_request/item", s).run()
        out += SchemaDiff(old.response, new.response, "response", "/response", s).run()
        return out

    def _attributes(self, endpoint: str, old: Attributes, new: Attributes, pins: list[Version]) -> None:
        def add(rule: str, name: str, before: Any, after: Any, message: str, level: str | None = None) -> None:
            for pin in pins:
                f = self._add(rule, endpoint, pin, location=f"/attributes/{name}", old=before, new=after, message=message, level=level)
                if rule in SECURITY or (level == "dangerous" and rule == "attr.auth-optional"):
                    f.tags.add("security")

        if old.internal != new.internal:
            add("attr.internal-set" if new.internal else "attr.internal-cleared", "internal", old.internal, new.internal,
                "now internal" if new.internal else "now public")
        if old.authorize != new.authorize:
            a, b = old.authorize, new.authorize
            if b is True:
                add("attr.auth-required", "authorize", a, b, "now requires authorization")
            elif a is True and b is False:
                add("attr.auth-relaxed", "authorize", a, b, "no longer requires authorization")
            else:
                add("attr.auth-optional", "authorize", a, b, "a token is checked when sent, never required",
                    "dangerous" if a is True else "info")
        oroles, nroles = set(old.allow_roles), set(new.allow_roles)
        if oroles != nroles:
            open_before, open_after = "*" in oroles, "*" in nroles
            lost = ["*"] if open_before and not open_after else [] if open_before or open_after else sorted(oroles - nroles)
            gained = ["*"] if open_after and not open_before else [] if open_before or open_after else sorted(nroles - oroles)
            if lost:
                add("attr.roles-narrowed", "allow_roles", sorted(oroles), sorted(nroles), f"roles dropped: {', '.join(lost)}")
            if gained:
                add("attr.roles-widened", "allow_roles", sorted(oroles), sorted(nroles), f"roles added: {', '.join(gained)}")
        if old.deprecated != new.deprecated:
            add("attr.deprecated-set" if new.deprecated else "attr.deprecated-cleared", "deprecated", old.deprecated, new.deprecated,
                "action deprecated" if new.deprecated else "action no longer deprecated")
        if old.sunset != new.sunset:
            if new.sunset is None:
                add("attr.sunset-removed", "sunset", old.sunset, None, "sunset date removed")
            elif old.sunset is not None and new.sunset < old.sunset:
                add("attr.sunset-earlier", "sunset", old.sunset, new.sunset, f"sunset moved earlier to {new.sunset}")
        if old.stability != new.stability:
            lowered = new.stability == "experimental"
            add("attr.stability-lowered" if lowered else "attr.stability-raised", "stability", old.stability, new.stability,
                f"stability {old.stability} → {new.stability}")


class Released:
    """Which pins shipped: at or below the released maximum, not a draft, and in the release lock if any."""

    def __init__(self, maximum: Version, release_lock: Api | None, base: Api | None = None):
        self.maximum = maximum
        self.lock = release_lock
        # a REST dialect's clients send no version: what they get is fixed by the dialect's pin
        self.dialect_max = {
            name: base.dialects[s.dialect].pin
            for name, s in (base.services.items() if base else ())
            if s.dialect and s.dialect in base.dialects
        }  # fmt: skip

    def ceiling(self, endpoint: str) -> Version:
        """The highest released pin of an endpoint: the released maximum, or its dialect's pin."""
        return self.dialect_max.get(endpoint.split(".")[0], self.maximum)

    def __call__(self, endpoint: str, pin: Version | None) -> bool:
        if pin is None:
            return True
        if pin.is_draft or pin > self.ceiling(endpoint):
            return False
        if self.lock is None or not endpoint:
            return True
        sname, _, aname = endpoint.partition(".")
        action = self.lock.services.get(sname, None)
        action = action.actions.get(aname) if action else None
        return action is not None and any(v.key <= pin for v in action.versions)


def _content(v: EndpointVersion) -> str:
    batch = v.batch_request and (v.batch_request.action, v.batch_request.item)
    return canonical.dumps([v.request, batch, v.response, v.http and v.http.to_data()])


def _kind(v: EndpointVersion) -> str:
    return "request" if v.request is not None else "batch_request"


def _direction(location: str) -> str | None:
    if location.startswith(("/request", "/batch_request")):
        return "request"
    if location.startswith("/response"):
        return "response"
    return None


def to_findings(found: list[PinFinding]) -> list[Finding]:
    """Collapse identical findings on several pins of one endpoint into one record with a pin list."""
    groups: dict[str, Finding] = {}
    for f in found:
        level = f.level or f.default_level
        tags = sorted(f.tags)
        key = canonical.dumps([f.rule, level, f.direction, f.endpoint, f.location, f.old, f.new, f.root_cause, tags, f.message])
        pin = [str(f.pin)] if f.pin is not None else []
        if key in groups:
            groups[key].pins = sorted(set(groups[key].pins) | set(pin), key=lambda p: tuple(map(int, p.split("."))))
            continue
        groups[key] = Finding(
            rule=f.rule, level=level, direction=f.direction, endpoint=f.endpoint, pins=pin, location=f.location,
            old=f.old, new=f.new, message=f.message, root_cause=f.root_cause, tags=tags, default_level=f.default_level,
            hint=f.hint,
        )
    return list(groups.values())
