"""Properties of ``specgate diff`` on generated spec trees.

Hypothesis builds small trees: 1-2 services, 1-3 actions each, 1-3 version keys per action (sometimes a
``999.0`` draft), each later key its predecessor plus one optional request property (the way version
keys grow in practice). Request and response schemas are JSON-Schema-ish objects: strings with bounds,
enums, patterns and formats, integers with bounds and defaults, nullable types, arrays and nested objects
that are open or closed. Trees are written as JSON, which is valid HOCON.

(a) A tree compared with itself has no findings and exits 0, also when the second copy is written with
    its object keys in another order and another layout.
(b) Adding an optional property to an open request object of an existing version (and, like ``${}``
    inheritance would, to the later keys of that action) is never breaking or dangerous.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NAMES = ["name", "size", "tags", "owner", "color", "limit", "meta", "parent", "state", "items_", "page"]
DESCRIPTIONS = ["Display name", "How many", "Free-form labels", "Who owns it"]
ADDED = "added_flag"  # never among NAMES, so adding it is always an addition

# --- schemas ------------------------------------------------------------------------------------

strings = st.fixed_dictionaries(
    {"type": st.just("string")},
    optional={
        "maxLength": st.integers(1, 64),
        "minLength": st.integers(0, 3),
        "enum": st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3, unique=True),
        "pattern": st.sampled_from(["^[a-z]+$", "^x", "[0-9]"]),
        "format": st.sampled_from(["date-time", "email", "uri"]),
        "description": st.sampled_from(DESCRIPTIONS),
    },
)
integers = st.fixed_dictionaries(
    {"type": st.sampled_from(["integer", "number"])},
    optional={"minimum": st.integers(0, 5), "maximum": st.integers(10, 100), "default": st.integers(5, 10)},
)
others = st.sampled_from([
    {"type": "boolean"},
    {"type": ["string", "null"]},
    {"type": ["integer", "null"]},
    {"type": "boolean", "default": False},
])
leaves = st.one_of(strings, integers, others)


def objects(children: st.SearchStrategy) -> st.SearchStrategy:
    @st.composite
    def build(draw) -> dict:
        props = draw(st.dictionaries(st.sampled_from(NAMES), children, max_size=3))
        out: dict[str, Any] = {"type": "object", "properties": props}
        required = [n for n in props if draw(st.booleans())]
        if required:
            out["required"] = required
        if draw(st.integers(0, 3)) == 0:
            out["additionalProperties"] = False
        return out

    return build()


def nodes(depth: int) -> st.SearchStrategy:
    if depth == 0:
        return leaves
    inner = nodes(depth - 1)
    return st.one_of(
        leaves,
        objects(inner),
        st.fixed_dictionaries({"type": st.just("array"), "items": inner}),
        st.fixed_dictionaries(  # a map
            {
                "type": st.just("object"),
                "additionalProperties": st.sampled_from([{"type": "string"}, {"type": "integer"}]),
            }
        ),
    )


roots = objects(nodes(2))

# --- trees --------------------------------------------------------------------------------------

KEYS = ["2.1", "2.3", "2.5", "2.8", "2.13"]


@st.composite
def actions(draw) -> dict:
    chosen = draw(st.sets(st.sampled_from(KEYS), min_size=1, max_size=3))
    keys = sorted(chosen, key=lambda k: tuple(map(int, k.split("."))))
    if draw(st.integers(0, 4)) == 0:
        keys.append("999.0")
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["internal"] = draw(st.booleans())
    if draw(st.booleans()):
        out["authorize"] = draw(st.sampled_from([True, False, None]))
    version = {"description": draw(st.sampled_from(DESCRIPTIONS)), "request": draw(roots), "response": draw(roots)}
    for i, key in enumerate(keys):
        if i:
            version = copy.deepcopy(version)
            version["request"]["properties"][f"since_{key.replace('.', '_')}"] = draw(leaves)
        out[key] = version
    return out


@st.composite
def trees(draw) -> dict[str, dict]:
    """{service name: parsed service file}."""
    services = draw(st.lists(st.sampled_from(["alpha", "beta"]), min_size=1, max_size=2, unique=True))
    out = {}
    for service in services:
        verbs = st.sampled_from(["get", "list", "create", "update"])
        names = draw(st.lists(verbs, min_size=1, max_size=3, unique=True))
        out[service] = {"_description": f"The {service} service", **{n: draw(actions()) for n in names}}
    return out


def reordered(node: Any) -> Any:
    """The same value with every object's keys in reverse order (lists keep theirs)."""
    if isinstance(node, dict):
        return {k: reordered(node[k]) for k in reversed(list(node))}
    if isinstance(node, list):
        return [reordered(v) for v in node]
    return node


def write(directory: Path, tree: dict[str, dict], indent: int | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for service, body in tree.items():
        (directory / f"{service}.conf").write_text(json.dumps(body, indent=indent) + "\n")
    return directory


def open_objects(schema: dict, path: tuple = ()) -> list[tuple]:
    """Paths (key tuples from the request root) of every open object schema with ``properties``."""
    found = []
    if schema.get("type") == "object" and "properties" in schema and schema.get("additionalProperties") is not False:
        found.append(path)
    for name, sub in schema.get("properties", {}).items():
        if isinstance(sub, dict):
            found += open_objects(sub, path + ("properties", name))
    if isinstance(schema.get("items"), dict):
        found += open_objects(schema["items"], path + ("items",))
    return found


def at(schema: dict, path: tuple) -> dict:
    for k in path:
        schema = schema[k]
    return schema


# --- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(tree=trees(), layout=st.booleans())
def test_a_tree_against_itself_has_no_findings(diff_json, tree, layout) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = write(Path(tmp) / "base", tree)
        head = write(Path(tmp) / "head", reordered(tree) if layout else tree, indent=2 if layout else None)
        code, report = diff_json(base, head)
    assert report, f"no report (exit {code})"
    assert report["findings"] == []
    assert code == 0


@SETTINGS
@given(tree=trees(), data=st.data())
def test_adding_an_optional_request_property_is_never_breaking_or_dangerous(diff_json, tree, data) -> None:
    service = data.draw(st.sampled_from(sorted(tree)))
    action = data.draw(st.sampled_from(sorted(k for k in tree[service] if not k.startswith("_"))))
    body = tree[service][action]
    keys = [k for k in body if k[0].isdigit()]
    key = data.draw(st.sampled_from(keys))
    targets = open_objects(body[key]["request"])
    if not targets:
        targets = [()]  # a closed root: the gateway accepts unknown top-level keys, it is open in effect
    path = data.draw(st.sampled_from(targets))
    schema = data.draw(leaves)
    note(f"adding {ADDED} = {schema} at {service}.{action} {key} request/{'/'.join(path)}")

    changed = copy.deepcopy(tree)
    later = keys[keys.index(key):]  # the key and every later key: what ${}-inheritance would give
    for k in later:
        at(changed[service][action][k]["request"], path).setdefault("properties", {})[ADDED] = schema

    with tempfile.TemporaryDirectory() as tmp:
        code, report = diff_json(write(Path(tmp) / "base", tree), write(Path(tmp) / "head", changed))
    assert report, f"no report (exit {code})"
    bad = [f for f in report["findings"] if f["level"] in ("breaking", "dangerous")]
    assert not bad, json.dumps(bad, indent=1)
    assert report["findings"], "the added property went unreported"
    assert code == 0
