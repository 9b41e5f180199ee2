"""Projects (contract §7): names are paths ``a/b/c``, ancestors are projects too, over the document store.

A project document: ``{id, company, user, name (the full path), basename, description, tags,
system_tags, default_output_destination?, created, last_update, parent?, path (ancestor ids, root
first), company_origin? (public projects)}``; the store adds ``rev``. ``path`` and ``company_origin``
are left out of answers unless projected.

Name uniqueness per company is checked before writing and settled after it: when two creates of the
same name race, the earlier document (by ``created``, then ``id``) stays and the other is removed. A
unique ``(company, name)`` index, when the store has one, closes the remaining window; its
``DuplicateKey`` is mapped to the same 400/801.

Tasks (collection ``tasks``) and models (``models``) refer to their project by id in ``project``; an
archived one carries ``archived`` in ``system_tags``.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import (
    And,
    DocumentStore,
    DuplicateKey,
    Eq,
    Exists,
    Filter,
    In,
    NotIn,
    Or,
    Regex,
)
from specgate.core.clock import now_iso
from specgate.core.errors import ApiError

from .identity import Identity
from .queries import QuerySpec, build, encode_scroll, list_filter, pick

PROJECTS, TASKS, MODELS = "projects", "tasks", "models"
SEPARATOR = "/"
MAX_DEPTH = 10
MIN_BASENAME = 3
HIDDEN, ARCHIVED = "hidden", "archived"
EXCLUDED_BY_DEFAULT = frozenset({"path", "logo_blob", "company_origin", "rev"})
TASK_STATUSES = (
    "created", "queued", "in_progress", "stopped", "published", "publishing", "closed", "failed", "completed", "unknown",
)
UPDATABLE = ("name", "description", "tags", "system_tags", "default_output_destination")
SPEC = QuerySpec(
    pattern=("name", "basename", "description"),
    lists=("id", "tags", "system_tags", "parent", "path"),
    ranges=("last_update",),
)
_RETRIES = 20


# --- names ---------------------------------------------------------------------------------------


def split_name(name: str) -> list[str]:
    """The parts of a project name: split on ``/``, each stripped, empty ones dropped."""
    return [part for part in (p.strip() for p in name.split(SEPARATOR)) if part]


def normalize_name(name: str) -> str:
    """The canonical full name (``" a// b "`` → ``a/b``), or the catalogue error that rejects it.

    Nothing left → 400/407; deeper than ``MAX_DEPTH`` → 400/409; a part (the basename, or an
    ancestor that would be auto-created with it as its basename) shorter than ``MIN_BASENAME``
    characters → 400/12.
    """
    parts = split_name(name)
    if not parts:
        raise ApiError(E.INVALID_PROJECT_NAME, name=name)
    if len(parts) > MAX_DEPTH:
        raise ApiError(E.PROJECT_PATH_EXCEEDS_MAX_DEPTH, name=SEPARATOR.join(parts), max_depth=MAX_DEPTH)
    for part in parts:
        if len(part) < MIN_BASENAME:
            raise ApiError(
                E.VALIDATION_ERROR,
                f"project name parts need at least {MIN_BASENAME} characters",
                field="name",
                name=SEPARATOR.join(parts),
                part=part,
            )
    return SEPARATOR.join(parts)


def location_of(name: str) -> str:
    """The parent's full name of a normalized name (``""`` at the top level)."""
    return name.rpartition(SEPARATOR)[0]


def basename_of(name: str) -> str:
    return name.rpartition(SEPARATOR)[2]


# --- output --------------------------------------------------------------------------------------


def _drop(doc: dict, path: str) -> None:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def present(doc: dict, keep: Sequence[str] | None = None, drop: Iterable[str] = ()) -> dict:
    """A stored project as answers show it: projected (or without the exclude-by-default fields),
    tags sorted, never ``rev``."""
    if keep:
        out = pick(doc, keep)
        out.pop("rev", None)
    else:
        out = {k: copy.deepcopy(v) for k, v in doc.items() if k not in EXCLUDED_BY_DEFAULT}
    for path in drop:
        _drop(out, path)
    for name in ("tags", "system_tags"):
        if isinstance(out.get(name), list):
            out[name] = sorted(out[name], key=str)
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _both(items: Sequence[Filter]) -> Filter | None:
    items = [f for f in items if f is not None]
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))


# --- the service ---------------------------------------------------------------------------------


class Projects:
    def __init__(self, store: DocumentStore):
        self.store = store

    # reading

    async def get(self, company: str, project_id: str) -> dict:
        """A project the company may read (its own or public), or 400/401."""
        doc = await self.store.get(PROJECTS, project_id, companies=[company, ""])
        if doc is None:
            raise ApiError(E.INVALID_PROJECT_ID, id=project_id)
        return doc

    async def writable(self, company: str, project_id: str) -> dict:
        """A project of the company itself: 400/401 if unknown, 403/21 if public."""
        doc = await self.get(company, project_id)
        if doc["company"] != company:
            raise ApiError(E.MODIFICATION_NOT_ALLOWED, "cannot modify public project(s)", ids=[project_id])
        return doc

    async def by_name(self, companies: Sequence[str], name: str) -> list[dict]:
        return await self.store.find(
            PROJECTS, companies=companies, where=Eq("name", name), order=[("created", False), ("id", False)]
        )

    async def descendants(self, companies: Sequence[str], ids: Sequence[str], where: Filter | None = None,
                          fields: Sequence[str] | None = None) -> list[dict]:
        if not ids:
            return []
        return await self.store.find(
            PROJECTS, companies=companies, where=_both([In("path", tuple(ids)), where]), fields=fields
        )

    async def ids_with_children(self, company: str, ids: Sequence[str]) -> list[str]:
        found = await self.descendants([company, ""], ids, fields=["id"])
        return list(dict.fromkeys([*ids, *(d["id"] for d in found)]))

    # writing helpers

    async def _modify(self, collection: str, doc: dict, companies: Sequence[str],
                      change: Callable[[dict], bool]) -> dict | None:
        """Apply ``change`` with compare-and-swap, re-reading on a lost race. ``change`` returns False
        when the (fresh) document needs nothing; the result is then the document as read. None when
        the document vanished."""
        for _ in range(_RETRIES):
            new = copy.deepcopy(doc)
            if not change(new):
                return doc
            rev = new.pop("rev")
            stored = await self.store.replace(collection, new, expected_rev=rev)
            if stored is not None:
                return stored
            doc = await self.store.get(collection, doc["id"], companies=companies)
            if doc is None:
                return None
        raise ApiError(E.DATA_ERROR, f"too many concurrent changes to {collection} {doc['id']}, try again")

    async def _touch(self, company: str, project_id: str, now: str) -> None:
        doc = await self.store.get(PROJECTS, project_id, companies=[company])
        if doc is None:
            return

        def bump(d: dict) -> bool:
            if d.get("last_update", "") >= now:
                return False
            d["last_update"] = now
            return True

        await self._modify(PROJECTS, doc, [company], bump)

    async def _insert_settled(self, doc: dict) -> dict:
        """Insert a new project and settle a same-name race: the earliest document of that name in the
        company is returned; when it is not ``doc``, ``doc`` has been removed again.

        ``created`` is stamped right before the insert and strictly increases within the process, so
        "earliest" is the first one stored: a project that found itself alone is never displaced."""
        doc["created"] = doc["last_update"] = _stamp()
        try:
            await self.store.insert(PROJECTS, doc)
        except DuplicateKey:
            same = await self.by_name([doc["company"]], doc["name"])
            if same:
                return same[0]
            raise ApiError(E.EXPECTED_UNIQUE_DATA, "project id or name already in use", name=doc["name"]) from None
        same = await self.by_name([doc["company"]], doc["name"])
        winner = min(same, key=lambda d: (d["created"], d["id"])) if same else doc
        if winner["id"] != doc["id"]:
            await self.store.delete(PROJECTS, doc["id"], companies=[doc["company"]])
        return winner

    def _new(self, identity: Identity, name: str, parent: dict | None, **fields: Any) -> dict:
        """A new project document; ``created``/``last_update`` are stamped when it is inserted."""
        doc = {
            "id": _new_id(),
            "company": identity.company,
            "user": identity.user,
            "name": name,
            "basename": basename_of(name),
            "description": "",
            "tags": [],
            "system_tags": [],
            "path": [*parent.get("path", []), parent["id"]] if parent else [],
        }
        if parent:
            doc["parent"] = parent["id"]
        doc.update({k: v for k, v in fields.items() if v is not None})
        return doc

    async def _ensure(self, identity: Identity, name: str) -> dict | None:
        """The company's project called ``name`` (already normalized), created with its missing
        ancestors; None for the top level."""
        if not name:
            return None
        found = await self.by_name([identity.company, ""], name)
        own = [d for d in found if d["company"] == identity.company]
        if own:
            return own[0]
        if found:
            raise ApiError(E.EXPECTED_UNIQUE_DATA, "a public project with the same name exists", name=name)
        parent = await self._ensure(identity, location_of(name))
        doc = self._new(identity, name, parent)
        winner = await self._insert_settled(doc)
        if winner["id"] == doc["id"] and parent is not None:
            await self._touch(identity.company, parent["id"], doc["created"])
        return winner

    # actions

    async def create(self, identity: Identity, data: dict) -> str:
        name = normalize_name(data["name"])
        company = identity.company
        if await self.by_name([company, ""], name):
            raise ApiError(E.EXPECTED_UNIQUE_DATA, "project with the same name already exists", name=name, company=company)
        parent = await self._ensure(identity, location_of(name))
        doc = self._new(
            identity, name, parent,
            description=data.get("description", ""),
            tags=list(data.get("tags") or []),
            system_tags=list(data.get("system_tags") or []),
            default_output_destination=data.get("default_output_destination"),
        )
        winner = await self._insert_settled(doc)
        if winner["id"] != doc["id"]:
            raise ApiError(E.EXPECTED_UNIQUE_DATA, "project with the same name already exists", name=name, company=company)
        if parent is not None:
            await self._touch(company, parent["id"], doc["created"])
        return doc["id"]

    async def update(self, identity: Identity, project_id: str, data: dict) -> dict:
        company = identity.company
        doc = await self.writable(company, project_id)
        fields = {k: copy.deepcopy(data[k]) for k in UPDATABLE if k in data}
        if not fields.get("name"):
            fields.pop("name", None)
        old_name = doc["name"]
        new_name = None
        if "name" in fields:
            new_name = normalize_name(fields["name"])
            if location_of(new_name) != location_of(old_name):
                raise ApiError(E.CANNOT_UPDATE_PROJECT_LOCATION, name=new_name)
            fields["name"] = new_name
            if new_name != old_name and any(d["id"] != project_id for d in await self.by_name([company, ""], new_name)):
                raise ApiError(E.EXPECTED_UNIQUE_DATA, "project with the same name already exists", name=new_name, company=company)
        now = now_iso()

        def change(d: dict) -> bool:
            d.update(fields)
            if new_name is not None:
                d["basename"] = basename_of(new_name)
            d["last_update"] = now
            return True

        try:
            stored = await self._modify(PROJECTS, doc, [company], change)
        except DuplicateKey:
            raise ApiError(E.EXPECTED_UNIQUE_DATA, "project with the same name already exists", name=new_name, company=company) from None
        if stored is None:
            raise ApiError(E.INVALID_PROJECT_ID, id=project_id)
        if new_name is not None and new_name != old_name:
            await self._rename_descendants(company, project_id, new_name, now)
        for name in ("tags", "system_tags"):
            if isinstance(fields.get(name), list):
                fields[name] = sorted(fields[name], key=str)
        return {"updated": 1, "fields": fields}

    async def _rename_descendants(self, company: str, project_id: str, new_name: str, now: str) -> None:
        depth = len(new_name.split(SEPARATOR))
        for child in await self.descendants([company], [project_id]):
            def rename(d: dict) -> bool:
                parts = d["name"].split(SEPARATOR)
                wanted = SEPARATOR.join([new_name, *parts[depth:]])
                if wanted == d["name"]:
                    return False
                d["name"], d["last_update"] = wanted, now
                return True

            await self._modify(PROJECTS, child, [company], rename)

    async def delete(self, identity: Identity, project_id: str, *, force: bool, delete_contents: bool) -> dict:
        company = identity.company
        await self.writable(company, project_id)
        subtree = [project_id, *(d["id"] for d in await self.descendants([company], [project_id], fields=["id"]))]
        ids = tuple(subtree)
        in_projects = In("project", ids)
        if not force:
            active = And((in_projects, NotIn("system_tags", (ARCHIVED,))))
            for collection, code in ((TASKS, E.PROJECT_HAS_TASKS), (MODELS, E.PROJECT_HAS_MODELS)):
                if await self.store.count(collection, companies=[company], where=active):
                    raise ApiError(code, "use force=true to delete", id=project_id)
        result: dict[str, Any] = {"deleted": 0, "disassociated_tasks": 0, "deleted_models": 0, "deleted_tasks": 0}
        if delete_contents:
            result["deleted_models"], model_urls = await self._delete_models(company, ids)
            result["deleted_tasks"], artifact_urls = await self._delete_tasks(company, ids)
            result["urls"] = {"model_urls": model_urls, "event_urls": [], "artifact_urls": artifact_urls}
        else:
            result["disassociated_tasks"] = await self._detach(TASKS, company, ids)
            await self._detach(MODELS, company, ids)
        result["deleted"] = await self.store.delete_many(PROJECTS, companies=[company], where=In("id", ids))
        return result

    async def _detach(self, collection: str, company: str, ids: tuple[str, ...]) -> int:
        detached = 0

        def unlink(d: dict) -> bool:
            if d.get("project") not in ids:
                return False
            del d["project"]
            return True

        for item in await self.store.find(collection, companies=[company], where=In("project", ids)):
            before = item.get("rev")
            after = await self._modify(collection, item, [company], unlink)
            if after is not None and after.get("rev") != before:
                detached += 1
        return detached

    async def _delete_tasks(self, company: str, ids: tuple[str, ...]) -> tuple[int, list[str]]:
        tasks = await self.store.find(TASKS, companies=[company], where=In("project", ids), fields=["id", "execution"])
        if not tasks:
            return 0, []
        task_ids = tuple(t["id"] for t in tasks)
        urls: set[str] = set()
        for task in tasks:
            artifacts = (task.get("execution") or {}).get("artifacts") or {}
            for artifact in artifacts.values() if isinstance(artifacts, dict) else artifacts:
                if isinstance(artifact, dict) and artifact.get("mode", "output") == "output" and artifact.get("uri"):
                    urls.add(artifact["uri"])
        orphans = await self.store.find(
            TASKS, companies=[company], where=And((In("parent", task_ids), NotIn("project", ids)))
        )

        def orphan(d: dict) -> bool:
            if d.get("parent") not in task_ids:
                return False
            del d["parent"]
            return True

        for child in orphans:
            await self._modify(TASKS, child, [company], orphan)
        deleted = await self.store.delete_many(TASKS, companies=[company], where=In("id", task_ids))
        return deleted, sorted(urls)

    async def _delete_models(self, company: str, ids: tuple[str, ...]) -> tuple[int, list[str]]:
        models = await self.store.find(MODELS, companies=[company], where=In("project", ids), fields=["id", "uri"])
        if not models:
            return 0, []
        deleted = await self.store.delete_many(
            MODELS, companies=[company], where=In("id", tuple(m["id"] for m in models))
        )
        return deleted, sorted({m["uri"] for m in models if m.get("uri")})

    # get_all / get_all_ex

    async def get_all(self, company: str, data: dict, *, ex: bool = False) -> dict:
        data = dict(data)
        data.pop("path", None)  # a client-supplied path is discarded (§7)
        extra: list[Filter] = []
        if data.get("shallow_search"):
            if "parent" not in data:
                extra.append(Exists("parent", False))  # top level only
        elif "parent" in data:
            data["path"] = data.pop("parent")  # the id anywhere among the ancestors
        requested_ids = data.get("id")
        search_hidden = bool(data.get("search_hidden"))
        if not search_hidden and not requested_ids:
            extra.append(NotIn("system_tags", (HIDDEN,)))
        if isinstance(data.get("search_text"), str) and data["search_text"].strip():
            pattern = re.escape(data["search_text"].strip())
            extra.append(Or(tuple(Regex(f, pattern, ignore_case=True) for f in ("name", "id", "description"))))
        query = build(data, SPEC, extra)

        companies = [company, ""]
        if ex:
            allow_public = data["allow_public"] if "allow_public" in data else not data.get("non_public", False)
            if not allow_public:
                companies = [company]

        order = query.order
        if not data.get("order_by"):
            order = [("created", False), *order]  # insertion order, as ClearML shows in practice
        raw_fields = data.get("only_fields") or data.get("projection") or []
        drop = [p[1:] for p in raw_fields if isinstance(p, str) and p.startswith("-")]
        fields = query.fields
        mark_hidden = ex and search_hidden
        if fields is not None and mark_hidden and "system_tags" not in fields:
            fields = [*fields, "system_tags"]
        docs = await self.store.find(
            PROJECTS, companies=companies, where=query.where, order=order,
            skip=query.skip, limit=query.limit, fields=fields,
        )
        projects = []
        for doc in docs:
            out = present(doc, query.projection, drop)
            if mark_hidden and HIDDEN in (doc.get("system_tags") or []):
                out["hidden"] = True
            projects.append(out)
        result: dict[str, Any] = {"projects": projects}
        if query.scroll is not None:
            result["scroll_id"] = encode_scroll(query.skip + len(docs))
        if ex and projects:
            await self._add_ex_details(company, data, docs, projects)
        return result

    async def _add_ex_details(self, company: str, data: dict, docs: list[dict], projects: list[dict]) -> None:
        ids = [d["id"] for d in docs]
        if data.get("check_own_contents"):
            own = await self.own_contents(company, ids)
            for doc, out in zip(docs, projects):
                out.update(own.get(doc["id"], {"own_tasks": 0, "own_models": 0}))
        if data.get("include_stats"):
            state = data.get("stats_for_state")
            stats, children = await self.stats(
                company, ids,
                with_children=data.get("stats_with_children", True),
                search_hidden=bool(data.get("search_hidden")),
                states=(state,) if state in ("active", "archived") else ("active", "archived"),
            )
            for doc, out in zip(docs, projects):
                out["stats"] = stats[doc["id"]]
                out["sub_projects"] = children[doc["id"]]

    async def own_contents(self, company: str, ids: Sequence[str]) -> dict[str, dict]:
        counts: dict[str, dict] = {pid: {"own_tasks": 0, "own_models": 0} for pid in ids}
        for collection, key in ((TASKS, "own_tasks"), (MODELS, "own_models")):
            for item in await self.store.find(
                collection, companies=[company, ""], where=In("project", tuple(ids)), fields=["project"]
            ):
                counts[item["project"]][key] += 1
        return counts

    async def stats(self, company: str, ids: Sequence[str], *, with_children: bool = True, search_hidden: bool = False,
                    states: Sequence[str] = ("active",)) -> tuple[dict[str, dict], dict[str, list]]:
        """Per project: task counts by status, total run time (completed − started, whole seconds),
        tasks completed in the last 24 hours and the latest start, over the project and (by default)
        its descendants; plus the descendants as ``[{id, name}]`` sorted by name."""
        members: dict[str, set[str]] = {pid: {pid} for pid in ids}
        children: dict[str, list] = {pid: [] for pid in ids}
        if with_children:
            hidden = None if search_hidden else NotIn("system_tags", (HIDDEN,))
            for sub in await self.descendants([company, ""], ids, where=hidden, fields=["id", "name", "path"]):
                for pid in ids:
                    if pid in (sub.get("path") or []):
                        members[pid].add(sub["id"])
                        children[pid].append({"id": sub["id"], "name": sub["name"]})
            for pid in ids:
                children[pid].sort(key=lambda c: c["name"])
        all_ids = tuple({m for group in members.values() for m in group})
        tasks = await self.store.find(
            TASKS, companies=[company, ""], where=In("project", all_ids),
            fields=["project", "status", "system_tags", "started", "completed"],
        )
        recent = datetime.now(timezone.utc) - timedelta(hours=24)
        per_project: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for task in tasks:
            state = ARCHIVED if ARCHIVED in (task.get("system_tags") or []) else "active"
            per_project[task["project"]][state].append(task)

        def section(pid: str, state: str) -> dict:
            counts = dict.fromkeys(TASK_STATUSES, 0)
            runtime = recently = 0
            last_run: datetime | None = None
            for member in members[pid]:
                for task in per_project.get(member, {}).get(state, []):
                    status = task.get("status") or "unknown"
                    counts[status] = counts.get(status, 0) + 1
                    started, completed = _parse_time(task.get("started")), _parse_time(task.get("completed"))
                    if started and completed and completed > started:
                        runtime += int((completed - started).total_seconds())
                    if completed and completed > recent and status not in ("queued", "in_progress", "failed"):
                        recently += 1
                    if started and (last_run is None or started > last_run):
                        last_run = started
            out = {
                "status_count": counts,
                "total_tasks": sum(counts.values()),
                "total_runtime": runtime,
                "completed_tasks_24h": recently,
            }
            if last_run is not None:
                out["last_task_run"] = last_run.isoformat()
            return out

        return {pid: {state: section(pid, state) for state in states} for pid in ids}, children

    # public / private

    async def make_public(self, company: str, ids: Sequence[str]) -> int:
        return await self._move_company(ids, source=company, target="", origin=company)

    async def make_private(self, company: str, ids: Sequence[str]) -> int:
        return await self._move_company(ids, source="", target=company, origin=company)

    async def _move_company(self, ids: Sequence[str], *, source: str, target: str, origin: str) -> int:
        ids = tuple(dict.fromkeys(ids or ()))
        if not ids:
            return 0
        where: Filter = In("id", ids)
        if source == "":
            where = And((where, Eq("company_origin", origin)))
        docs = await self.store.find(PROJECTS, companies=[source], where=where)
        missing = sorted(set(ids) - {d["id"] for d in docs})
        if missing:
            raise ApiError(E.INVALID_PROJECT_ID, ids=missing)
        moved = 0
        for doc in docs:
            for _ in range(_RETRIES):
                # The port keeps a document's company fixed on replace, so the move is delete + insert,
                # guarded by the revision read.
                if await self.store.delete(PROJECTS, doc["id"], companies=[source], expected_rev=doc["rev"]):
                    new = {k: v for k, v in doc.items() if k != "rev"}
                    new["company"] = target
                    if target == "":
                        new["company_origin"] = origin
                    else:
                        new.pop("company_origin", None)
                    await self.store.insert(PROJECTS, new)
                    moved += 1
                    break
                doc = await self.store.get(PROJECTS, doc["id"], companies=[source])
                if doc is None:
                    break
        return moved

    # contents of projects: tags, metrics, hyper-parameters

    async def _project_filter(self, company: str, project_ids: Sequence[str] | None, include_subprojects: bool) -> Filter | None:
        if not project_ids:
            return None
        ids = await self.ids_with_children(company, project_ids) if include_subprojects else list(project_ids)
        return In("project", tuple(ids))

    async def entity_tags(self, company: str, collection: str, data: dict) -> dict:
        filters: list[Filter | None] = [await self._project_filter(company, data.get("projects"), True)]
        for name, values in (data.get("filter") or {}).items():
            if name in ("tags", "system_tags") and values:
                filters.append(list_filter(name, values))
        where = _both(filters)
        result = {"tags": await self._distinct_strings(collection, "tags", company, where)}
        if data.get("include_system"):
            result["system_tags"] = await self._distinct_strings(collection, "system_tags", company, where)
        return result

    async def _distinct_strings(self, collection: str, field: str, company: str, where: Filter | None) -> list[str]:
        values = await self.store.distinct(collection, field, companies=[company], where=where)
        return sorted(v for v in values if isinstance(v, str))

    async def unique_metric_variants(self, company: str, data: dict) -> list[dict]:
        project = data.get("project")
        filters = [
            await self._project_filter(company, [project] if project else None, data.get("include_subprojects", True)),
            Exists("last_metrics"),
        ]
        if data.get("ids"):
            filters.append(In("id", tuple(data["ids"])))
        collection = MODELS if data.get("model_metrics") else TASKS
        found: dict[tuple[str, str], dict] = {}
        for item in await self.store.find(collection, companies=[company, ""], where=_both(filters), fields=["last_metrics"]):
            metrics = item.get("last_metrics")
            if not isinstance(metrics, dict):
                continue
            for metric_hash, variants in metrics.items():
                if not isinstance(variants, dict):
                    continue
                for variant_hash, entry in variants.items():
                    if not isinstance(entry, dict):
                        continue
                    metric, variant = entry.get("metric", metric_hash), entry.get("variant", variant_hash)
                    found.setdefault(
                        (str(metric), str(variant)),
                        {"metric": metric, "metric_hash": metric_hash, "variant": variant, "variant_hash": variant_hash},
                    )
        return [found[key] for key in sorted(found)]

    async def hyper_parameters(self, company: str, data: dict) -> dict:
        project = data.get("project")
        where = _both([
            await self._project_filter(company, [project] if project else None, data.get("include_subprojects", True)),
            Exists("hyperparams"),
        ])
        pairs: set[tuple[str, str]] = set()
        for task in await self.store.find(TASKS, companies=[company, ""], where=where, fields=["hyperparams"]):
            sections = task.get("hyperparams")
            if not isinstance(sections, dict):
                continue
            for section, params in sections.items():
                if isinstance(params, dict):
                    pairs.update((section, name) for name in params)
        page = max(0, data.get("page") or 0)
        size = max(1, data.get("page_size") or 500)
        ordered = sorted(pairs)
        chunk = ordered[page * size:(page + 1) * size]
        return {
            "parameters": [{"section": s, "name": n} for s, n in chunk],
            "remaining": max(0, len(ordered) - (page * size + len(chunk))),
            "total": len(ordered),
        }


def _new_id() -> str:
    return uuid.uuid4().hex


_last_stamp = ""


def _stamp() -> str:
    """``now_iso()``, but strictly later than any stamp this process gave before."""
    global _last_stamp
    stamp = now_iso()
    if stamp <= _last_stamp:
        previous = datetime.fromisoformat(_last_stamp)
        stamp = (previous + timedelta(microseconds=1)).isoformat(timespec="microseconds")
    _last_stamp = stamp
    return stamp
