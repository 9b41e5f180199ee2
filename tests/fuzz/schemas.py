"""Request bodies from the compiled request schemas: valid ones, single mutations of them, and the
oracle that says which of them the server must refuse and at which field.

The compiler emits a small subset of draft-07 (type, properties, required, items, enum, const, anyOf,
$ref into ``definitions``, additionalProperties, min/max bounds, lengths, pattern), so the strategies
are written here rather than taken from a library. The oracle is the Python ``jsonschema`` package,
not the server's jsonschema-rs, after the server's documented pre-processing: nulls mean absent, the
precomputed defaults are filled in, unknown top-level keys are accepted.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from hypothesis import strategies as st

from specgate.runtime.request import MAX_DEPTH as MAX_BODY_DEPTH
from specgate.runtime.validate import drop_nulls, with_defaults

GEN_DEPTH = 4  # how deep generated bodies follow the schema (recursive definitions end there)
# keys a client may put in free-form maps: operators, dotted paths, the escape character, NUL
WEIRD_KEYS = ["$set", "$where", "$ref", "$id", "a.b", ".", "$", "..", "%2E", "__$all", "x\x00y", "", " "]
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_ASCII = st.characters(codec="ascii")
_KEYS = st.one_of(st.sampled_from(WEIRD_KEYS), _TEXT)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False), _TEXT
)
FREE_JSON = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3), max_leaves=6
)
_ANY: dict[str, Any] = {}  # the schema of anything (one object: strategies are cached by schema identity)
WRONG_VALUES = [0, -1, 1.5, "fuzz", "", True, False, [], [1], {}, {"k": "v"}]


class Schemas:
    """Strategies over one request schema (its ``definitions`` resolve its ``$ref``s)."""

    def __init__(self, root: dict[str, Any]):
        self.root = root
        self.defs = root.get("definitions", {})
        self._made: dict[tuple[int, int], st.SearchStrategy] = {}  # built once: hypothesis caches per object

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            schema, seen = self.defs[schema["$ref"].rsplit("/", 1)[-1]], seen + 1
        return schema

    def valid(self, schema: dict[str, Any] | None = None, depth: int = 0) -> st.SearchStrategy:
        s = self.resolve(self.root if schema is None else schema)
        key = (id(s), depth)
        if key not in self._made:
            self._made[key] = self._valid(s, depth)
        return self._made[key]

    def _valid(self, s: Any, depth: int) -> st.SearchStrategy:
        if not isinstance(s, dict) or not s:
            return FREE_JSON
        if "const" in s:
            return st.just(s["const"])
        if "enum" in s:
            return st.sampled_from(s["enum"])
        if "anyOf" in s or "oneOf" in s:
            return st.one_of([self.valid(b, depth + 1) for b in s.get("anyOf") or s["oneOf"]])
        kind = s.get("type")
        if isinstance(kind, list):
            return st.one_of([self._valid({**s, "type": k}, depth) for k in kind])  # temporary dicts: not cached
        if kind == "object" or (kind is None and "properties" in s):
            return self._object(s, depth)
        if kind == "array":
            if depth >= GEN_DEPTH:
                return st.just([]) if not s.get("minItems") else st.lists(self.valid(s.get("items") or _ANY, depth + 1), min_size=1, max_size=1)
            return st.lists(self.valid(s.get("items") or _ANY, depth + 1), min_size=s.get("minItems", 0),
                            max_size=min(3, s.get("maxItems", 3)))  # fmt: skip
        if kind == "string":
            return self._string(s)
        if kind == "integer":
            return st.integers(s.get("minimum", -(2**63)), s.get("maximum", 2**63 - 1))
        if kind == "number":
            return st.floats(s.get("minimum"), s.get("maximum"), allow_nan=False, allow_infinity=False)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return FREE_JSON

    def _object(self, s: dict[str, Any], depth: int) -> st.SearchStrategy:
        props = s.get("properties") or {}
        required = [p for p in s.get("required", []) if p in props]
        extra = s.get("additionalProperties", True if not props else False)
        optional = {} if depth >= GEN_DEPTH else {p: self.valid(v, depth + 1) for p, v in props.items() if p not in required}
        base = st.fixed_dictionaries({p: self.valid(props[p], depth + 1) for p in required}, optional=optional)
        if extra is False or depth >= GEN_DEPTH:
            return base
        values = FREE_JSON if extra is True else self.valid(extra, depth + 1)
        more = st.dictionaries(_KEYS.filter(lambda k: k not in props), values, max_size=2)
        return st.tuples(base, more).map(lambda pair: {**pair[1], **pair[0]})

    @staticmethod
    def _string(s: dict[str, Any]) -> st.SearchStrategy:
        low, high = s.get("minLength", 0), min(s.get("maxLength", 24), 24 + s.get("minLength", 0))
        if "pattern" in s:  # ASCII: Python's \d and \w are Unicode-aware, ECMA's (the server's) are not
            return st.from_regex(s["pattern"], alphabet=_ASCII).filter(lambda v: low <= len(v) <= s.get("maxLength", 10**9))
        return st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=low, max_size=max(low, high))

    # --- places in a body, for mutations ---------------------------------------------------------------

    def places(self, body: Any) -> list[tuple[tuple, dict[str, Any]]]:
        """Every (path, schema) in ``body`` the schema describes, the body itself first."""
        out: list[tuple[tuple, dict[str, Any]]] = []

        def walk(value: Any, schema: Any, path: tuple) -> None:
            s = self.resolve(schema) if isinstance(schema, dict) else {}
            out.append((path, s))
            if isinstance(value, dict):
                props = s.get("properties") or {}
                extra = s.get("additionalProperties")
                for key, item in value.items():
                    sub = props.get(key, extra if isinstance(extra, dict) else None)
                    if sub is not None:
                        walk(item, sub, (*path, key))
            elif isinstance(value, list) and isinstance(s.get("items"), dict):
                for i, item in enumerate(value[:3]):
                    walk(item, s["items"], (*path, i))

        walk(body, self.root, ())
        return out


def get_at(body: Any, path: tuple) -> Any:
    for part in path:
        body = body[part]
    return body


def set_at(body: Any, path: tuple, value: Any) -> Any:
    """A copy of ``body`` with the value at ``path`` replaced (the root when ``path`` is empty)."""
    if not path:
        return value
    out = copy.deepcopy(body)
    get_at(out, path[:-1])[path[-1]] = value
    return out


MUTATIONS = ("wrong_type", "drop_required", "null_required", "extra_nested", "extra_top", "out_of_enum",
             "huge_string", "huge_array", "not_an_object", "deep", "integral_float")  # fmt: skip


@st.composite
def mutated(draw, schemas: Schemas) -> tuple[str, Any]:
    """(mutation name, body): one change to a valid body; the oracle decides whether it is still valid."""
    body = draw(schemas.valid())
    kind = draw(st.sampled_from(MUTATIONS))
    places = schemas.places(body)
    objects = [(p, s) for p, s in places if isinstance(get_at(body, p), dict)]
    if kind == "wrong_type":
        path, _ = draw(st.sampled_from(places[1:] or places))
        return kind, set_at(body, path, draw(st.sampled_from(WRONG_VALUES)))
    if kind in ("drop_required", "null_required"):
        holders = [(p, s) for p, s in objects if set(s.get("required", ())) & set(get_at(body, p))]
        if holders:
            path, s = draw(st.sampled_from(holders))
            key = draw(st.sampled_from(sorted(set(s["required"]) & set(get_at(body, path)))))
            node = dict(get_at(body, path))
            if kind == "drop_required":
                del node[key]
            else:
                node[key] = None
            return kind, set_at(body, path, node)
        kind = "extra_nested"
    if kind == "extra_nested" and len(objects) > 1:
        path, _ = draw(st.sampled_from(objects[1:]))
        return kind, set_at(body, path, {**get_at(body, path), "fuzz_unknown_key": 1})
    if kind in ("extra_nested", "extra_top"):
        return "extra_top", {**body, "fuzz_unknown_key": draw(FREE_JSON)}
    if kind == "out_of_enum":
        enums = [p for p, s in places if "enum" in s and p]
        if enums:
            return kind, set_at(body, draw(st.sampled_from(enums)), "fuzz-not-in-enum")
        kind = "huge_string"
    if kind == "huge_string":
        strings = [p for p, s in places if s.get("type") == "string" and p]
        size = draw(st.sampled_from([5_000, 100_000]))
        if strings:
            return kind, set_at(body, draw(st.sampled_from(strings)), "x" * size)
        return kind, {**body, "fuzz_huge": "x" * size}
    if kind == "huge_array":
        arrays = [p for p, s in places if s.get("type") == "array" and p and get_at(body, p)]
        if arrays:
            path = draw(st.sampled_from(arrays))
            return kind, set_at(body, path, get_at(body, path)[:1] * draw(st.sampled_from([500, 3_000])))
        return kind, {**body, "fuzz_huge": list(range(3_000))}
    if kind == "integral_float":  # JSON Schema's integers include 5.0 and 1e30 (orjson reads 2^64 as one)
        ints = [p for p, s in places if p and "integer" in (s.get("type") if isinstance(s.get("type"), list) else [s.get("type")])]
        if ints:
            path = draw(st.sampled_from(ints))
            value = get_at(body, path)
            floats = [1e30, -1e30, 2.0**64] + ([float(value)] if isinstance(value, int) and abs(value) < 2**53 else [])
            return kind, set_at(body, path, draw(st.sampled_from(floats)))
        kind = "not_an_object"
    if kind == "not_an_object":
        return kind, draw(st.sampled_from([[1], "text", 7, True, [{}]]))
    deep = Deep(draw(st.sampled_from([MAX_BODY_DEPTH + 1, 10 * MAX_BODY_DEPTH, 100_000])))
    paths = [p for p, _ in places if p]
    return "deep", set_at(body, draw(st.sampled_from(paths)), deep) if paths else {**body, "fuzz_deep": deep}


class Deep:
    """``depth`` nested arrays, written out only when the body is encoded (``json`` would recurse)."""

    def __init__(self, depth: int):
        self.depth = depth

    def __repr__(self) -> str:
        return f"Deep({self.depth})"


def encode(body: Any) -> bytes:
    """The JSON text of a generated body, ``Deep`` values included."""
    found: list[Deep] = []

    def default(value: Any) -> str:
        if isinstance(value, Deep):
            found.append(value)
            return f"__fuzz_deep_{len(found) - 1}__"
        raise TypeError(type(value).__name__)

    text = json.dumps(body, default=default)
    for i, deep in enumerate(found):
        text = text.replace(f'"__fuzz_deep_{i}__"', "[" * deep.depth + "1" + "]" * deep.depth, 1)
    return text.encode()


# --- the oracle -------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the server must answer: ``parse`` (400/0), ``invalid`` (400/12 at one of ``fields``), or for
    ``valid`` and ``undecided`` bodies any catalogue answer (a handler may still refuse a valid body)."""

    outcome: str
    fields: set[str] = field(default_factory=set)


def format_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def depth_of(value: Any) -> int:
    """Nesting depth of a JSON value (iterative: a deep value must not exhaust Python's stack here)."""
    best, stack = 0, [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, Deep):
            best = max(best, d - 1 + node.depth)
        elif isinstance(node, (dict, list)):
            best = max(best, d)
            stack.extend((child, d + 1) for child in (node.values() if isinstance(node, dict) else node))
    return best


class Undecided(Exception):
    """A string whose match depends on the regex dialect (ECMA 262 for JSON Schema, not Python's)."""


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any):
    """``pattern`` as JSON Schema means it where Python agrees: ``$`` is the very end (Python's also
    matches before a final newline). Line terminators and non-ASCII text (``.`` and ``\\d`` differ)
    are left undecided."""
    if not isinstance(instance, str):
        return
    if not instance.isascii() or any(c in instance for c in "\n\r"):
        raise Undecided(pattern)
    python = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    if not re.search(python, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _ecma_pattern})


class Oracle:
    def __init__(self, schema: dict[str, Any], defaults: dict[str, Any] | None, max_depth: int = MAX_BODY_DEPTH):
        lenient = {k: v for k, v in schema.items() if not (k == "additionalProperties" and v is False)}
        self.validator = _Validator(lenient)
        self.defaults, self.max_depth = defaults, max_depth

    def judge(self, body: Any) -> Verdict:
        if depth_of(body) > self.max_depth:
            return Verdict("parse")
        if not body:
            body = {}  # falsy JSON means an empty call
        if not isinstance(body, dict):
            return Verdict("parse")
        data = drop_nulls(body)
        if self.defaults:
            data = with_defaults(data, self.defaults)
        try:
            errors = list(self.validator.iter_errors(data))
        except Undecided:
            return Verdict("undecided")
        if not errors:
            return Verdict("valid")
        fields: set[str] = set()
        for error in errors:
            _collect(error, fields)
        return Verdict("invalid", fields)


def _collect(error: jsonschema.ValidationError, fields: set[str]) -> None:
    path = list(error.absolute_path)
    fields.add(format_path(path))
    if error.validator == "required" and isinstance(error.instance, dict):
        fields.update(format_path([*path, p]) for p in error.validator_value if p not in error.instance)
    if error.validator == "dependencies" and isinstance(error.instance, dict):  # {"page": ["page_size"]}
        for present, needed in error.validator_value.items():
            if present in error.instance and isinstance(needed, list):
                fields.update(format_path([*path, p]) for p in needed if p not in error.instance)
    for sub in error.context or ():
        _collect(sub, fields)
