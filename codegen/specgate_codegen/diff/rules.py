"""Every rule ``specgate diff`` can report: stable id, default level and the reason, seen from a client
built against the old tree and pinned to a released version. ``specgate diff --rules`` prints this table.

Rules whose level depends on the case (``version.inserted`` takes the level of what re-resolves,
``attr.auth-optional`` is info for false → null and dangerous for true → null) list their usual level.
"""

from __future__ import annotations

from typing import NamedTuple


class Rule(NamedTuple):
    id: str
    level: str
    reason: str


_TABLE = """
service.added                     safe       nobody calls a new service yet
service.removed                   breaking   every call to every action of the service fails
action.added                      safe       a new capability; no existing call changes
action.removed                    breaking   calls that worked now fail (info once deprecated and past its sunset)
action.unavailable-for-pins       breaking   the lowest version key went away: pins below the new lowest key lose the action
version.added-unreleased          info       only pins no released client can send
version.inserted                  safe       pins in [new key, next key) re-resolve to the new version; judged by what changes for them
version.removed                   breaking   pins of the removed key fall back to its predecessor and lose what it added
version.released                  info       a draft key renamed to a real key above the released maximum
version.rebased                   info       a version's ${} base changed; what it now contains is judged by the schema rules
version.request-kind-changed      breaking   request <-> batch_request changes the payload shape the server expects
api.max-lowered                   breaking   pins above the new maximum are rejected outright
api.max-raised                    info       new pins only
http.binding-added                safe       a REST route now reaches the action; RPC callers see no change
http.binding-removed              breaking   REST clients of the route get 404
http.binding-changed              breaking   method, path, status, body or answer kind changed: the pinned REST client breaks
http.nulls-changed                dangerous  null in a body now clears a field, or is now ignored
attr.internal-set                 breaking   external clients lose access to the action
attr.internal-cleared             dangerous  nothing breaks, but exposure grows (security)
attr.auth-required                breaking   anonymous calls that worked now get an authorization error
attr.auth-relaxed                 dangerous  compatible, but the endpoint is now open (security)
attr.auth-optional                info       false -> null keeps anonymous callers working; true -> null opens the endpoint (dangerous, security)
attr.roles-narrowed               breaking   callers holding a dropped role are refused
attr.roles-widened                dangerous  compatible, but more principals can call it (security)
attr.deprecated-set               info       an announcement; it is what later allows a quiet removal
attr.deprecated-cleared           info       an announcement withdrawn
attr.sunset-earlier               dangerous  clients planned against the announced date
attr.sunset-removed               info       no removal date any more
attr.stability-lowered            breaking   withdraws a compatibility promise
attr.stability-raised             info       from here on the full rules apply
req.prop.added-optional           safe       old payloads do not contain it and stay valid
req.prop.added-required           breaking   every old payload lacks it
req.prop.added-required-defaulted safe       the gateway injects the default, so old payloads pass (breaking when it does not)
req.prop.removed-closed           breaking   the object rejects unknown keys, so old payloads that send it are rejected
req.prop.removed-open             dangerous  still accepted, but the server may now ignore a field the client relies on
req.prop.now-required             breaking   old payloads that omit it fail
req.prop.now-optional             safe       accepts more
req.type.narrowed                 breaking   values of the dropped type are now rejected
req.type.widened                  safe       accepts more
req.type.changed                  breaking   old values are invalid
req.enum.value-added              safe       accepts more
req.enum.value-removed            breaking   clients sending the value are rejected
req.enum.introduced               breaking   values outside the list are rejected
req.enum.dropped                  safe       accepts more
req.const.introduced              breaking   every other value is rejected
req.const.changed                 breaking   the old value is rejected
req.const.dropped                 safe       accepts more
req.default.added                 info       documents the behaviour when the field is omitted
req.default.changed               dangerous  old clients that omit the field get different behaviour with no error
req.default.removed               dangerous  behaviour on omission becomes unspecified
req.bound.tightened               breaking   previously valid values fall outside the new range
req.bound.introduced              breaking   the accepted set shrinks
req.bound.loosened                safe       accepts more
req.pattern.introduced            dangerous  narrows in principle; regex containment needs a human
req.pattern.changed               dangerous  narrows in principle; regex containment needs a human
req.pattern.dropped               safe       accepts more
req.format.introduced             dangerous  narrows where formats are enforced (breaking with formats_enforced)
req.format.changed                dangerous  narrows where formats are enforced (breaking with formats_enforced)
req.format.dropped                safe       accepts more
req.extra.closed                  breaking   payloads with extra keys are rejected
req.extra.opened                  safe       accepts more
req.extra.narrowed                breaking   map values that were valid are rejected
req.extra.widened                 safe       accepts more map values
req.deps.added                    breaking   adds a co-occurrence requirement
req.deps.removed                  safe       removes a co-occurrence requirement
req.anyof.branch-added            safe       the union grows
req.anyof.branch-removed          breaking   payloads of that shape are rejected
req.oneof.branch-added            dangerous  a payload matching one branch may now match two and fail oneOf
req.oneof.branch-removed          breaking   payloads of that shape are rejected
req.allof.member-added            breaking   the intersection shrinks
req.allof.member-removed          safe       the intersection grows
req.other-changed                 dangerous  a keyword without a finer rule (not, if/then/else, patternProperties, ...) changed
resp.prop.added                   safe       tolerant readers ignore it
resp.prop.added-closed            dangerous  clients validating against the old closed schema reject the payload
resp.prop.removed-required        breaking   client code dereferencing the guaranteed field fails
resp.prop.removed-optional        dangerous  not guaranteed, but clients usually read what is there: silent data loss
resp.prop.moved                   dangerous  the same schema removed at one place and added at another: one refactor
resp.prop.now-optional            breaking   a guarantee is withdrawn
resp.prop.now-required            safe       a stronger guarantee
resp.type.narrowed                safe       old clients already handle the remaining types
resp.type.widened                 breaking   typed clients cannot read a type they were told would never come
resp.type.changed                 breaking   old parsers fail
resp.enum.value-added             dangerous  exhaustive switches and strict enum decoders meet an unknown value
resp.enum.value-removed           safe       a subset of what clients handle
resp.enum.introduced              safe       output narrows
resp.enum.dropped                 dangerous  output widens
resp.const.introduced             safe       output narrows
resp.const.changed                breaking   the promised value changes
resp.const.dropped                dangerous  the value may now vary
resp.bound.loosened               dangerous  client buffers, validators or assumptions may break
resp.bound.tightened              safe       output narrows
resp.extra.opened                 dangerous  unknown keys may arrive
resp.extra.closed                 safe       fewer keys
resp.extra.widened                dangerous  map values widen (breaking when a new JSON type appears)
resp.extra.narrowed               safe       map values narrow
resp.anyof.branch-added           dangerous  clients see shapes they were not told about (breaking with a new JSON type)
resp.anyof.branch-removed         safe       narrowing
resp.oneof.branch-added           dangerous  clients see shapes they were not told about (breaking with a new JSON type)
resp.oneof.branch-removed         safe       narrowing
resp.allof.member-added           safe       the intersection shrinks
resp.allof.member-removed         dangerous  the intersection grows
resp.default.added                info       defaults do not change what is sent
resp.default.changed              info       defaults do not change what is sent
resp.default.removed              info       defaults do not change what is sent
resp.deps.added                   safe       output narrows
resp.deps.removed                 dangerous  output widens
resp.other-changed                dangerous  a keyword without a finer rule (not, if/then/else, patternProperties, ...) changed
ref.renamed                       info       $ref names another definition with identical content: no wire change
def.added-unused                  info       no endpoint uses the definition
def.removed-unused                info       no endpoint used the definition
doc.description-added             info       documentation only
doc.description-changed           info       documentation only (whitespace-only differences are not reported)
doc.description-removed           info       documentation only
doc.other-changed                 info       title, examples or a service description: documentation only
lint.unknown-keyword              info       a key that is no JSON Schema keyword (a typo is silently ignored by validators)
lint.stray-version-key            info       a key next to request/response that nothing reads (usually a misplaced property)
lint.properties-misplaced         info       a sub-schema written directly in an object schema instead of under properties
lint.version-no-op                dangerous  a new version key equal to its predecessor: the author meant to add something
lint.version-skips-predecessor    dangerous  a version drops what its predecessor added: clients raising their pin lose fields
lint.duplicate-key                info       the same key twice in one object is merged silently and hides which one wins
lint.required-with-default        info       required and defaulted at once: say optional + default
lint.deprecated-in-prose          info       the description says deprecated/obsolete but the item is not marked deprecated
"""

RULES: dict[str, Rule] = {}
for _line in _TABLE.strip().splitlines():
    _id, _level, _reason = _line.split(None, 2)
    RULES[_id] = Rule(_id, _level, _reason)

SECURITY = {"attr.internal-cleared", "attr.auth-relaxed", "attr.roles-widened"}
"""Rules tagged ``security``: never capped by the internal or experimental modifiers."""

HINTS = {
    "req": "Keep the old schema in existing versions and make the change in a new version key.",
    "resp": "Keep existing versions' responses as they were; change the shape in a new version key.",
    "action.removed": "Mark the action deprecated with a sunset date first; remove it after the sunset.",
    "version.removed": "Keep released version keys; add a new key instead.",
    "attr": "Attribute changes reach every pin; review who can call the endpoint now.",
}


def hint(rule: str) -> str | None:
    for prefix in (rule, rule.split(".")[0]):
        if prefix in HINTS:
            return HINTS[prefix]
    return None


def render_table(as_json: bool = False) -> str:
    if as_json:
        from specgate.core import canonical

        rows = [{"rule": r.id, "level": r.level, "reason": r.reason} for r in RULES.values()]
        return canonical.dumps(rows, indent=2) + "\n"
    width = max(len(r) for r in RULES)
    return "".join(f"{r.id:<{width}}  {r.level:<9}  {r.reason}\n" for r in RULES.values())
