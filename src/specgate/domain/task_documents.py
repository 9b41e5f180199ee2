"""Task documents in and out: request fields → stored form, stored form → wire form.

The stored document is the wire task (contract §5.1) plus ``company``, ``rev`` and the exclude-by-default
fields. Hyper-parameter sections and names, configuration names and container keys are stored exactly
as given (the store keeps keys intact), so no escaping is needed on either side. Artifacts are stored
as the wire list, one entry per (key, mode), sorted by key.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from specgate._generated import errors as E
from specgate.core.clock import to_iso
from specgate.core.errors import ApiError
from specgate.core.versions import Version

from .task_states import EXCLUDED_BY_DEFAULT, INTERNAL

V2_9, V2_13 = Version(2, 9), Version(2, 13)

CREATE_FIELDS = (
    "name", "tags", "system_tags", "type", "comment", "parent", "project", "models", "container",
    "output_dest", "execution", "hyperparams", "configuration", "script", "runtime",
)
EDIT_FIELDS = CREATE_FIELDS + ("status",)
UPDATE_FIELDS = ("name", "tags", "system_tags", "comment", "project", "created", "output__error")
SCRIPT_STRIPPED = ("binary", "repository", "tag", "branch", "version_num", "entry_point", "working_dir")
SCRIPT_DEFAULTS = {"binary": "python", "repository": "", "entry_point": ""}
DEFAULT_ARTIFACT_MODE = "output"
LEGACY_TYPE = "legacy"
DEFAULT_SECTION = "Args"
TF_DEFINE = "TF_DEFINE"
MODEL_NAMES = {"input": "Input Model", "output": "Output Model"}


# --- validation ----------------------------------------------------------------------------------


def check_tags(*lists: Iterable[str] | None) -> None:
    """Tag values may not start with the query-operator prefix ``__$`` (400/16)."""
    for values in lists:
        bad = [t for t in values or () if isinstance(t, str) and t.startswith("__$")]
        if bad:
            raise ApiError(E.FIELDS_VALUE_ERROR, "unsupported tag prefix", values=bad)


def clean_name(name: Any, field: str = "name") -> str:
    """Stripped, at least 3 characters (400/800 otherwise)."""
    value = name.strip() if isinstance(name, str) else name
    if not isinstance(value, str) or len(value) < 3:
        raise ApiError(E.DATA_VALIDATION_ERROR, f"{field} must be at least 3 characters long", **{field: name})
    return value


def parse_moment(value: Any) -> Any:
    """A client's ISO date (zone optional, naive = UTC) in the stored fixed-width form; 400/16 if unparseable."""
    if not isinstance(value, str):
        return value
    try:
        return to_iso(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ApiError(E.FIELDS_VALUE_ERROR, f"invalid date {value!r}") from None


def _non_empty(key: str, what: str) -> str:
    if not key:
        raise ApiError(E.VALIDATION_ERROR, f"Empty {what} name is not allowed")
    return key


def artifact_key(artifact: dict) -> tuple[str, str]:
    return artifact["key"], artifact.get("mode", DEFAULT_ARTIFACT_MODE)


def merge_artifacts(current: Sequence[dict], changes: Sequence[dict]) -> list[dict]:
    """Current artifacts updated by (key, mode) with ``changes``; the wire list, sorted by key."""
    by_id = {artifact_key(a): a for a in current or ()}
    for artifact in changes:
        item = {"mode": DEFAULT_ARTIFACT_MODE, **artifact}
        by_id[artifact_key(item)] = item
    return sorted(by_id.values(), key=lambda a: (a["key"], a.get("mode", DEFAULT_ARTIFACT_MODE)))


# --- request fields → stored fields ----------------------------------------------------------------


def _legacy_params(fields: dict, previous: dict | None) -> None:
    """``execution.parameters`` / ``execution.model_desc`` (clients < 2.9) → ``hyperparams`` / ``configuration``
    entries of type ``legacy``, replacing the legacy entries already stored."""
    execution = fields.get("execution")
    if not isinstance(execution, dict):
        return
    for old, new, section_default in (("parameters", "hyperparams", DEFAULT_SECTION), ("model_desc", "configuration", None)):
        legacy = execution.pop(old, None)
        if legacy is None:
            continue
        if not fields.get(new) and previous and previous.get(new):
            kept = copy.deepcopy(previous[new])
            if section_default:
                for section in list(kept):
                    kept[section] = {k: v for k, v in kept[section].items() if v.get("type") != LEGACY_TYPE}
                    if not kept[section]:
                        del kept[section]
            else:
                kept = {k: v for k, v in kept.items() if v.get("type") != LEGACY_TYPE}
            fields[new] = kept
        target = fields.setdefault(new, {})
        for full_name, value in legacy.items():
            item = {"name": full_name, "type": LEGACY_TYPE, "value": str(value)}
            if section_default is None:
                target[full_name] = item
                continue
            section, name = section_default, full_name
            head, _, tail = full_name.partition("/")
            if head == TF_DEFINE:
                section, name = head, _non_empty(tail, "parameter")
            item.update(name=name, section=section)
            target.setdefault(section, {})[name] = item


def _pre_2_13(fields: dict, now: str) -> None:
    """``execution.model`` → ``models.input``; ``execution.docker_cmd`` → ``container`` (clients < 2.13)."""
    execution = fields.get("execution")
    if not isinstance(execution, dict):
        return
    if "model" in execution:
        model = execution.pop("model")
        models = fields.setdefault("models", {})
        models["input"] = [{"name": MODEL_NAMES["input"], "model": model, "updated": now}] if model else []
    if "docker_cmd" in execution:
        image, _, arguments = execution.pop("docker_cmd").partition(" ")
        fields["container"] = {**(fields.get("container") or {}), "image": image, "arguments": arguments}


def prepare_fields(
    data: dict, allowed: Sequence[str], version: Version, now: str, previous: dict | None = None
) -> dict:
    """The stored form of the task fields a create/validate/edit request carries (unknown keys ignored)."""
    fields = {k: copy.deepcopy(data[k]) for k in allowed if k in data}
    if version < V2_13:
        _pre_2_13(fields, now)
    check_tags(fields.get("tags"), fields.get("system_tags"))
    if "name" in fields:
        fields["name"] = clean_name(fields["name"])
    if "output_dest" in fields:
        output = dict((previous or {}).get("output") or {})
        output["destination"] = fields.pop("output_dest")
        fields["output"] = output
    _legacy_params(fields, previous)
    for section, params in (fields.get("hyperparams") or {}).items():
        _non_empty(section, "section")
        for name in params:
            _non_empty(name, "parameter")
    for name in fields.get("configuration") or {}:
        _non_empty(name, "configuration")
    models = fields.get("models")
    if isinstance(models, dict):
        for kind in ("input", "output"):
            for item in models.get(kind) or ():
                item["updated"] = now
    script = fields.get("script")
    if isinstance(script, dict):
        for key in SCRIPT_STRIPPED:
            if isinstance(script.get(key), str):
                script[key] = script[key].strip()
    execution = fields.get("execution")
    if isinstance(execution, dict):
        if "artifacts" in execution:
            execution["artifacts"] = merge_artifacts([], execution["artifacts"])
        if isinstance(execution.get("model_labels"), dict):
            execution["model_labels"] = {k: int(v) for k, v in execution["model_labels"].items()}
    return fields


def with_script_defaults(script: dict) -> dict:
    return {**SCRIPT_DEFAULTS, **script}


# --- stored document → wire form -------------------------------------------------------------------


def _legacy_out(doc: dict, version: Version) -> None:
    if version < V2_9:
        for new, old, sectioned in (("hyperparams", "parameters", True), ("configuration", "model_desc", False)):
            data = doc.get(new) or {}
            items = [p for sec in data.values() for p in sec.values()] if sectioned else list(data.values())
            legacy = [p for p in items if isinstance(p, dict) and p.get("type") == LEGACY_TYPE]
            if legacy:
                doc.setdefault("execution", {})[old] = {
                    (f"{TF_DEFINE}/{p['name']}" if p.get("section") == TF_DEFINE else p["name"]): p.get("value")
                    for p in legacy
                }
    if version < V2_13:
        models = doc.get("models") or {}
        if models.get("input"):
            doc.setdefault("execution", {})["model"] = models["input"][0].get("model")
        if models.get("output"):
            doc.setdefault("output", {})["model"] = models["output"][-1].get("model")
        container = doc.get("container") or {}
        if container.get("image"):
            cmd = " ".join(v for v in (container.get("image"), container.get("arguments")) if v)
            doc.setdefault("execution", {})["docker_cmd"] = cmd


def to_wire(doc: dict, version: Version, includes: Sequence[str] | None = None, excludes: Sequence[str] = ()) -> dict:
    """A stored task as clients see it: projected, tags sorted, internals dropped, legacy fields added.

    ``doc`` is never changed, but the answer shares the nested values it does not rewrite: stores hand
    out freshly decoded documents, and a deep copy of every task was a tenth of a get_by_id.
    """
    out = {k: v for k, v in doc.items() if k not in INTERNAL}
    if includes:
        out = project(out, includes)
    else:
        for key in EXCLUDED_BY_DEFAULT:
            out.pop(key, None)
    for path in excludes:
        head = path.split(".")[0]
        if head in out:
            out[head] = copy.deepcopy(out[head])  # only what is pruned in place is copied
        drop_path(out, path.split("."))
    for field in ("tags", "system_tags"):
        if isinstance(out.get(field), list):
            out[field] = sorted(out[field])
    artifacts = (out.get("execution") or {}).get("artifacts") if isinstance(out.get("execution"), dict) else None
    if isinstance(artifacts, list):
        out["execution"] = {**out["execution"], "artifacts": sorted(artifacts, key=lambda a: a.get("key", "") if isinstance(a, dict) else "")}
    if version < V2_13:
        for key in ("execution", "output"):
            if isinstance(out.get(key), dict):
                out[key] = dict(out[key])  # the legacy fields below are added to copies
    _legacy_out(out, version)
    return out


def wire_shaper(version: Version, includes: Sequence[str], excludes: Sequence[str]) -> Callable[[dict], dict]:
    """``to_wire`` with its arguments fixed, for a page of tasks: the projection list calls send (top-level
    names, a current version, no artifacts to sort) becomes one comprehension plus the tag sorts."""
    keep = tuple(p for p in includes if p not in INTERNAL)
    if not includes or excludes or version < V2_13 or "execution" in keep or any("." in p for p in keep):
        return lambda doc: to_wire(doc, version, includes, excludes)

    def shape(doc: dict) -> dict:
        out = {k: doc[k] for k in keep if k in doc}
        for field in ("tags", "system_tags"):
            if isinstance(out.get(field), list):
                out[field] = sorted(out[field])
        return out

    return shape


# --- projection with dotted paths (keys may themselves contain dots) -------------------------------


def _pick(node: Any, parts: list[str]) -> tuple[bool, Any]:
    if not parts:
        return True, copy.deepcopy(node)
    if isinstance(node, list):
        picked = []
        for item in node:
            if isinstance(item, dict):
                found, value = _pick(item, parts)
                picked.append(value if found else {})
        return True, picked
    if not isinstance(node, dict):
        return False, None
    for i in range(len(parts), 0, -1):  # longest key first: "hyperparams.Args.a.b" may name key "a.b"
        key = ".".join(parts[:i])
        if key in node:
            found, value = _pick(node[key], parts[i:])
            if found:
                return True, {key: value}
    return False, None


def _merge(into: Any, more: Any) -> Any:
    if isinstance(into, dict) and isinstance(more, dict):
        for key, value in more.items():
            into[key] = _merge(into[key], value) if key in into else value
        return into
    if isinstance(into, list) and isinstance(more, list) and len(into) == len(more):
        return [_merge(a, b) for a, b in zip(into, more)]
    return more


def project(doc: dict, paths: Sequence[str]) -> dict:
    """Only the dotted ``paths`` of ``doc``; arrays of sub-documents are projected element-wise.

    Top-level names alone (what list pages ask for) share their values, as ``to_wire`` does; paths
    into sub-documents copy what they pick, because picks of one sub-document are merged in place.
    """
    if not any("." in path for path in paths):
        return {path: doc[path] for path in paths if path in doc}
    out: dict = {}
    for path in paths:
        found, value = _pick(doc, path.split("."))
        if found:
            out = _merge(out, value)
    return out


def drop_path(node: Any, parts: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            drop_path(item, parts)
        return
    if not isinstance(node, dict) or not parts:
        return
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            if i == len(parts):
                del node[key]
            else:
                drop_path(node[key], parts[i:])
            return


def get_path(node: Any, path: str) -> Any:
    """The value at a dotted path (keys may contain dots), or None."""
    parts = path.split(".")
    while parts:
        if not isinstance(node, dict):
            return None
        for i in range(len(parts), 0, -1):
            key = ".".join(parts[:i])
            if key in node:
                node, parts = node[key], parts[i:]
                break
        else:
            return None
    return node
