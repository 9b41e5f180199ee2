"""The task status machine and the bookkeeping every status change writes (contract §5.2-§5.4).

Pure rules, no storage: which transitions are allowed, what ``fields`` object a status change reports,
and the task field vocabulary (system tags, exclude-by-default fields, the user-settable set).
"""

from __future__ import annotations

from typing import Any

from specgate._generated import errors as E
from specgate.core.errors import ApiError

CREATED, QUEUED, IN_PROGRESS, STOPPED = "created", "queued", "in_progress", "stopped"
PUBLISHED, PUBLISHING, CLOSED, FAILED, COMPLETED, UNKNOWN = (
    "published", "publishing", "closed", "failed", "completed", "unknown",
)
STATUSES = (CREATED, QUEUED, IN_PROGRESS, STOPPED, PUBLISHED, PUBLISHING, CLOSED, FAILED, COMPLETED, UNKNOWN)

# from-status -> statuses reachable without force (a change to the same status is always allowed)
TRANSITIONS: dict[str, frozenset[str]] = {
    CREATED: frozenset({QUEUED, IN_PROGRESS}),
    QUEUED: frozenset({CREATED, IN_PROGRESS, STOPPED}),
    IN_PROGRESS: frozenset({CREATED, STOPPED, FAILED, COMPLETED}),
    STOPPED: frozenset({CREATED, QUEUED, IN_PROGRESS, FAILED, COMPLETED, CLOSED, PUBLISHING, PUBLISHED}),
    FAILED: frozenset({CREATED, QUEUED, STOPPED, PUBLISHED}),
    COMPLETED: frozenset({CREATED, IN_PROGRESS, PUBLISHED}),
    CLOSED: frozenset({CREATED, STOPPED, FAILED, PUBLISHING, PUBLISHED}),
    PUBLISHING: frozenset({PUBLISHED}),
    PUBLISHED: frozenset(),
}

DEVELOPMENT, ARCHIVED, HIDDEN = "development", "archived", "hidden"
DELETED_PREFIX = "__DELETED__"
CONTROLLER = "controller"
STOPPING = "stopping"
PROPERTIES_SECTION = "properties"

EXCLUDED_BY_DEFAULT = ("unique_metrics", "company_origin", "enqueue_status")
"""Stored but returned only when a projection names them (contract §5.1, 'excl.')."""

INTERNAL = ("rev",)
"""Store bookkeeping that never reaches the wire."""

USER_SET_ALLOWED = frozenset(
    {"name", "comment", "status_message", "created", "project", "tags", "system_tags", "output.error"}
)
"""Fields whose edit moves only ``last_change``; anything else also moves ``last_update``."""


def check_transition(current: str, new: str, force: bool) -> None:
    """Raise 400/110 unless ``current -> new`` is allowed (``force`` skips the table entirely)."""
    if force or current == new:
        return
    allowed = TRANSITIONS.get(current)
    if allowed is None:
        raise ApiError(E.INTERNAL_ERROR, f"Current status {current} not supported by state machine")
    if new not in allowed:
        raise ApiError(E.INVALID_TASK_STATUS, "Invalid status change", current_status=current, new_status=new)


def status_fields(new_status: str, reason: str, message: str, user: str, now: str) -> dict[str, Any]:
    """The fields every status change writes, in the order ClearML reports them."""
    return {
        "status": new_status,
        "status_reason": reason,
        "status_message": message,
        "status_changed": now,
        "last_update": now,
        "last_change": now,
        "last_changed_by": user,
    }


def set_path(doc: dict, path: str, value: Any) -> None:
    """Set a dotted path (``"execution.queue"``), creating objects on the way; None removes the leaf."""
    head, _, rest = path.partition(".")
    if not rest:
        if value is None:
            doc.pop(head, None)
        else:
            doc[head] = value
        return
    node = doc.get(head)
    if not isinstance(node, dict):
        if value is None:
            return
        node = doc[head] = {}
    set_path(node, rest, value)  # an emptied sub-document stays, as ClearML's embedded documents do


def apply_fields(doc: dict, fields: dict[str, Any]) -> None:
    """Write a ``fields`` object (dotted keys allowed) into a task document."""
    for key, value in fields.items():
        set_path(doc, key, value)


def drop_tag(doc: dict, field: str, tag: str) -> bool:
    tags = doc.get(field) or []
    if tag not in tags:
        return False
    doc[field] = [t for t in tags if t != tag]
    return True


def add_tag(doc: dict, field: str, tag: str) -> bool:
    tags = list(doc.get(field) or [])
    if tag in tags:
        return False
    doc[field] = tags + [tag]
    return True
