"""The runtime validators (jsonschema-rs) agree with the reference implementation (python-jsonschema).

For every distinct request schema of the committed tables, hypothesis builds instances from the schema
(random property subsets, enums, types, ``$ref`` into ``definitions`` with a depth limit), optionally
applies one targeted mutation (wrong type, required key removed or nulled, enum value replaced), and
also throws plain random JSON objects at it. ``Validators._request[key]`` must give the same verdict as
``jsonschema.Draft7Validator`` on the same lenient schema. Per schema, both valid and invalid instances
must have been seen, so the agreement cannot hold vacuously.

One deliberate deviation in the reference: JSON Schema patterns are ECMA-262, where ``$`` matches only at
the end of the input, but python-jsonschema uses ``re.search`` where ``$`` also matches before a final
newline. The reference therefore checks ``pattern`` with ``$`` read as ``\\Z`` (see the report).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from functools import lru_cache
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from specgate.runtime import tables
from specgate.runtime.validate import Validators, drop_nulls

PREFIX = "#/definitions/"
REF_DEPTH = 3  # $ref hops followed before only required properties are generated
MAX_DEPTH = 8  # hard stop for required-only recursion
REPRESENTATIVE = ["tasks.create", "tasks.get_all", "tasks.edit", "projects.get_all_ex", "queues.create"]


# --- the tables under test ----------------------------------------------------------------------


TABLES = tables.load()


@lru_cache(maxsize=1)
def runtime() -> Validators:
    return Validators(TABLES)


def request_keys() -> list[str]:
    t = TABLES
    keys = {
        key
        for e in t.endpoints.values()
        for v in e.versions.values()
        for key in (v.request, v.batch_request)
        if key
    }
    return sorted(keys)


def endpoint_of() -> dict[str, str]:
    """A readable name per schema key, for test ids."""
    names: dict[str, str] = {}
    for name, e in sorted(TABLES.endpoints.items()):
        for v in e.versions.values():
            for key in (v.request, v.batch_request):
                if key and key not in names:
                    names[key] = f"{name}@{v.key}"
    return names


KEYS = request_keys()
NAMES = endpoint_of()


def test_representative_endpoints_are_covered():
    t = TABLES
    for name in REPRESENTATIVE:
        assert name in t.endpoints, name
        for v in t.endpoints[name].versions.values():
            assert (v.request or v.batch_request) in KEYS
    assert set(KEYS) == set(runtime()._request)


# --- the reference ------------------------------------------------------------------------------


def lenient(schema: dict[str, Any]) -> dict[str, Any]:
    """Unknown top-level keys are accepted: drop a top-level ``additionalProperties: false`` only."""
    out = dict(schema)
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]
    return out


def _ecma_pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string"):
        python = re.sub(r"(?<!\\)\$", r"\\Z", pattern)
        if not re.search(python, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Reference = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _ecma_pattern})


@lru_cache(maxsize=None)
def reference(key: str):
    schema = lenient(TABLES.schemas[key])
    jsonschema.Draft7Validator.check_schema(schema)
    return Reference(schema)


# --- instances from a schema --------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e20]),
    st.text(max_size=6),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8,
)

TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")
WRONG = {
    "string": st.one_of(st.integers(-5, 5), st.booleans(), st.just([]), st.just({})),
    "integer": st.one_of(st.text(max_size=3), st.sampled_from([0.5, -1.5, True, False]), st.just([])),
    "number": st.one_of(st.text(max_size=3), st.booleans(), st.just({})),
    "boolean": st.one_of(st.integers(0, 1), st.sampled_from(["true", "false", 0.0])),
    "object": st.one_of(st.text(max_size=3), st.integers(), st.lists(st.integers(), max_size=2)),
    "array": st.one_of(st.text(max_size=3), st.just({}), st.integers()),
    "null": st.one_of(st.integers(), st.text(max_size=2)),
}


def resolve(node: Any, definitions: dict[str, Any], hops: int) -> tuple[Any, int]:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        node = definitions[node["$ref"][len(PREFIX):]]
        hops += 1
    return node, hops


def types_of(node: dict[str, Any]) -> list[str]:
    t = node.get("type")
    if t is None:
        return list(TYPES)
    return [t] if isinstance(t, str) else list(t)


def string_for(draw, node: dict[str, Any]) -> str:
    if "pattern" in node:
        return draw(st.from_regex(node["pattern"]), label="pattern")
    if node.get("format") == "date-time":
        return draw(
            st.one_of(
                st.datetimes().map(lambda d: d.isoformat()),
                st.text(max_size=5),
            )
        )
    return draw(st.one_of(st.text(max_size=8), st.sampled_from(["", "id", "a.b", "__$__"])))


def number_for(draw, node: dict[str, Any], integer: bool):
    low = node.get("minimum")
    big = st.integers(min_value=low) if low is not None else st.integers()
    near = st.integers(-5 if low is None else low, 5 if low is None else low + 5)
    if integer:
        return draw(st.one_of(near, big, near.map(float)))
    floats = st.floats(min_value=low, allow_nan=False, allow_infinity=False)
    return draw(st.one_of(near, big, floats))


def generate(draw, node: Any, definitions: dict[str, Any], path: tuple, sites: list, hops: int = 0, depth: int = 0):
    """A value meant to be valid for ``node``; records (path, resolved node) for every value made."""
    node, hops = resolve(node, definitions, hops)
    if node is True or node == {} or not isinstance(node, dict):
        value = draw(json_values)
        sites.append((path, {}))
        return value
    sites.append((path, node))
    if "const" in node:
        return copy.deepcopy(node["const"])
    if "enum" in node:
        return copy.deepcopy(draw(st.sampled_from(node["enum"])))
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in node:
            sites.pop()
            branches = node[combinator]
            branch = branches[0] if combinator == "allOf" else draw(st.sampled_from(branches))
            return generate(draw, branch, definitions, path, sites, hops, depth + 1)
    kind = draw(st.sampled_from(types_of(node)))
    shallow = hops > REF_DEPTH or depth > MAX_DEPTH
    if kind == "object":
        props = node.get("properties", {})
        required = [r for r in node.get("required", []) if r in props]
        names = set(required)
        if not shallow:
            names |= set(draw(st.lists(st.sampled_from(sorted(props)), unique=True, max_size=5))) if props else set()
        for when, needs in node.get("dependencies", {}).items():
            if when in names and isinstance(needs, list):
                names |= set(needs)
        out: dict[str, Any] = {}
        for name in sorted(names):
            sub = props.get(name, True)
            out[name] = generate(draw, sub, definitions, path + (name,), sites, hops, depth + 1)
        extra = node.get("additionalProperties", True)
        if extra is False and path == ():
            extra = True  # requests are lenient at the top level
        if extra is not False and not shallow and draw(st.integers(0, 4)) == 0:
            name = draw(st.text(min_size=1, max_size=5).filter(lambda n: n not in props))
            out[name] = generate(draw, extra, definitions, path + (name,), sites, hops, depth + 1)
        return out
    if kind == "array":
        items = node.get("items", True)
        n = 0 if shallow else draw(st.integers(0, 3))
        return [generate(draw, items, definitions, path + (i,), sites, hops, depth + 1) for i in range(n)]
    if kind == "string":
        return string_for(draw, node)
    if kind in ("integer", "number"):
        return number_for(draw, node, kind == "integer")
    if kind == "boolean":
        return draw(st.booleans())
    return None


def get_parent(value: Any, path: tuple):
    for p in path[:-1]:
        value = value[p]
    return value


def mutate(draw, instance: Any, sites: list) -> tuple[Any, str]:
    """One targeted change at a random generated site; returns the new instance and what was done."""
    path, node = draw(st.sampled_from(sites), label="site")
    ops = ["wrong-type"]
    if isinstance(node, dict) and ("enum" in node or "const" in node):
        ops.append("enum")
    target = instance
    for p in path:
        target = target[p]
    if isinstance(target, dict) and isinstance(node, dict) and any(r in target for r in node.get("required", [])):
        ops += ["drop-required", "null-required"]
    if isinstance(target, dict):
        ops.append("unknown-key")
    op = draw(st.sampled_from(ops), label="op")
    if op == "unknown-key":
        known = node.get("properties", {}) if isinstance(node, dict) else {}
        name = draw(st.text(min_size=1, max_size=5).filter(lambda n: n not in known and n not in target))
        target[name] = draw(json_values.filter(lambda v: v is not None))
        return instance, op
    if op in ("drop-required", "null-required"):
        key = draw(st.sampled_from([r for r in node["required"] if r in target]))
        if op == "drop-required":
            del target[key]
        else:
            target[key] = None
        return instance, op
    if op == "enum":
        enum = node["enum"] if "enum" in node else [node["const"]]
        value = draw(st.one_of(st.text(max_size=6), json_scalars).filter(lambda v: v not in enum))
    else:
        allowed = types_of(node) if isinstance(node, dict) else list(TYPES)
        wrong = [t for t in TYPES if t not in allowed and not (t == "integer" and "number" in allowed)]
        if not wrong:
            value = draw(json_values)
        else:
            value = draw(WRONG[draw(st.sampled_from(wrong))])
    if not path:
        return value, op
    get_parent(instance, path)[path[-1]] = value
    return instance, op


@st.composite
def instances(draw, key: str, mode: str | None = None):
    schema = TABLES.schemas[key]
    definitions = schema.get("definitions", {})
    if mode is None:
        mode = draw(st.sampled_from(["built", "mutated", "random"]), label="mode")
    if mode == "random":
        names = sorted(schema.get("properties", {}))
        keys = st.sampled_from(names) | st.text(max_size=4) if names else st.text(max_size=4)
        return mode, draw(st.dictionaries(keys, json_values, max_size=5))
    sites: list = []
    instance = generate(draw, schema, definitions, (), sites)
    if mode == "mutated":
        instance, op = mutate(draw, instance, sites)
        mode = f"mutated:{op}"
    return mode, instance


# --- the property -------------------------------------------------------------------------------


TOTALS: Counter = Counter()  # (mode, verdict) over every schema, checked by the test after the loop


def ids(key: str) -> str:
    return f"{NAMES.get(key, '?')}-{key[:6]}"


EXAMPLES = {"built": 8, "mutated": 8, "random": 4}  # per schema; 121 schemas


@pytest.mark.parametrize("key", KEYS, ids=ids)
def test_runtime_agrees_with_reference(key):
    rs = runtime()._request[key]
    ref = reference(key)
    seen: Counter = Counter()

    for mode, n in EXAMPLES.items():

        @settings(
            max_examples=n,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        )
        @given(case=instances(key, mode))
        def agree(case):
            how, instance = case
            data = drop_nulls(instance)
            expected = ref.is_valid(data)
            note(f"mode={how} expected={expected}")
            assert rs.is_valid(data) == expected, (how, data)
            seen[(how.split(":")[0], expected)] += 1

        agree()

    TOTALS.update(seen)
    TOTALS["schemas"] += 1
    assert seen[("built", True)] >= 1, f"no instance built from the schema was valid: {dict(seen)}"
    if TABLES.schemas[key].get("type") == "object":
        assert sum(n for (_, ok), n in seen.items() if not ok) >= 1, f"no invalid instance was tried: {dict(seen)}"


def test_share_of_valid_and_invalid_instances():
    """Across the whole run, a good share of instances are valid and a good share are not."""
    if TOTALS["schemas"] < len(KEYS):
        pytest.skip("needs the full parametrized agreement run before it")
    by_verdict = Counter()
    for k, n in TOTALS.items():
        if k != "schemas":
            by_verdict[k[1]] += n
    total = by_verdict[True] + by_verdict[False]
    print(f"agreement run: {dict(TOTALS)}")
    built = TOTALS[("built", True)] + TOTALS[("built", False)]
    assert TOTALS[("built", True)] >= 0.6 * built, "instances built from the schemas should mostly be valid"
    assert by_verdict[True] >= 0.3 * total and by_verdict[False] >= 0.3 * total, dict(TOTALS)
    mutated = TOTALS[("mutated", True)] + TOTALS[("mutated", False)]
    assert TOTALS[("mutated", False)] >= 0.5 * mutated, "mutations should mostly break instances"


# --- pieces the agreement relies on -------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_drop_nulls_removes_null_keys_at_any_depth(value):
    out = drop_nulls(value)

    def oracle(v):
        if isinstance(v, dict):
            return {k: oracle(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [oracle(x) for x in v]
        return v

    assert out == oracle(value)
    assert drop_nulls(out) == out


STRICT = [k for k in KEYS if TABLES.schemas[k].get("additionalProperties") is False]


@settings(max_examples=60, deadline=None)
@given(key=st.sampled_from(STRICT) | st.sampled_from(KEYS) if STRICT else st.sampled_from(KEYS), name=st.text(min_size=1, max_size=6), value=json_values, data=st.data())
def test_unknown_top_level_keys_are_accepted(key, name, value, data):
    """Lenient means: adding an unknown top-level key never turns a valid request invalid."""
    schema = TABLES.schemas[key]
    assume(name not in schema.get("properties", {}))
    _, instance = data.draw(instances(key))
    assume(isinstance(instance, dict))
    base = drop_nulls(instance)
    rs = runtime()._request[key]
    assume(rs.is_valid(base))
    extended = drop_nulls({**base, name: value})
    assert rs.is_valid(extended)
