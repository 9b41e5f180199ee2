"""Compiles are byte-reproducible, and the lock file decodes back to the IR it was encoded from.

The real ``schemas/`` tree is compiled cold (pyhocon in worker processes, filling a private parse cache)
and then warm (trees read back from that cache), from its own directory and from a copy elsewhere: the
artefacts must be identical bytes. Small random trees check the same, plus independence from the order
in which actions and versions are written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from specgate.core import lockfile
from specgate.core.ir import Api
from specgate.core.versions import Version
from specgate_codegen.compiler import compile_tree

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
LOCK = "specgate.lock.json"


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECGATE_CACHE_DIR", str(tmp_path_factory.mktemp("hocon-cache")))
        mp.delenv("SPECGATE_NO_CACHE", raising=False)
        yield


def without_descriptions(api: Api) -> Api:
    """What the lock records: the IR minus descriptions (sources are excluded from comparison)."""
    services = {}
    for sname, s in api.services.items():
        actions = {
            aname: dataclasses.replace(
                a, versions=tuple(dataclasses.replace(v, description="") for v in a.versions)
            )
            for aname, a in s.actions.items()
        }
        services[sname] = dataclasses.replace(s, actions=actions, description="")
    return dataclasses.replace(api, services=services)


def check_lock_round_trip(api: Api, artefacts) -> None:
    lock = dict(artefacts)[LOCK]
    assert lock == lockfile.encode(api)
    decoded = lockfile.decode(json.loads(lock))
    assert lockfile.encode(decoded) == lock
    assert decoded == without_descriptions(api)


@pytest.fixture(scope="module")
def real_compiles(tmp_path_factory):
    cold = compile_tree(SCHEMAS, ROOT)  # empty private cache: every file goes through pyhocon
    warm = compile_tree(SCHEMAS, ROOT)  # every file read back from the cache
    copy_root = tmp_path_factory.mktemp("copy")
    shutil.copytree(SCHEMAS, copy_root / "schemas")
    moved = compile_tree(copy_root / "schemas", copy_root)
    return cold, warm, moved


def test_real_tree_compiles_to_identical_bytes(real_compiles):
    (api1, art1), (api2, art2), (api3, art3) = real_compiles
    assert [p for p, _ in art1] == [p for p, _ in art2] == [p for p, _ in art3]
    for (path, a), (_, b), (_, c) in zip(art1, art2, art3):
        assert a == b, f"{path} differs between a cold and a warm compile"
        assert a == c, f"{path} differs when the tree is compiled from another directory"
    assert api1 == api2 == api3
    assert api1.digest == api2.digest == api3.digest


def test_real_lock_round_trips(real_compiles):
    (api, artefacts), _, _ = real_compiles
    check_lock_round_trip(api, artefacts)


def test_committed_lock_round_trips():
    """The committed lock, whatever its freshness, re-encodes to the same bytes."""
    lock = (ROOT / LOCK).read_bytes()
    assert lockfile.encode(lockfile.decode(json.loads(lock))) == lock


# --- random trees -------------------------------------------------------------------------------

KEYS = ["1.0", "2.1", "2.9", "2.10", "2.13", "10.2", "999.0"]
PROPS = {
    "name": {"type": "string"},
    "count": {"type": "integer", "minimum": 0, "default": 1},
    "tags": {"type": "array", "items": {"type": "string"}},
    "thing": {"$ref": "#/definitions/thing"},
    "mode": {"type": "string", "enum": ["a", "b"]},
}
DEFINITIONS = {
    "thing": {"type": "object", "properties": {"inner": {"$ref": "#/definitions/inner"}}},
    "inner": {"type": ["string", None], "description": "null type spelled HOCON-style"},
    "unused": {"type": "object"},
}


@st.composite
def versions_of(draw, keys):
    out = {}
    for key in keys:
        props = draw(st.lists(st.sampled_from(sorted(PROPS)), unique=True, max_size=4))
        request = {"type": "object", "properties": {p: PROPS[p] for p in props}}
        if props and draw(st.booleans()):
            request["required"] = [props[0]]
        if draw(st.booleans()):
            request["additionalProperties"] = False
        out[key] = {
            "description": draw(st.sampled_from(["", "one", "two  words\nhere"])),
            "request": request,
            "response": {"type": "object", "properties": {"id": {"type": "string"}}},
        }
    return out


@st.composite
def services(draw):
    tree = {"_description": draw(st.sampled_from(["svc", "a service"])), "_definitions": DEFINITIONS}
    names = draw(st.lists(st.sampled_from(["get", "create", "edit", "delete"]), min_size=1, max_size=3, unique=True))
    for name in names:
        keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True))
        action = draw(versions_of(keys))
        if draw(st.booleans()):
            action["internal"] = True
        if draw(st.booleans()):
            action["allow_roles"] = draw(st.lists(st.sampled_from(["admin", "user", "*"]), min_size=1, max_size=2))
        tree[name] = action
        if draw(st.booleans()):
            tree[f"{name}_many"] = {
                key: {
                    "batch_request": {"action": name, "version": key},
                    "response": {"type": "object"},
                }
                for key in keys
            }
    return tree


def shuffled(draw, tree: dict) -> dict:
    """The same tree with actions and versions written in another order."""
    out = {}
    for k in draw(st.permutations(list(tree))):
        v = tree[k]
        if not k.startswith("_") and isinstance(v, dict):
            v = {kk: v[kk] for kk in draw(st.permutations(list(v)))}
        out[k] = v
    return out


def write_tree(directory: Path, trees: dict[str, dict], indent) -> Path:
    spec = directory / "schemas"
    spec.mkdir()
    # JSON is HOCON; None becomes HOCON's unquoted null, as ClearML writes `type: [string, null]`.
    for name, tree in trees.items():
        (spec / f"{name}.conf").write_text(json.dumps(tree, indent=indent, ensure_ascii=False))
    return spec


def comparable(artefacts) -> dict[str, object]:
    """Artefacts minus the input digest (which hashes the exact file bytes)."""
    out = {}
    for path, data in artefacts:
        if path.endswith(".json"):
            value = json.loads(data)
            value.pop("digest", None)
            value.pop("generated", None)
            out[path] = value
    return out


@settings(max_examples=10, deadline=None)
@given(trees=st.dictionaries(st.sampled_from(["alpha", "beta", "gamma"]), services(), min_size=1, max_size=2), data=st.data())
def test_random_trees_are_reproducible(tmp_path_factory, trees, data):
    indent = data.draw(st.sampled_from([None, 1, 4]), label="indent")
    root = tmp_path_factory.mktemp("tree")
    spec = write_tree(root, trees, indent)
    api1, art1 = compile_tree(spec, root)
    api2, art2 = compile_tree(spec, root)
    assert art1 == art2
    assert api1 == api2
    check_lock_round_trip(api1, art1)

    # Max version is the highest released key, drafts never count.
    released = [v.key for _, a in api1.endpoints() for v in a.versions if not v.draft]
    assert api1.max_version == max(released, default=Version(0, 0))

    reordered = {name: shuffled(data.draw, tree) for name, tree in trees.items()}
    note(json.dumps(reordered, indent=1))
    other = tmp_path_factory.mktemp("tree")
    api3, art3 = compile_tree(write_tree(other, reordered, indent), other)
    assert comparable(art3) == comparable(art1)
    assert without_descriptions(dataclasses.replace(api3, digest="")) == without_descriptions(
        dataclasses.replace(api1, digest="")
    )
