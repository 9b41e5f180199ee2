"""Diff two effective JSON Schemas in one direction: request (what the server accepts) or response (what
the client reads). The same structural edit gets opposite levels in the two directions (schema-diff §2.9).

Schemas are walked with ``$ref`` inlined, so locations are pointers into the effective endpoint schema and
an inline ↔ ``$ref`` refactor with identical content reports nothing. A change met inside a definition
that both sides reach under the same name gets that definition as its ``root_cause``. Recursive
definitions are walked once per (old, new) pair on the current path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specgate.core import canonical

from .settings import DiffSettings

_DEFS = "#/definitions/"
LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
OTHER = (
    "not", "if", "then", "else", "patternProperties", "propertyNames", "contains", "additionalItems",
    "dependentRequired", "dependentSchemas", "minContains", "maxContains", "unevaluatedProperties",
)  # fmt: skip
DOCS = ("title", "examples")


@dataclass
class Change:
    rule: str
    location: str
    old: Any = None
    new: Any = None
    message: str = ""
    root_cause: str | None = None
    level: str | None = None  # set where the level depends on the case; else the rule's default
    tags: list[str] = field(default_factory=list)
    subject: Any = None  # the removed or added property schema (pairs removals with additions: moves)
    hint: str | None = None


def _types(node: dict) -> frozenset[str] | None:
    """The set of JSON types a node accepts (``integer`` ⊂ ``number``), or None for any.

    Without ``type``, a ``const`` or ``enum`` still limits the types to those of its values.
    """
    t = node.get("type")
    if t is None:
        if "const" in node:
            return frozenset({_json_type(node["const"])})
        if isinstance(node.get("enum"), list):
            return frozenset(_json_type(v) for v in node["enum"])
        return None
    names = {t} if isinstance(t, str) else set(t)
    if "number" in names:
        names.add("integer")
    return frozenset(names)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "object")


def _ap(node: dict) -> str:
    value = node.get("additionalProperties", True)
    return "closed" if value is False else "map" if isinstance(value, dict) else "open"


def _prose(text: Any) -> str:
    return " ".join(str(text).split())


def _same(a: Any, b: Any) -> bool:
    return canonical.dumps(a) == canonical.dumps(b)


class SchemaDiff:
    """One endpoint version's request or response: ``SchemaDiff(...).run()`` → changes."""

    def __init__(self, old: dict, new: dict, direction: str, prefix: str, settings: DiffSettings):
        self.d = "req" if direction == "request" else "resp"
        self.prefix = prefix
        self.settings = settings
        self.old_root, self.new_root = old, new
        self.old_defs = old.get("definitions") or {}
        self.new_defs = new.get("definitions") or {}
        self.same_defs = _same(self.old_defs, self.new_defs)
        self.changes: list[Change] = []

    def run(self) -> list[Change]:
        self._node(self.old_root, self.new_root, self.prefix, None, frozenset(), top=True)
        if self.d == "resp":
            self._pair_moves()
        return self.changes

    # -- helpers -------------------------------------------------------------------------------------
    def _add(self, rule: str, at: str, old: Any = None, new: Any = None, message: str = "", **kw: Any) -> None:
        self.changes.append(Change(f"{self.d}.{rule}" if not rule.startswith(("doc.", "attr.", "ref.")) else rule,
                                   at, old, new, message, **kw))

    def _deref(self, node: Any, defs: dict) -> tuple[Any, str | None]:
        name = None
        for _ in range(32):
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not (isinstance(ref, str) and ref.startswith(_DEFS)) or ref[len(_DEFS):] not in defs:
                break
            name = ref[len(_DEFS):]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            node = {**defs[name], **extra} if extra else defs[name]
        return node, name

    def _unchanged(self, o: dict, n: dict, equal: bool) -> bool:
        """Equal nodes are unchanged unless they reach definitions that differ between the sides."""
        return equal and (self.same_defs or "$ref" not in canonical.dumps(o))

    # -- the walk ------------------------------------------------------------------------------------
    def _node(self, o: Any, n: Any, at: str, rc: tuple[str, str] | None, seen: frozenset, top: bool = False) -> None:
        if not (isinstance(o, dict) and isinstance(n, dict)):
            if not _same(o, n):
                self._add("other-changed", at, o, n, "schema is not an object on one side", root_cause=_rc(rc))
            return
        if self._unchanged(o, n, o == n):
            return
        o_ref, n_ref = o.get("$ref"), n.get("$ref")
        o, o_name = self._deref(o, self.old_defs)
        n, n_name = self._deref(n, self.new_defs)
        if o_name and n_name:
            if (o_name, n_name) in seen:
                return
            seen = seen | {(o_name, n_name)}
            if o_name == n_name:
                rc = (o_name, "")
            elif _same(o, n):
                self._add("ref.renamed", at, o_ref, n_ref, f"$ref now names {n_name} (same content as {o_name})")
                return
        if self._unchanged(o, n, _same(o, n)):
            return
        cause = _rc(rc)
        if self._types(o, n, at, cause):
            return  # disjoint types: what lies below no longer compares
        self._values(o, n, at, cause)
        self._bounds(o, n, at, cause)
        self._extra(o, n, at, rc, seen, top)
        self._properties(o, n, at, rc, seen, top)
        self._items(o, n, at, rc, seen)
        for word in ("anyOf", "oneOf", "allOf"):
            self._composition(word, o, n, at, rc, seen)
        self._dependencies(o, n, at, cause)
        self._docs(o, n, at, cause)
        for word in OTHER:
            if not _same(o.get(word), n.get(word)):
                self._add("other-changed", f"{at}/{word}", o.get(word), n.get(word), f"{word} changed", root_cause=cause)

    def _types(self, o: dict, n: dict, at: str, cause: str | None) -> bool:
        a, b = _types(o), _types(n)
        if a == b:
            return False
        if a is None or (b is not None and b < a):
            kind = "narrowed"
        elif b is None or a < b:
            kind = "widened"
        else:
            kind = "changed"
        old, new = o.get("type"), n.get("type")
        self._add(f"type.{kind}", f"{at}/type", old, new, f"type {_show(old)} → {_show(new)}", root_cause=cause)
        return a is not None and b is not None and not (a & b)

    def _values(self, o: dict, n: dict, at: str, cause: str | None) -> None:
        oe, ne = o.get("enum"), n.get("enum")
        if oe is None and ne is not None:
            self._add("enum.introduced", f"{at}/enum", None, ne, f"values limited to {_show(ne)}", root_cause=cause)
        elif oe is not None and ne is None:
            self._add("enum.dropped", f"{at}/enum", oe, None, "any value allowed (enum removed)", root_cause=cause)
        elif oe is not None and ne is not None:
            old_keys, new_keys = {canonical.dumps(v) for v in oe}, {canonical.dumps(v) for v in ne}
            if added := [v for v in ne if canonical.dumps(v) not in old_keys]:
                self._add("enum.value-added", f"{at}/enum", oe, ne, f"new value(s) {_show(added)}", root_cause=cause)
            if removed := [v for v in oe if canonical.dumps(v) not in new_keys]:
                self._add("enum.value-removed", f"{at}/enum", oe, ne, f"value(s) {_show(removed)} removed", root_cause=cause)
        if "const" in o or "const" in n:
            oc, nc = o.get("const", _ABSENT), n.get("const", _ABSENT)
            if oc is _ABSENT:
                self._add("const.introduced", f"{at}/const", None, nc, f"must now be {_show(nc)}", root_cause=cause)
            elif nc is _ABSENT:
                self._add("const.dropped", f"{at}/const", oc, None, f"no longer fixed to {_show(oc)}", root_cause=cause)
            elif not _same(oc, nc):
                self._add("const.changed", f"{at}/const", oc, nc, f"{_show(oc)} → {_show(nc)}", root_cause=cause)
        if "default" in o or "default" in n:
            od, nd = o.get("default", _ABSENT), n.get("default", _ABSENT)
            kind = "added" if od is _ABSENT else "removed" if nd is _ABSENT else None if _same(od, nd) else "changed"
            if kind:
                old, new = (None if od is _ABSENT else od), (None if nd is _ABSENT else nd)
                self._add(f"default.{kind}", f"{at}/default", old, new, f"default {_show(old)} → {_show(new)}", root_cause=cause)
        od, nd = o.get("deprecated") is True, n.get("deprecated") is True
        if od != nd:
            rule = "attr.deprecated-set" if nd else "attr.deprecated-cleared"
            self._add(rule, f"{at}/deprecated", od, nd, "marked deprecated" if nd else "no longer deprecated", root_cause=cause)

    def _bounds(self, o: dict, n: dict, at: str, cause: str | None) -> None:
        for word in LOWER + UPPER + ("multipleOf", "uniqueItems"):
            ov, nv = o.get(word), n.get(word)
            if word == "uniqueItems":
                ov, nv = (ov or None), (nv or None)
            if ov == nv:
                continue
            if not all(v is None or isinstance(v, (int, float)) for v in (ov, nv)):
                self._add("other-changed", f"{at}/{word}", ov, nv, f"{word} changed", root_cause=cause)
                continue
            if ov is None:
                kind = "introduced"
            elif nv is None:
                kind = "loosened"
            elif word in LOWER:
                kind = "tightened" if nv > ov else "loosened"
            elif word in UPPER:
                kind = "tightened" if nv < ov else "loosened"
            else:  # multipleOf: old multiples stay valid only when the new step divides the old one
                kind = "loosened" if nv and ov % nv == 0 else "tightened"
            self._bound(kind, word, at, ov, nv, cause)
        for word in ("pattern", "format"):
            ov, nv = o.get(word), n.get(word)
            if ov == nv:
                continue
            kind = "introduced" if ov is None else "dropped" if nv is None else "changed"
            if self.d == "resp":
                self._bound("tightened" if kind == "introduced" else "loosened", word, at, ov, nv, cause)
                continue
            level = "breaking" if word == "format" and self.settings.formats_enforced and kind != "dropped" else None
            self._add(f"{word}.{kind}", f"{at}/{word}", ov, nv, f"{word} {_show(ov)} → {_show(nv)}", root_cause=cause, level=level)

    def _bound(self, kind: str, word: str, at: str, ov: Any, nv: Any, cause: str | None) -> None:
        if self.d == "resp":
            kind = "tightened" if kind == "introduced" else kind
        self._add(f"bound.{kind}", f"{at}/{word}", ov, nv, f"{word} {_show(ov)} → {_show(nv)}", root_cause=cause)

    def _extra(self, o: dict, n: dict, at: str, rc, seen: frozenset, top: bool) -> None:
        a, b = _ap(o), _ap(n)
        where, cause = f"{at}/additionalProperties", _rc(rc)
        if a == b == "map":
            first = len(self.changes)
            self._node(o["additionalProperties"], n["additionalProperties"], where, _deeper(rc, "additionalProperties"), seen)
            for c in self.changes[first:]:
                self._as_map_value(c, where)
            return
        if a == b or (top and self.d == "req" and self.settings.lenient_request_root and "map" not in (a, b)):
            return  # the gateway accepts unknown top-level request keys whatever the schema says
        order = {"closed": 0, "map": 1, "open": 2}  # from fewest to most accepted keys
        if order[b] < order[a]:
            kind = "closed" if b == "closed" else "narrowed"
        else:
            kind = "opened" if a == "closed" else "widened"
        old, new = o.get("additionalProperties", True), n.get("additionalProperties", True)
        level = None
        if self.d == "resp" and kind == "widened" and a == "map" and _types(old) is not None:
            level = "breaking"  # map values of any JSON type where one type was promised
        self._add(f"extra.{kind}", where, old, new, f"additionalProperties {_show(old)} → {_show(new)}", root_cause=cause, level=level)

    def _as_map_value(self, c: Change, where: str) -> None:
        """A type, bound or enum change of a map's value schema is reported as the map narrowing or widening."""
        tail = c.location[len(where) + 1:]
        if "/" in tail or not c.location.startswith(where + "/"):
            return
        kind = c.rule.split(".", 1)[1]
        if kind in _MAP_NARROWING:
            c.rule, c.level = f"{self.d}.extra.narrowed", None
        elif kind in _MAP_WIDENING:
            c.rule = f"{self.d}.extra.widened"
            c.level = "breaking" if self.d == "resp" and kind == "type.widened" else None

    def _closed(self, o: dict, top: bool) -> bool:
        if top and self.d == "req" and self.settings.lenient_request_root:
            return False
        ap = o.get("additionalProperties")
        return ap is False or (ap is None and self.d == "req" and self.settings.unknown_request_fields == "reject")

    def _properties(self, o: dict, n: dict, at: str, rc, seen: frozenset, top: bool) -> None:
        op, np_ = o.get("properties") or {}, n.get("properties") or {}
        oreq, nreq = set(o.get("required") or ()), set(n.get("required") or ())
        cause_of = lambda name: _rc(_deeper(rc, name))  # noqa: E731
        for name in [*op, *(k for k in np_ if k not in op)]:
            where = f"{at}/properties/{_escape(name)}"
            if name not in np_:
                old_schema, _ = self._deref(op[name], self.old_defs)
                tags = ["deprecated"] if isinstance(old_schema, dict) and old_schema.get("deprecated") is True else []
                if self.d == "req":
                    rule = "prop.removed-closed" if self._closed(o, top) else "prop.removed-open"
                else:
                    rule = "prop.removed-required" if name in oreq else "prop.removed-optional"
                self._add(rule, where, op[name], None, f"'{name}' removed", root_cause=cause_of(name), tags=tags, subject=old_schema)
            elif name not in op:
                new_schema, _ = self._deref(np_[name], self.new_defs)
                if self.d == "resp":
                    rule = "prop.added-closed" if o.get("additionalProperties") is False else "prop.added"
                    level = None
                elif name in nreq and isinstance(new_schema, dict) and "default" in new_schema:
                    rule = "prop.added-required-defaulted"
                    level = "safe" if self.settings.apply_request_defaults else "breaking"
                else:
                    rule, level = ("prop.added-required" if name in nreq else "prop.added-optional"), None
                self._add(rule, where, None, np_[name], f"'{name}' added", root_cause=cause_of(name), level=level, subject=new_schema)
            else:
                self._node(op[name], np_[name], where, _deeper(rc, name), seen)
        self._rename_hints(at, [n for n in op if n not in np_], [n for n in np_ if n not in op])
        for name in sorted((oreq ^ nreq) - (set(op) ^ set(np_))):
            where = f"{at}/properties/{_escape(name)}"
            if name in nreq:
                schema, _ = self._deref(np_.get(name, {}), self.new_defs)
                defaulted = self.d == "req" and isinstance(schema, dict) and "default" in schema
                level = "safe" if defaulted and self.settings.apply_request_defaults else None
                self._add("prop.now-required", where, False, True, f"'{name}' is now required", root_cause=cause_of(name), level=level)
            else:
                self._add("prop.now-optional", where, True, False, f"'{name}' is no longer required", root_cause=cause_of(name))

    def _rename_hints(self, at: str, gone: list[str], added: list[str]) -> None:
        """A property removed and one of the same shape added in the same object: probably a rename."""
        if not (gone and added):
            return
        here = {c.location: c for c in self.changes if c.location.startswith(f"{at}/properties/")}
        for old_name in gone:
            old = here.get(f"{at}/properties/{_escape(old_name)}")
            match = next((n for n in added if _shape(here[f"{at}/properties/{_escape(n)}"].subject) == _shape(old.subject)), None)
            if old is not None and match is not None:
                old.hint = (f"'{old_name}' looks renamed to '{match}': old clients still send '{old_name}'. "
                            f"Keep accepting it in existing versions and rename in a new version key.")

    def _items(self, o: dict, n: dict, at: str, rc, seen: frozenset) -> None:
        oi, ni = o.get("items"), n.get("items")
        if oi is None and ni is None:
            return
        if isinstance(oi, dict) and isinstance(ni, dict):
            self._node(oi, ni, f"{at}/items", _deeper(rc, "items"), seen)
        elif isinstance(oi, list) and isinstance(ni, list) and len(oi) == len(ni):
            for i, (a, b) in enumerate(zip(oi, ni)):
                self._node(a, b, f"{at}/items/{i}", _deeper(rc, f"items/{i}"), seen)
        elif oi is None or ni is None:
            kind = "widened" if ni is None else "narrowed"  # items removed accepts any element
            self._add(f"type.{kind}", f"{at}/items", oi, ni, f"items {'unconstrained' if ni is None else 'constrained'}", root_cause=_rc(rc))
        else:
            self._add("other-changed", f"{at}/items", oi, ni, "items changed shape", root_cause=_rc(rc))

    def _composition(self, word: str, o: dict, n: dict, at: str, rc, seen: frozenset) -> None:
        ob, nb = o.get(word), n.get(word)
        if ob == nb:
            return
        if not (isinstance(ob, list) or isinstance(nb, list)):
            return
        if word != "allOf" and (ob is None or nb is None):
            self._add("other-changed", f"{at}/{word}", ob, nb, f"{word} {'introduced' if ob is None else 'removed'}", root_cause=_rc(rc))
            return
        ob, nb = ob or [], nb or []
        pairs, gone, new = _match(ob, nb)
        for i, j in pairs:
            self._node(ob[i], nb[j], f"{at}/{word}/{j}", _deeper(rc, f"{word}/{j}"), seen)
        kind = {"anyOf": "anyof", "oneOf": "oneof", "allOf": "allof"}[word]
        member = "member" if word == "allOf" else "branch"
        old_types = None if any(_types(self._deref(b, self.old_defs)[0]) is None for b in ob) else frozenset().union(
            *(_types(self._deref(b, self.old_defs)[0]) or () for b in ob)
        )
        for j in new:
            level = None
            if self.d == "resp" and word != "allOf" and old_types is not None:
                t = _types(self._deref(nb[j], self.new_defs)[0])
                if t is None or not t <= old_types:
                    level = "breaking"  # a branch of a JSON type the client was never told about
            self._add(f"{kind}.{member}-added", f"{at}/{word}/{j}", None, nb[j], f"{word} gains a {member}", root_cause=_rc(rc), level=level)
        for i in gone:
            self._add(f"{kind}.{member}-removed", f"{at}/{word}/{i}", ob[i], None, f"{word} loses a {member}", root_cause=_rc(rc))

    def _dependencies(self, o: dict, n: dict, at: str, cause: str | None) -> None:
        od, nd = o.get("dependencies") or {}, n.get("dependencies") or {}
        for name in sorted(set(od) | set(nd)):
            if name not in nd:
                self._add("deps.removed", f"{at}/dependencies/{_escape(name)}", od[name], None, f"dependency of '{name}' removed", root_cause=cause)
            elif not _same(od.get(name), nd[name]):
                self._add("deps.added", f"{at}/dependencies/{_escape(name)}", od.get(name), nd[name], f"dependency of '{name}' added", root_cause=cause)

    def _docs(self, o: dict, n: dict, at: str, cause: str | None) -> None:
        od, nd = o.get("description"), n.get("description")
        if od is None and nd is not None:
            self._add("doc.description-added", f"{at}/description", None, _prose(nd), "description added", root_cause=cause)
        elif od is not None and nd is None:
            self._add("doc.description-removed", f"{at}/description", _prose(od), None, "description removed", root_cause=cause)
        elif od is not None and _prose(od) != _prose(nd):
            self._add("doc.description-changed", f"{at}/description", _prose(od), _prose(nd), "description changed", root_cause=cause)
        for word in DOCS:
            if not _same(o.get(word), n.get(word)):
                self._add("doc.other-changed", f"{at}/{word}", o.get(word), n.get(word), f"{word} changed", root_cause=cause)

    def _pair_moves(self) -> None:
        """A response property removed at one place and added, same schema, at another: one move."""
        added = [c for c in self.changes if c.rule == "resp.prop.added"]
        for gone in [c for c in self.changes if c.rule.startswith("resp.prop.removed-")]:
            name = gone.location.rsplit("/", 1)[-1]
            for c in added:
                if c.location.rsplit("/", 1)[-1] == name and _shape(c.subject) == _shape(gone.subject):
                    level = "breaking" if gone.rule.endswith("-required") else "dangerous"
                    moved = Change("resp.prop.moved", gone.location, gone.location, c.location,
                                   f"'{name}' moved to {c.location}", c.root_cause or gone.root_cause, level)
                    self.changes = [x for x in self.changes if x is not gone and x is not c] + [moved]
                    added.remove(c)
                    break


_ABSENT = object()
_MAP_NARROWING = {"type.narrowed", "bound.tightened", "bound.introduced", "enum.value-removed", "enum.introduced",
                  "extra.narrowed"}  # fmt: skip
_MAP_WIDENING = {"type.widened", "bound.loosened", "enum.value-added", "enum.dropped", "extra.widened"}


def _shape(schema: Any) -> str:
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if k not in ("description", "title", "examples")}
    return canonical.dumps(schema)


def _rc(rc: tuple[str, str] | None) -> str | None:
    if rc is None:
        return None
    name, path = rc
    return f"definitions/{name}" + (f"/{path}" if path else "")


def _deeper(rc: tuple[str, str] | None, step: str) -> tuple[str, str] | None:
    return None if rc is None else (rc[0], f"{rc[1]}/{step}" if rc[1] else step)


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _show(value: Any) -> str:
    return "absent" if value is None else canonical.dumps(value)


def _similarity(a: Any, b: Any) -> int:
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return 0
    score = sum(1 for k in a if k in b and _same(a[k], b[k]))
    score += 2 * len(set(a.get("properties") or {}) & set(b.get("properties") or {}))
    return score + (3 if a.get("type") == b.get("type") and "type" in a else 0)


def _match(old: list, new: list) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair composition branches by content rather than position: equal ones first, then most alike."""
    pairs: list[tuple[int, int]] = []
    free_old, free_new = list(range(len(old))), list(range(len(new)))
    for i in list(free_old):
        for j in free_new:
            if _same(old[i], new[j]):
                pairs.append((i, j))
                free_old.remove(i)
                free_new.remove(j)
                break
    scored = sorted(((-_similarity(old[i], new[j]), i, j) for i in free_old for j in free_new))
    for score, i, j in scored:
        if score < 0 and i in free_old and j in free_new:
            pairs.append((i, j))
            free_old.remove(i)
            free_new.remove(j)
    return sorted(pairs, key=lambda p: p[1]), free_old, free_new
