"""Hyper-parameters, configuration, artifacts, models and requirements of a task.

Edits need a ``created`` task, or with ``force`` a ``queued``/``in_progress`` one; hyper-parameter edits
that touch only the ``properties`` section are allowed in every status and do not move ``last_update``.
As ClearML's handlers do, artifact and model edits always act as forced. Names may contain ``.`` or
``$``: maps are stored with their keys as given.
"""

from __future__ import annotations

from typing import Any, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import In
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import Identity
from .task_access import TASKS, check_updatable, load_many_readable, load_writable, modify, properties_only, stamp
from .task_documents import artifact_key, merge_artifacts


def _require(item: dict, key: str, what: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(E.VALIDATION_ERROR, f"Empty {what} name is not allowed", field=key)
    return value


# --- hyper-parameters ------------------------------------------------------------------------------


def _params_list(hyperparams: dict) -> list[dict]:
    items = [
        {"section": section, "name": name, **item}
        for section, params in (hyperparams or {}).items()
        for name, item in params.items()
    ]
    return sorted(items, key=lambda p: (p["section"], p["name"]))


async def get_hyper_params(store: Any, company: str, ids: Sequence[str]) -> list[dict]:
    docs = await load_many_readable(store, company, ids)
    return [{"task": d["id"], "hyperparams": _params_list(d.get("hyperparams") or {})} for d in docs]


async def edit_hyper_params(store: Any, caller: Identity, data: dict) -> int:
    items = [dict(item) for item in data["hyperparams"]]
    only_properties = properties_only(items)
    sections: dict[str, dict] = {}
    for item in items:
        section, name = _require(item, "section", "section"), _require(item, "name", "parameter")
        sections.setdefault(section, {})[name] = item
    replace = data.get("replace_hyperparams") or "none"
    force = bool(data.get("force"))
    doc = await load_writable(store, caller.company, data["task"])

    def edit(d: dict) -> None:
        check_updatable(d, force, allow_all=only_properties)
        current = d.get("hyperparams") or {}
        if replace == "all":
            current = sections
        elif replace == "section":
            current.update(sections)
        else:
            for section, params in sections.items():
                current.setdefault(section, {}).update(params)
        d["hyperparams"] = current
        stamp(d, caller.user, now_iso(), last_update=not only_properties)

    await modify(store, doc, edit)
    return 1


async def delete_hyper_params(store: Any, caller: Identity, data: dict) -> int:
    items = [dict(item) for item in data["hyperparams"]]
    only_properties = properties_only(items)
    whole = {_require(i, "section", "section") for i in items if not i.get("name")}
    single = [(_require(i, "section", "section"), i["name"]) for i in items if i.get("name")]
    if any(section in whole for section, _ in single):
        raise ApiError(E.FIELDS_CONFLICT, "Cannot delete section field if the whole section was scheduled for deletion")
    force = bool(data.get("force"))
    doc = await load_writable(store, caller.company, data["task"])

    def delete(d: dict) -> None:
        check_updatable(d, force, allow_all=only_properties)
        current = d.get("hyperparams") or {}
        for section in whole:
            current.pop(section, None)
        for section, name in single:
            (current.get(section) or {}).pop(name, None)
        d["hyperparams"] = current
        stamp(d, caller.user, now_iso(), last_update=not only_properties)

    await modify(store, doc, delete)
    return 1


# --- configuration ---------------------------------------------------------------------------------


async def get_configurations(store: Any, company: str, ids: Sequence[str], names: Sequence[str] | None) -> list[dict]:
    docs = await load_many_readable(store, company, ids)
    out = []
    for d in docs:
        items = [{"name": name, **item} for name, item in (d.get("configuration") or {}).items()]
        if names:
            items = [i for i in items if i["name"] in names]
        out.append({"task": d["id"], "configuration": sorted(items, key=lambda i: i["name"])})
    return out


async def get_configuration_names(store: Any, company: str, ids: Sequence[str], skip_empty: bool) -> list[dict]:
    """Tasks that are not found, or have no (non-empty, with ``skip_empty``) item, are left out."""
    docs = await store.find(TASKS, companies=[company, ""], where=In("id", tuple(ids)), fields=["id", "configuration"])
    out = []
    for d in sorted(docs, key=lambda d: list(ids).index(d["id"])):
        names = sorted(
            name for name, item in (d.get("configuration") or {}).items()
            if not skip_empty or (isinstance(item, dict) and item.get("value") not in (None, ""))
        )
        if names:
            out.append({"task": d["id"], "names": names})
    return out


async def edit_configuration(store: Any, caller: Identity, data: dict) -> int:
    items = {_require(i, "name", "configuration"): dict(i) for i in data["configuration"]}
    force, replace = bool(data.get("force")), bool(data.get("replace_configuration"))
    doc = await load_writable(store, caller.company, data["task"])

    def edit(d: dict) -> None:
        check_updatable(d, force)
        d["configuration"] = dict(items) if replace else {**(d.get("configuration") or {}), **items}
        stamp(d, caller.user, now_iso())

    await modify(store, doc, edit)
    return 1


async def delete_configuration(store: Any, caller: Identity, data: dict) -> int:
    names = set(data["configuration"])
    force = bool(data.get("force"))
    doc = await load_writable(store, caller.company, data["task"])

    def delete(d: dict) -> None:
        check_updatable(d, force)
        d["configuration"] = {k: v for k, v in (d.get("configuration") or {}).items() if k not in names}
        stamp(d, caller.user, now_iso())

    await modify(store, doc, delete)
    return 1


# --- artifacts, models, requirements ---------------------------------------------------------------


async def add_or_update_artifacts(store: Any, caller: Identity, data: dict) -> int:
    doc = await load_writable(store, caller.company, data["task"])

    def edit(d: dict) -> None:
        check_updatable(d, force=True)
        execution = d.setdefault("execution", {})
        execution["artifacts"] = merge_artifacts(execution.get("artifacts") or [], data["artifacts"])
        stamp(d, caller.user, now_iso())

    await modify(store, doc, edit)
    return 1


async def delete_artifacts(store: Any, caller: Identity, data: dict) -> int:
    gone = {artifact_key(a) for a in data["artifacts"]}
    doc = await load_writable(store, caller.company, data["task"])

    def delete(d: dict) -> None:
        check_updatable(d, force=True)
        execution = d.setdefault("execution", {})
        execution["artifacts"] = [a for a in execution.get("artifacts") or [] if artifact_key(a) not in gone]
        stamp(d, caller.user, now_iso())

    await modify(store, doc, delete)
    return 1


async def add_or_update_model(store: Any, caller: Identity, data: dict) -> int:
    doc = await load_writable(store, caller.company, data["task"])
    kind, iteration = data["type"], data.get("iteration")

    def edit(d: dict) -> None:
        check_updatable(d, force=True)
        now = now_iso()
        models = d.setdefault("models", {})
        item = {"name": data["name"], "model": data["model"], "updated": now}
        current = list(models.get(kind) or [])
        positions = [i for i, m in enumerate(current) if m.get("name") == data["name"]]
        if positions:
            current[positions[0]] = item
        else:
            current.append(item)
        models[kind] = current
        if iteration is not None:
            d["last_iteration"] = max(d.get("last_iteration", 0), iteration)
        stamp(d, caller.user, now)

    await modify(store, doc, edit)
    return 1


async def delete_models(store: Any, caller: Identity, data: dict) -> int:
    doc = await load_writable(store, caller.company, data["task"])
    gone = {(m["type"], m["name"]) for m in data["models"]}

    def delete(d: dict) -> None:
        check_updatable(d, force=True)
        models = d.get("models") or {}
        for kind in ("input", "output"):
            if kind in models:
                models[kind] = [m for m in models[kind] if (kind, m.get("name")) not in gone]
        stamp(d, caller.user, now_iso(), last_update=False)

    await modify(store, doc, delete)
    return 1


async def set_requirements(store: Any, caller: Identity, task_id: str, requirements: dict) -> dict:
    doc = await load_writable(store, caller.company, task_id)

    def edit(d: dict) -> None:
        if not d.get("script"):
            raise ApiError(E.MISSING_TASK_FIELDS, "Task has no script field", task=task_id)
        d["script"]["requirements"] = requirements
        stamp(d, caller.user, now_iso())

    await modify(store, doc, edit)
    return {"updated": 1, "fields": {"script.requirements": requirements}}
