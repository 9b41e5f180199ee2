"""Tasks: create, validate, read, edit, update, clone, move, publicity and tags.

Status changes live in ``task_ops``, parameters and artifacts in ``task_params``, get_all in
``task_query``; this module holds the calls that create or rewrite task documents. Documents are the
wire task (contract §5.1) plus ``company`` and ``rev``, in collection ``tasks``.
"""

from __future__ import annotations

from typing import Any, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import In
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError
from specgate.core.versions import Version

from .identity import Identity
from .task_access import (
    TASKS, check_parent, check_project, find_or_create_project, load_many_writable, load_readable,
    load_writable, modify, new_id, project_descendants, stamp, touch_project,
)
from .task_documents import (
    CREATE_FIELDS, EDIT_FIELDS, check_tags, clean_name, merge_artifacts, parse_moment, prepare_fields,
    to_wire, with_script_defaults,
)
from .task_states import (
    ARCHIVED, CREATED, DELETED_PREFIX, DEVELOPMENT, STATUSES, USER_SET_ALLOWED, add_tag, drop_tag,
)

EMBEDDED = ("execution", "script", "output", "models")
"""Sub-documents an edit merges into (top-level keys replaced); other fields are replaced whole."""


async def _check_references(store: Any, company: str, fields: dict) -> None:
    await check_parent(store, company, fields.get("parent"))
    await check_project(store, company, fields.get("project"))


def _new_document(caller: Identity, fields: dict, now: str) -> dict:
    doc = {
        "id": new_id(),
        "company": caller.company,
        "user": caller.user,
        "status": CREATED,
        "created": now,
        "last_update": now,
        "last_change": now,
        "last_changed_by": caller.user,
        "tags": [],
        "system_tags": [],
        "last_iteration": 0,
        **fields,
    }
    if isinstance(doc.get("script"), dict):
        doc["script"] = with_script_defaults(doc["script"])
    return doc


async def validate(store: Any, caller: Identity, data: dict, version: Version) -> dict:
    """Everything ``create`` checks, without storing; returns the fields a create would store."""
    if isinstance(data.get("parent"), str) and data["parent"].startswith(DELETED_PREFIX):
        data = {k: v for k, v in data.items() if k != "parent"}
    fields = prepare_fields(data, CREATE_FIELDS, version, now_iso())
    await _check_references(store, caller.company, fields)
    return fields


async def create(store: Any, caller: Identity, data: dict, version: Version) -> str:
    now = now_iso()
    fields = prepare_fields(data, CREATE_FIELDS, version, now)
    await _check_references(store, caller.company, fields)
    doc = await store.insert(TASKS, _new_document(caller, fields, now))
    await touch_project(store, caller.company, doc.get("project"), now)
    return doc["id"]


async def get_by_id(store: Any, company: str, task_id: str, version: Version) -> dict:
    return to_wire(await load_readable(store, company, task_id), version)


async def edit(store: Any, caller: Identity, data: dict, version: Version) -> dict:
    doc = await load_writable(store, caller.company, data["task"])
    force = bool(data.get("force"))

    def check(d: dict) -> None:
        if not force and d.get("status") != CREATED:
            raise ApiError(E.INVALID_TASK_STATUS, expected=CREATED, status=d.get("status"))

    check(doc)
    now = now_iso()
    fields = prepare_fields(data, EDIT_FIELDS, version, now, previous=doc)
    if "status" in fields and fields["status"] not in STATUSES:
        raise ApiError(E.VALIDATION_ERROR, f"invalid status {fields['status']!r}", field="status")
    await _check_references(store, caller.company, fields)
    if not fields:
        return {"updated": 0}
    written: dict = {}

    def apply(d: dict) -> None:
        check(d)
        written.clear()
        for key, value in fields.items():
            if key in EMBEDDED and isinstance(value, dict) and isinstance(d.get(key), dict):
                value = {**d[key], **value}
            if key == "script" and isinstance(value, dict):
                value = with_script_defaults(value)
            written[key] = d[key] = value
        moves_last_update = not set(fields) <= USER_SET_ALLOWED
        stamp(d, caller.user, now, last_update=moves_last_update)
        written.update(last_change=now, last_changed_by=caller.user)
        if moves_last_update:
            written["last_update"] = now

    await modify(store, doc, apply)
    if "project" in fields and fields["project"] != doc.get("project"):
        await touch_project(store, caller.company, fields["project"], now)
    return {"updated": 1, "fields": to_wire(written, version)}


def _update_fields(data: dict) -> dict:
    fields: dict = {}
    for key in ("name", "tags", "system_tags", "comment", "project", "created"):
        if key in data:
            fields[key] = data[key]
    if "output__error" in data:
        fields["output.error"] = data["output__error"]
    check_tags(fields.get("tags"), fields.get("system_tags"))
    if "name" in fields:
        fields["name"] = clean_name(fields["name"])
    if "created" in fields:
        fields["created"] = parse_moment(fields["created"])
    return fields


def _write_update(fields: dict, user: str, now: str):
    def apply(d: dict) -> None:
        for key, value in fields.items():
            if key == "output.error":
                d.setdefault("output", {})["error"] = value
            else:
                d[key] = value
        stamp(d, user, now, last_update=False)

    return apply


async def update(store: Any, caller: Identity, data: dict, version: Version) -> dict:
    """Only the user-settable fields are written (``status``/``status_reason`` are ignored)."""
    doc = await load_writable(store, caller.company, data["task"])
    fields = _update_fields(data)
    if not fields:
        return {"updated": 0}
    await check_project(store, caller.company, fields.get("project"))
    now = now_iso()
    await modify(store, doc, _write_update(fields, caller.user, now))
    for project in {fields.get("project"), doc.get("project")} if "project" in fields else ():
        await touch_project(store, caller.company, project, now)
    return {"updated": 1, "fields": to_wire(fields, version)}


async def update_batch(store: Any, caller: Identity, items: Sequence[dict]) -> int:
    """tasks.update for many tasks at once (json-lines); every task must exist and be writable."""
    if not items:
        raise ApiError(E.BATCH_CONTAINS_NO_ITEMS)
    by_id = {item["task"]: item for item in items}
    docs = await load_many_writable(store, caller.company, list(by_id))
    plans = [(doc, _update_fields(by_id[doc["id"]])) for doc in docs]
    updated, now = 0, now_iso()
    for doc, fields in plans:
        if not fields:
            continue
        await check_project(store, caller.company, fields.get("project"))
        await modify(store, doc, _write_update(fields, caller.user, now))
        updated += 1
    return updated


async def clone(store: Any, caller: Identity, data: dict, version: Version) -> dict:
    """A new ``created`` task from an own or public one (contract §5.3, tasks.clone)."""
    source = await load_readable(store, caller.company, data["task"])
    check_tags(data.get("new_task_tags"), data.get("new_task_system_tags"))
    now = now_iso()
    execution = dict(source.get("execution") or {})
    container = data.get("new_task_container")
    input_models = [dict(m, updated=now) for m in data.get("new_task_input_models") or []]
    overrides = dict(data.get("execution_overrides") or {})
    params: dict = {}
    if overrides:
        model = overrides.pop("model", None)
        if not input_models and model:
            input_models = [{"name": "Input Model", "model": model, "updated": now}]
        docker_cmd = overrides.pop("docker_cmd", None)
        if not container and docker_cmd:
            image, _, arguments = docker_cmd.partition(" ")
            container = {"image": image, "arguments": arguments}
        legacy = {k: overrides.pop(k) for k in ("parameters", "model_desc") if k in overrides}
        if legacy:
            params = prepare_fields({"execution": legacy}, ("execution",), version, now, previous=source)
        if "artifacts" in overrides:
            overrides["artifacts"] = merge_artifacts([], overrides["artifacts"])
        execution.update(overrides)
    if execution.get("artifacts"):
        execution["artifacts"] = [a for a in execution["artifacts"] if a.get("mode", "output") != "output"]
    execution.pop("queue", None)

    project, new_project = data.get("new_task_project"), None
    if not project and data.get("new_project_name"):
        project, _ = await find_or_create_project(store, caller, data["new_project_name"])
        new_project = {"id": project, "name": data["new_project_name"]}
    parent = source.get("parent")
    parent = parent if parent and not parent.startswith(DELETED_PREFIX) else source["id"]
    system_tags = data.get("new_task_system_tags") or [
        t for t in source.get("system_tags") or [] if t not in (DEVELOPMENT, ARCHIVED)
    ]
    fields = {
        "name": clean_name(data.get("new_task_name") or source.get("name")),
        "comment": data.get("new_task_comment") or source.get("comment"),
        "parent": data.get("new_task_parent") or parent,
        "project": project or source.get("project"),
        "tags": data.get("new_task_tags") or source.get("tags") or [],
        "system_tags": system_tags,
        "type": source.get("type"),
        "script": source.get("script"),
        "output": {"destination": source["output"]["destination"]}
        if (source.get("output") or {}).get("destination") else None,
        "models": {"input": input_models or (source.get("models") or {}).get("input") or []},
        "container": container or source.get("container"),
        "execution": execution,
        "configuration": data.get("new_task_configuration") or params.get("configuration") or source.get("configuration"),
        "hyperparams": data.get("new_task_hyperparams") or params.get("hyperparams") or source.get("hyperparams"),
    }
    strict = bool(data.get("validate_references"))
    if strict or data.get("new_task_parent"):
        await check_parent(store, caller.company, fields["parent"])
    if strict or project:
        await check_project(store, caller.company, fields["project"])
    doc = await store.insert(TASKS, _new_document(caller, {k: v for k, v in fields.items() if v is not None}, now))
    await touch_project(store, caller.company, doc.get("project"), now)
    return {"id": doc["id"], **({"new_project": new_project} if new_project else {})}


async def move(store: Any, caller: Identity, data: dict) -> dict:
    if not data.get("project") and not data.get("project_name"):
        raise ApiError(E.MISSING_REQUIRED_FIELDS, "project or project_name is required")
    docs = await load_many_writable(store, caller.company, data["ids"])
    project = data.get("project")
    if project:
        await check_project(store, caller.company, project)
    else:
        project, _ = await find_or_create_project(store, caller, data["project_name"])
    now = now_iso()

    def place(d: dict) -> None:
        d["project"] = project
        stamp(d, caller.user, now, last_update=False)

    for doc in docs:
        await modify(store, doc, place)
    for touched in {project, *(d.get("project") for d in docs)}:
        await touch_project(store, caller.company, touched, now)
    return {"project_id": project}


async def make_public(store: Any, caller: Identity, ids: Sequence[str], public: bool) -> int:
    """Move tasks to the public company ``""`` (remembering ``company_origin``) or back.

    The store keeps a document's company fixed, so a task changes company by delete-then-insert.
    """
    ids = list(dict.fromkeys(ids))
    source = "" if not public else caller.company
    docs = await store.find(TASKS, companies=[source], where=In("id", tuple(ids)))
    if not public:
        docs = [d for d in docs if d.get("company_origin") == caller.company]
    missing = [i for i in ids if i not in {d["id"] for d in docs}]
    if missing:
        raise ApiError(E.INVALID_TASK_ID, ids=missing)
    now, updated = now_iso(), 0
    for doc in docs:
        if not await store.delete(TASKS, doc["id"], companies=[source], expected_rev=doc["rev"]):
            continue
        moved = {k: v for k, v in doc.items() if k != "rev"}
        if public:
            moved.update(company="", company_origin=caller.company)
        else:
            moved["company"] = caller.company
            moved.pop("company_origin", None)
        moved["last_update"] = now
        await store.insert(TASKS, moved)
        updated += 1
    return updated


async def update_tags(store: Any, caller: Identity, data: dict) -> int:
    add, remove = data.get("add_tags") or [], data.get("remove_tags") or []
    check_tags(add)
    docs = await load_many_writable(store, caller.company, data.get("ids") or [])
    now = now_iso()

    def retag(d: dict) -> None:
        for tag in add:
            add_tag(d, "tags", tag)
        for tag in remove:
            drop_tag(d, "tags", tag)
        stamp(d, caller.user, now, last_update=False)

    for doc in docs:
        await modify(store, doc, retag)
    return len(docs)


async def get_types(store: Any, company: str, projects: Sequence[str] | None) -> list[str]:
    where = None
    if projects:
        where = In("project", tuple(await project_descendants(store, company, list(projects))))
    return await store.distinct(TASKS, "type", companies=[company, ""], where=where)
