"""tasks.get_all / get_all_ex / get_by_id_ex: ClearML's get_all semantics (contract §8) over the store.

Beyond the shared ``queries`` translation this adds what is task-specific: ``include_subprojects``,
hiding tasks with system tag ``hidden``, ``search_text``, the legacy projection paths, and ordering
that puts tasks lacking the first sort field last in ascending order too.

``search_text`` is approximated without a text index: the text is split into words (a quoted phrase
is one word) and a task matches when any word occurs, case-insensitively, in its name, comment, id,
report, input/output model ids, script repository or entry point. ``@text_score`` ordering is ignored.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import All, And, Empty, Eq, Exists, Filter, In, NotIn, Or, Range, Regex
from specgate.core.errors import ApiError
from specgate.core.versions import Version
from specgate.domain.queries import QuerySpec, build, encode_scroll, portable

from .task_access import TASKS, project_descendants
from .task_documents import parse_moment, wire_shaper
from .task_states import HIDDEN

SPEC = QuerySpec(
    pattern=("name", "comment", "report"),
    lists=("id", "user", "tags", "system_tags", "type", "status", "project", "parent", "execution.queue",
           "models.input.model"),
    list_prefixes=("hyperparams.",),
    ranges=("created", "started", "active_duration", "last_iteration"),
    range_prefixes=("last_metrics.",),
    datetimes=("status_changed", "last_update", "last_change"),
    plain_prefixes=("runtime.",),
)
LEGACY_PATHS = (
    ("execution.parameters", "hyperparams.Args"),
    ("execution.model_desc", "configuration"),
    ("execution.docker_cmd", "container"),
)
TEXT_FIELDS = ("name", "comment", "id", "report", "models.input.model", "models.output.model",
               "script.repository", "script.entry_point")
_BAD_FIELD = re.compile(r"(^|\.)(\$|\.|$)|[\"'\\\x00-\x1f]")


def _legacy(path: str) -> str:
    for old, new in LEGACY_PATHS:
        for prefix in ("", "-"):
            if path.startswith(prefix + old):
                return prefix + new + path[len(prefix + old):]
    return path


def _check_field(name: str) -> str:
    if not name or _BAD_FIELD.search(name):
        raise ApiError(E.INVALID_FIELDS, err=f"invalid field name {name!r}")
    return name


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def _text_filter(text: str) -> Filter | None:
    words = [a or b for a, b in re.findall(r'"([^"]+)"|(\S+)', text)]
    parts = tuple(Regex(f, re.escape(w), ignore_case=True) for w in words for f in TEXT_FIELDS)
    return Or(parts) if parts else None


def _fields_used(f: Filter | None) -> list[str]:
    if f is None:
        return []
    if isinstance(f, (And, Or)):
        return [name for item in f.items for name in _fields_used(item)]
    return [f.field] if isinstance(f, (Eq, In, NotIn, All, Range, Regex, Exists, Empty)) else []


async def _prepare(store: Any, company: str, data: dict) -> dict:
    data = {_legacy(k): v for k, v in data.items()}
    for key in ("only_fields", "projection", "order_by"):
        value = data.get(key)
        if isinstance(value, str):
            value = [value]
        if value:
            data[key] = [_legacy(p) for p in value]
    for key in ("created", "started"):
        if isinstance(data.get(key), list):
            data[key] = [parse_moment(v) for v in data[key]]
    for key in [k for k in data if k.startswith("last_metrics.")]:
        if isinstance(data[key], list):
            data[key] = [_number(v) for v in data[key]]
    if data.pop("include_subprojects", False) and data.get("project"):
        projects = data["project"] if isinstance(data["project"], list) else [data["project"]]
        plain = [p for p in projects if isinstance(p, str) and not p.startswith(("-", "__$"))]
        others = [p for p in projects if p not in plain]
        data["project"] = others + await project_descendants(store, company, plain)
    return data


async def _fetch(store: Any, companies: list[str], where: Filter | None, order: list, skip: int, limit: int,
                 fields: list[str] | None) -> list[dict]:
    first, descending = order[0]
    if first == "id" or descending:  # missing values sort last when descending in every store
        return await store.find(TASKS, companies=companies, where=where, order=order, skip=skip, limit=limit, fields=fields)
    present = Exists(first, True) if where is None else And((where, Exists(first, True)))
    absent = Exists(first, False) if where is None else And((where, Exists(first, False)))
    docs = await store.find(TASKS, companies=companies, where=present, order=order, skip=skip, limit=limit, fields=fields)
    # how many have the field: only counted when the page starts past them all (a count is O(matches))
    count = skip + len(docs) if docs or not skip else await store.count(TASKS, companies=companies, where=present)
    if len(docs) < limit:
        docs += await store.find(
            TASKS, companies=companies, where=absent, order=order[1:] or [("id", False)],
            skip=max(0, skip - count), limit=limit - len(docs), fields=fields,
        )
    return docs


async def get_all(
    store: Any, company: str, data: dict, version: Version, *, allow_public: bool = True, hide: bool = True
) -> dict:
    """The ``{"tasks": [...], "scroll_id"?}`` answer of a get_all-style request."""
    data = await _prepare(store, company, data)
    extra: list[Filter] = []
    if hide and not (data.get("search_hidden") or data.get("id")):
        extra.append(NotIn("system_tags", (HIDDEN,)))
    if data.get("search_text") and (text := _text_filter(data["search_text"])) is not None:
        extra.append(text)
    query = build(data, SPEC, extra)
    where = portable(query.where) if query.where is not None else None
    for name in _fields_used(where) + [name for name, _ in query.order]:
        _check_field(name)
    paths: Sequence[str] = data.get("only_fields") or data.get("projection") or []
    includes = [p for p in paths if not p.startswith("-")]
    excludes = [p[1:] for p in paths if p.startswith("-")]
    fields = sorted({p.split(".")[0] for p in includes}) if includes else None
    companies = [company, ""] if allow_public else [company]
    docs = await _fetch(store, companies, where, query.order, query.skip, query.limit, fields)
    shape = wire_shaper(version, includes, excludes)
    answer: dict = {"tasks": [shape(d) for d in docs]}
    if query.scroll is not None:
        answer["scroll_id"] = encode_scroll(query.skip + len(docs))
    return answer
