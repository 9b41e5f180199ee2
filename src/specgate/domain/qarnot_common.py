"""What the Qarnot jobs and tasks share: the client's date and time-span formats, filter trees, listing
order, and compare-and-swap updates over the document store.

Dates are written the one way the official client parses them: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (six
fraction digits, a ``Z``; never an offset or a seven-digit .NET fraction). Fixed width, so they sort
like the instants they name. Time spans are ``[d.]hh:mm:ss``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Awaitable, Callable, Mapping, Sequence

from specgate._generated import errors as E
from specgate.adapters.ports import And, DocumentStore, Eq, Filter, In, Index, NotIn, Or, Range, Regex
from specgate.core.errors import ApiError

_RETRIES = 20
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


# --- dates and time spans --------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(timezone.utc)


def to_date(moment: datetime) -> str:
    """``2026-11-23T17:32:07.123456Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def to_timespan(seconds: float) -> str:
    """``[d.]hh:mm:ss`` for a non-negative duration (whole seconds)."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{text}" if days else text


def timespan_seconds(text: str | None) -> float | None:
    if not text:
        return None
    m = _TIMESPAN.match(text)
    if m is None:
        return None
    days, hours, minutes, secs, fraction = m.groups()
    if int(days or 0) > timedelta.max.days:  # more days than a timedelta holds: not a time span (was a 500)
        return None
    value = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(secs))
    return value.total_seconds() + (float("0." + fraction) if fraction else 0.0)


# --- listings --------------------------------------------------------------------------------------


def tag_filter(tags: Sequence[str] | None) -> Filter | None:
    """``?tag=a&tag=b,c``: documents carrying any of a, b, c."""
    wanted = tuple(dict.fromkeys(t.strip() for raw in (tags or ()) for t in raw.split(",") if t.strip()))
    return In("tags", wanted) if wanted else None


_LEAVES = {"Equal", "NotEqual", "LessThan", "LessThanOrEqual", "GreaterThan", "GreaterThanOrEqual", "Like", "In", "NotIn"}
MAX_FILTER_DEPTH = 10


def compile_filter(tree: Any, fields: Mapping[str, str], depth: int = 0) -> Filter:
    """A Qarnot filter tree as a store filter. ``fields`` maps the API's field names, compared without
    regard to case (``Tags``, ``tags``), to stored keys. A bad tree is the caller's error (400)."""

    def bad(message: str) -> ApiError:
        return ApiError(E.VALIDATION_ERROR, message, field="filter")

    if not isinstance(tree, dict):
        raise bad("a filter must be an object")
    if depth > MAX_FILTER_DEPTH:
        raise bad(f"filters nest at most {MAX_FILTER_DEPTH} levels")
    op = tree.get("operator")
    if op in ("And", "Or"):
        items = tree.get("filters")
        if not isinstance(items, list) or not items:
            raise bad(f"an {op} filter needs a non-empty list of filters")
        parts = tuple(compile_filter(item, fields, depth + 1) for item in items)
        return parts[0] if len(parts) == 1 else (And(parts) if op == "And" else Or(parts))
    if op not in _LEAVES:
        raise bad(f"unknown filter operator {op!r}")
    name = tree.get("field")
    key = {k.lower(): v for k, v in fields.items()}.get(str(name).lower()) if isinstance(name, str) else None
    if key is None:
        raise bad(f"cannot filter on field {name!r} (one of {', '.join(sorted(fields))})")
    value = tree.get("value")
    if op in ("In", "NotIn"):
        values = tuple(value) if isinstance(value, list) else (value,)
        return In(key, values) if op == "In" else NotIn(key, values)
    if isinstance(value, (list, dict)):
        raise bad(f"{op} compares with one value")
    if op == "Equal":
        return Eq(key, value)
    if op == "NotEqual":
        return NotIn(key, (value,))
    if op == "Like":
        if not isinstance(value, str):
            raise bad("Like takes a regular expression")
        try:
            re.compile(value)
        except re.error as e:
            raise bad(f"bad regular expression: {e}") from None
        return Regex(key, value)
    bound = {"LessThan": "lt", "LessThanOrEqual": "lte", "GreaterThan": "gt", "GreaterThanOrEqual": "gte"}[op]
    return Range(key, **{bound: value})


def both(*items: Filter | None) -> Filter | None:
    present = tuple(i for i in items if i is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else And(present)


def order_of(data: Mapping[str, Any], sortable: Mapping[str, str]) -> list[tuple[str, bool]]:
    """``orderBy`` / ``orderType`` of a page request; creation order by default."""
    by = str(data.get("orderBy") or "creationDate")
    key = {k.lower(): v for k, v in sortable.items()}.get(by.lower(), "creationDate")
    return [(key, str(data.get("orderType") or "ASC").upper() == "DESC")]


# --- storage --------------------------------------------------------------------------------------

_INDEXED: set[tuple[int, str]] = set()


async def ensure_indexes(store: DocumentStore, collection: str, indexes: Sequence[Index]) -> None:
    """Create a collection's indexes once per process and store (creation is idempotent anyway)."""
    key = (id(store), collection)
    if key not in _INDEXED:
        await store.ensure_indexes(collection, indexes)
        _INDEXED.add(key)


# --- compare-and-swap ------------------------------------------------------------------------------


async def mutate(
    store: DocumentStore,
    collection: str,
    company: str,
    id: str,
    change: Callable[[dict[str, Any]], Awaitable[bool] | bool],
) -> dict[str, Any] | None:
    """Read, change, compare-and-swap, retrying when another writer got there first.

    ``change`` edits the document in place and says whether it changed anything (it may raise an
    ApiError to refuse). Returns the stored document (unchanged when ``change`` said False), or None
    when the document does not exist (any more)."""
    for _ in range(_RETRIES):
        doc = await store.get(collection, id, companies=[company])
        if doc is None:
            return None
        new = dict(doc)
        changed = change(new)
        if not isinstance(changed, bool):
            changed = await changed
        if not changed:
            return doc
        rev = new.pop("rev")
        stored = await store.replace(collection, new, expected_rev=rev)
        if stored is not None:
            return stored
    raise ApiError(E.RESOURCE_CONFLICT, f"{collection} {id} keeps changing; try again")


def set_state(doc: dict[str, Any], state: str, moment: datetime) -> None:
    """A state change with the bookkeeping the client reads (previous state and both transition times)."""
    if doc.get("state") == state:
        return
    stamp = to_date(moment)
    if doc.get("state"):
        doc["previousState"] = doc["state"]
    if doc.get("stateTransitionTime"):
        doc["previousStateTransitionTime"] = doc["stateTransitionTime"]
    doc["state"] = state
    doc["stateTransitionTime"] = stamp
    doc["lastModified"] = stamp


def not_found(kind: str, id: str) -> ApiError:
    return ApiError(E.RESOURCE_NOT_FOUND, f"no {kind} {id}")


async def settle_shortname(store: DocumentStore, collection: str, what: str, company: str, doc: dict[str, Any]) -> None:
    """Two creates with one shortname may both pass the uniqueness check: the earlier stays, the later goes."""
    same = await store.find(
        collection, companies=[company], where=Eq("shortname", doc["shortname"]), order=[("creationDate", False)],
        fields=["id"],
    )  # fmt: skip
    if same and same[0]["id"] != doc["id"]:
        await store.delete(collection, doc["id"], companies=[company])
        raise ApiError(E.RESOURCE_CONFLICT, f"a {what} named {doc['shortname']!r} exists", field="shortname")
