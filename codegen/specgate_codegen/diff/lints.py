"""Hygiene lints (schema-diff §2.7). ``specgate diff`` reports the ones a change introduces.

Most are read from effective schemas, so they work on lock files too; ``lint.stray-version-key`` and
``lint.duplicate-key`` need the HOCON text and are compared only when both sides are spec trees.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from specgate.core import canonical
from specgate.core.ir import Api
from specgate.core.versions import parse_key

from .. import hocon
from .compare import PinFinding
from .inputs import Side

KEYWORDS = frozenset(
    """$schema $id $ref $comment definitions title description default examples readOnly writeOnly deprecated
    type enum const multipleOf maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength pattern
    format items additionalItems maxItems minItems uniqueItems contains maxProperties minProperties required
    properties patternProperties additionalProperties dependencies propertyNames if then else allOf anyOf oneOf
    not contentMediaType contentEncoding""".split()
)
_MAPS = ("properties", "patternProperties", "definitions", "dependencies")
_DATA = ("default", "enum", "const", "examples", "required")
VERSION_KEYS = frozenset({"request", "response", "batch_request", "description", "http"})
_PROSE = re.compile(r"\b(deprecated|obsolete)\b", re.IGNORECASE)


def introduced(base: Side, head: Side) -> list[PinFinding]:
    """Lints of ``head`` that ``base`` does not have (raw-text lints only when both sides are trees)."""
    raw = base.is_tree and head.is_tree
    before = {_key(f) for f in lint(base, raw)}
    return [f for f in lint(head, raw) if _key(f) not in before]


def _key(f: PinFinding) -> str:
    return canonical.dumps([f.rule, f.endpoint, str(f.pin), f.location])


def lint(side: Side, raw: bool = True) -> list[PinFinding]:
    out = list(_schema_lints(side.api))
    out += _version_lints(side.api)
    if raw:
        out += _raw_lints(side)
    return out


def _schema_lints(api: Api) -> Iterator[PinFinding]:
    for endpoint, action in api.endpoints():
        for v in action.versions:
            for part, schema in (("request", v.request), ("response", v.response)):
                if schema is None:
                    continue
                for at, node in _nodes(schema, f"/{part}"):
                    yield from _node_lints(endpoint, v.key, at, node)


def _nodes(node: Any, at: str) -> Iterator[tuple[str, dict]]:
    """Every subschema with its pointer (definitions included, data keywords skipped)."""
    if not isinstance(node, dict):
        return
    yield at, node
    for key, value in node.items():
        if key in _DATA or key not in KEYWORDS:
            continue
        if key in _MAPS and isinstance(value, dict):
            for name, sub in value.items():
                yield from _nodes(sub, f"{at}/{key}/{name}")
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _nodes(sub, f"{at}/{key}/{i}")
        elif isinstance(value, dict):
            yield from _nodes(value, f"{at}/{key}")


def _node_lints(endpoint: str, pin, at: str, node: dict) -> Iterator[PinFinding]:
    for key, value in node.items():
        if key in KEYWORDS or key.startswith("x-"):
            continue
        looks_like_schema = isinstance(value, dict) and bool(set(value) & {"type", "$ref", "properties", "enum"})
        rule = "lint.properties-misplaced" if looks_like_schema else "lint.unknown-keyword"
        what = f"'{key}' looks like a property written outside properties" if looks_like_schema else f"'{key}' is not a JSON Schema keyword"
        yield PinFinding(rule, endpoint, pin, location=f"{at}/{key}", new=key, message=what)
    props = node.get("properties") if isinstance(node.get("properties"), dict) else {}
    for name in node.get("required") or ():
        if isinstance(props.get(name), dict) and "default" in props[name]:
            yield PinFinding("lint.required-with-default", endpoint, pin, location=f"{at}/properties/{name}", new=name,
                             message=f"'{name}' is required and has a default: make it optional")
    text = node.get("description")
    if isinstance(text, str) and _PROSE.search(text) and node.get("deprecated") is not True:
        yield PinFinding("lint.deprecated-in-prose", endpoint, pin, location=f"{at}/description", new=text,
                         message="the description says deprecated/obsolete but the item is not marked deprecated: true")


def _version_lints(api: Api) -> Iterator[PinFinding]:
    for endpoint, action in api.endpoints():
        vs = action.versions
        for i in range(1, len(vs)):
            prev, cur = vs[i - 1], vs[i]
            if _same(prev, cur):
                yield PinFinding("lint.version-no-op", endpoint, cur.key, old=str(prev.key), new=str(cur.key),
                                 message=f"version {cur.key} is identical to {prev.key}")
            if i >= 2:
                gained = _props(prev) - _props(vs[i - 2])
                lost = sorted(gained - _props(cur))
                if lost:
                    yield PinFinding("lint.version-skips-predecessor", endpoint, cur.key, old=str(prev.key), new=lost,
                                     message=f"version {cur.key} drops {', '.join(lost)} that {prev.key} added")


def _same(a, b) -> bool:
    return canonical.dumps([a.request, a.batch_request and a.batch_request.item, a.response]) == canonical.dumps(
        [b.request, b.batch_request and b.batch_request.item, b.response]
    )


def _props(v) -> set[str]:
    names = set()
    for part, schema in (("request", v.request), ("response", v.response)):
        names |= {f"{part}.{p}" for p in ((schema or {}).get("properties") or {})}
    return names


def _raw_lints(side: Side) -> Iterator[PinFinding]:
    for sname, s in sorted(side.located.items()):
        for action, body in s.tree.items():
            if action.startswith("_") or not isinstance(body, dict):
                continue
            for key, block in body.items():
                try:
                    pin = parse_key(key)
                except ValueError:
                    continue
                if not isinstance(block, dict):
                    continue
                for stray in sorted(set(block) - VERSION_KEYS):
                    yield PinFinding("lint.stray-version-key", f"{sname}.{action}", pin, location=f"/{stray}", new=stray,
                                     message=f"'{stray}' next to request/response is read by nothing (misplaced property?)")
        dups: list[tuple[tuple[str, ...], int]] = []
        hocon.locate(s.texts[s.file], dups)
        paths = {p for p, _ in dups}
        for path, line in dups:
            if any(path[:n] in paths for n in range(1, len(path))):
                continue  # inside an object already reported
            action, key = (path + ("", ""))[:2]
            try:
                pin = parse_key(key)
            except ValueError:
                pin = None
            where = f"{sname}.{action}" if pin is not None else sname
            inside = path[2:] if pin is not None else path
            yield PinFinding("lint.duplicate-key", where, pin, location="/" + "/".join(inside), new=line,
                             message=f"'{'.'.join(path)}' is written twice ({s.file}:{line}); HOCON merges them silently")
