"""Parsed service trees → checked IR.

A service file (ClearML layout) holds ``_description``, ``_definitions``, an optional ``_default`` with
attribute defaults, and actions; an action holds attributes and ``"MAJOR.MINOR"`` version blocks with
``request`` (or ``batch_request``) and ``response``. API-wide attribute defaults come from
``_api_defaults.conf``. Structure and semantics are checked here in plain Python rather than with a
meta-schema (architecture §2 step 3): each rule then produces a message naming the action and version.
Schema bodies themselves are checked against the draft-07 meta-schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specgate.core.ir import Action, Api, Attributes, BatchRequest, EndpointVersion, Service, Source
from specgate.core.versions import Version, VersionError, floor, parse_key

from . import bindings, hocon, schemas
from .diagnostics import Diagnostics
from .sources import SpecTree

ATTRIBUTES = ("internal", "authorize", "allow_roles", "deprecated", "sunset", "stability")
STABILITY = ("stable", "experimental")
_UNPARSED = {"unknown-base", "unresolved-substitution"}


@dataclass
class Located:
    """A parsed service with what is needed to point diagnostics at lines."""

    name: str
    file: str
    tree: dict[str, Any]
    lines: dict[tuple[str, ...], int]
    texts: dict[str, str]  # every file the service is made of, by relative path

    def line(self, *path: str) -> int:
        return self.lines.get(tuple(path), 0)

    def find(self, needle: str, *near: str) -> tuple[str, int]:
        """The file and line where ``needle`` is written, preferring the service file after ``near``."""
        start = self.line(*near) if near else 0
        own = self.texts[self.file]
        at = own.find(needle, _offset(own, start))
        if at < 0:
            at = own.find(needle)
        if at >= 0:
            return self.file, hocon.line_of(own, at)
        for f, text in self.texts.items():
            if (at := text.find(needle)) >= 0:
                return f, hocon.line_of(text, at)
        return self.file, start


def _offset(text: str, line: int) -> int:
    pos = 0
    for _ in range(max(line - 1, 0)):
        pos = text.find("\n", pos) + 1
    return pos


def build(tree: SpecTree, diags: Diagnostics) -> Api | None:
    """Compile a spec tree into the IR, or return None with every problem in ``diags``."""
    return build_located(tree, diags)[0]


def build_located(tree: SpecTree, diags: Diagnostics) -> tuple[Api | None, list[Located]]:
    """``build``, also returning the parsed services with their texts (``specgate diff`` reads both)."""
    api_defaults = _api_defaults(tree, diags)
    located = []
    for path, parsed in hocon.parse_all(list(tree.services), tree.root, diags).items():
        if parsed is None:
            continue
        texts = {hocon.rel(f, tree.root): f.read_text() for f in parsed.files}
        file = hocon.rel(path, tree.root)
        located.append(Located(path.stem, file, parsed.tree, hocon.locate(texts[file]), texts))
    services = {s.name: _service(s, api_defaults, diags) for s in located}
    dialects = bindings.dialects(tree.directory, tree.root, diags)
    if diags:
        return None, located
    # REST dialects number their versions after their own clients (CVAT 2.80): they never move the RPC maximum
    released = [
        v.key for s in services.values() if s.dialect is None for a in s.actions.values() for v in a.versions if not v.draft
    ]
    max_version = max(released, default=Version(0, 0))
    api = Api(tree.digest, max_version, dict(sorted(services.items())), dict(sorted(dialects.items())))
    where = {
        (f"{s.name}.{a.name}", str(v.key)): (v.source.file, v.source.line)
        for s in services.values() for a in s.actions.values() for v in a.versions if v.source
    }  # fmt: skip
    bindings.check_routes(api, {s.name: s.dialect for s in services.values() if s.dialect}, where, diags)
    return (None if diags else api), located


def _api_defaults(tree: SpecTree, diags: Diagnostics) -> dict[str, Any]:
    if tree.api_defaults is None:
        return {}
    parsed = hocon.parse_all([tree.api_defaults], tree.root, diags)[tree.api_defaults]
    return parsed.tree if parsed else {}


def _service(s: Located, api_defaults: dict[str, Any], diags: Diagnostics) -> Service:
    definitions = s.tree.get("_definitions", {})
    if not isinstance(definitions, dict):
        diags.add(s.file, s.line("_definitions"), "bad-structure", "_definitions must be an object")
        definitions = {}
    defaults = {**api_defaults, **s.tree.get("_default", {})}
    actions = {}
    for name, body in s.tree.items():
        if name.startswith("_"):
            continue
        endpoint = f"{s.name}.{name}"
        if not isinstance(body, dict):
            diags.add(s.file, s.line(name), "bad-structure", "an action must be an object of version blocks", endpoint)
            continue
        actions[name] = _action(s, name, body, defaults, definitions, diags)
    dialect = s.tree.get("_default", {}).get("dialect")
    if dialect is not None and not isinstance(dialect, str):
        diags.add(s.file, s.line("_default", "dialect"), "bad-structure", "_default.dialect must be a dialect name")
        dialect = None
    return Service(s.name, dict(sorted(actions.items())), str(s.tree.get("_description", "")), dialect)


def _action(s, name, body, defaults, definitions, diags: Diagnostics) -> Action:
    endpoint = f"{s.name}.{name}"
    attrs = {**defaults, **{k: v for k, v in body.items() if k in ATTRIBUTES}}
    attributes = _attributes(attrs, s, name, diags)
    versions = []
    for key, block in body.items():
        if key in ATTRIBUTES:
            continue
        line = s.line(name, key)
        try:
            version = parse_key(key)
        except VersionError as e:
            diags.add(s.file, line, "bad-version-key", str(e), endpoint, key)
            continue
        if not isinstance(block, dict):
            diags.add(s.file, line, "bad-structure", "a version must be an object", endpoint, key)
            continue
        versions.append((version, key, block, line))
    if not versions and not any(d.endpoint == endpoint for d in diags.items):
        diags.add(s.file, s.line(name), "no-versions", "action has no version blocks", endpoint)
    versions.sort(key=lambda v: v[0])
    built = tuple(
        ev
        for version, key, block, line in versions
        if (ev := _version(s, name, body, version, key, block, line, definitions, diags)) is not None
    )
    return Action(name, attributes, built, Source(s.file, s.line(name)))


def _attributes(attrs: dict[str, Any], s: Located, name: str, diags: Diagnostics) -> Attributes:
    endpoint = f"{s.name}.{name}"

    def bad(flag: str, message: str) -> None:
        diags.add(s.file, s.line(name, flag), "bad-attribute", message, endpoint)

    if not isinstance(attrs.get("internal", False), bool):
        bad("internal", "internal must be true or false")
    if not isinstance(attrs.get("deprecated", False), bool):
        bad("deprecated", "deprecated must be true or false")
    authorize = attrs.get("authorize", True)
    if authorize is not None and not isinstance(authorize, bool):
        bad("authorize", "authorize must be true, false or null (a token is checked when sent, never required)")
    roles = attrs.get("allow_roles", ["*"])
    if not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
        bad("allow_roles", "allow_roles must be a list of strings")
        roles = ["*"]
    sunset = attrs.get("sunset")
    if sunset is not None and not (isinstance(sunset, str) and _is_date(sunset)):
        bad("sunset", "sunset must be a date written YYYY-MM-DD")
        sunset = None
    stability = attrs.get("stability", "stable")
    if stability not in STABILITY:
        bad("stability", f"stability must be one of {', '.join(STABILITY)}")
        stability = "stable"
    return Attributes(
        internal=attrs.get("internal", False) is True,
        authorize=authorize if isinstance(authorize, bool) else None,
        allow_roles=tuple(roles),
        deprecated=attrs.get("deprecated", False) is True,
        sunset=sunset,
        stability=stability,
    )


def _is_date(text: str) -> bool:
    from datetime import date

    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _version(s, name, body, version, key, block, line, definitions, diags: Diagnostics) -> EndpointVersion | None:
    endpoint = f"{s.name}.{name}"
    if any(d.endpoint == endpoint and d.version == key and d.code in _UNPARSED for d in diags.items):
        return None  # its content is unknown; anything more said about it would be an echo
    problems = len(diags.items)
    for attr in ATTRIBUTES:
        if attr in block:
            diags.add(
                s.file,
                s.line(name, key, attr) or line,
                "attribute-in-version",
                f"{attr} is an action attribute: write it on the action or in the service's _default, not in a version",
                endpoint,
                key,
            )
    request, batch = block.get("request"), block.get("batch_request")
    if request is None and batch is None:
        diags.add(s.file, line, "missing-request", "version has neither request nor batch_request", endpoint, key)
    if "response" not in block:
        diags.add(s.file, line, "missing-response", "version has no response", endpoint, key)

    def effective(part: str, schema: Any) -> dict | None:
        if not isinstance(schema, dict):
            diags.add(s.file, s.line(name, key, part) or line, "bad-structure", f"{part} must be an object", endpoint, key)
            return None
        result = schemas.effective(schema, definitions)
        for ref in result.missing:
            f, ln = s.find(ref, name, key)
            diags.add(f, ln, "unresolved-ref", f'"$ref": "{ref}" names no definition', endpoint, key)
        for message in schemas.meta_errors(result.schema):
            diags.add(s.file, s.line(name, key, part) or line, "bad-schema", f"{part}: {message}", endpoint, key)
        return result.schema

    req = effective("request", request) if request is not None else None
    http = None
    if "http" in block:
        where = (s.file, s.line(name, key, "http") or line)
        http = bindings.binding(block["http"], req, where, endpoint, key, diags)
    resp = effective("response", block["response"]) if "response" in block else None
    batch_request = _batch(s, name, body, version, key, batch, line, definitions, diags) if batch is not None else None
    if len(diags.items) > problems or resp is None:
        return None
    return EndpointVersion(
        key=version,
        response=resp,
        request=req,
        batch_request=batch_request,
        http=http,
        description=" ".join(str(block.get("description", "")).split()),
        source=Source(s.file, line),
    )


def _batch(s, name, body, version, key, batch, line, definitions, diags: Diagnostics) -> BatchRequest | None:
    """Items are validated as the named action's request at this endpoint's own key (floor rule)."""
    endpoint = f"{s.name}.{name}"
    where = s.line(name, key, "batch_request") or line
    target = batch.get("action") if isinstance(batch, dict) else None
    action = s.tree.get(target) if isinstance(target, str) else None
    if not isinstance(action, dict):
        diags.add(s.file, where, "bad-batch-request", f"batch_request names no action of {s.name}: {target!r}", endpoint, key)
        return None
    keys = {}
    for k in action:
        try:
            keys[parse_key(k)] = k
        except VersionError:
            pass
    chosen = floor(sorted(keys), version)
    request = action[keys[chosen]].get("request") if chosen is not None else None
    if not isinstance(request, dict):
        diags.add(s.file, where, "bad-batch-request", f"{s.name}.{target} has no request at or below {key}", endpoint, key)
        return None
    result = schemas.effective(request, definitions)
    for ref in result.missing:
        f, ln = s.find(ref, target)
        diags.add(f, ln, "unresolved-ref", f'"$ref": "{ref}" names no definition', endpoint, key)
    return BatchRequest(target, str(batch.get("version", "")), result.schema)
