"""The task status machine (contract §5.2): the table, same-status changes, force, unknown sources."""

from __future__ import annotations

import itertools

import pytest

from specgate._generated import errors as E
from specgate.core.errors import ApiError
from specgate.domain.task_states import STATUSES, apply_fields, check_transition, status_fields

# The contract's §5.2 table, written out independently of the implementation's own table.
ALLOWED = {
    "created": {"queued", "in_progress"},
    "queued": {"created", "in_progress", "stopped"},
    "in_progress": {"created", "stopped", "failed", "completed"},
    "stopped": {"created", "queued", "in_progress", "failed", "completed", "closed", "publishing", "published"},
    "failed": {"created", "queued", "stopped", "published"},
    "completed": {"created", "in_progress", "published"},
    "closed": {"created", "stopped", "failed", "publishing", "published"},
    "publishing": {"published"},
    "published": set(),
}
TARGETS = [s for s in STATUSES if s != "unknown"]


@pytest.mark.parametrize("current,new", list(itertools.product(ALLOWED, TARGETS)))
def test_transition_table_without_force(current: str, new: str) -> None:
    if new == current or new in ALLOWED[current]:
        check_transition(current, new, force=False)
    else:
        with pytest.raises(ApiError) as raised:
            check_transition(current, new, force=False)
        assert raised.value.code is E.INVALID_TASK_STATUS
        assert raised.value.message == (
            f"Invalid task status (Invalid status change): current_status={current}, new_status={new}"
        )


@pytest.mark.parametrize("status", STATUSES)
def test_same_status_is_always_allowed(status: str) -> None:
    check_transition(status, status, force=False)


@pytest.mark.parametrize("current,new", [("published", "created"), ("created", "stopped"), ("unknown", "created")])
def test_force_skips_the_table(current: str, new: str) -> None:
    check_transition(current, new, force=True)


def test_a_change_from_unknown_is_a_server_error() -> None:
    with pytest.raises(ApiError) as raised:
        check_transition("unknown", "created", force=False)
    assert raised.value.code.status == 500


def test_status_fields_carry_the_bookkeeping() -> None:
    fields = status_fields("stopped", "why", "msg", "user-1", "2024-01-02T03:04:05.000000+00:00")
    assert fields == {
        "status": "stopped",
        "status_reason": "why",
        "status_message": "msg",
        "status_changed": "2024-01-02T03:04:05.000000+00:00",
        "last_update": "2024-01-02T03:04:05.000000+00:00",
        "last_change": "2024-01-02T03:04:05.000000+00:00",
        "last_changed_by": "user-1",
    }


def test_apply_fields_sets_dotted_paths_and_removes_nulls() -> None:
    doc = {"execution": {"queue": "q1", "framework": "x"}, "enqueue_status": "created"}
    apply_fields(doc, {"execution.queue": None, "enqueue_status": None, "output.result": "success"})
    assert doc == {"execution": {"framework": "x"}, "output": {"result": "success"}}
