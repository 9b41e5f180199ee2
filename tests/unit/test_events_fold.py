"""How a batch of events folds into a task (domain/events.py), without a server."""

from __future__ import annotations

import hashlib

import pytest

from specgate.core.errors import ApiError
from specgate.domain import events as ev


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def scalar(iteration: int, value: float, timestamp: int, metric: str = "loss", variant: str = "train") -> dict:
    return {"type": ev.SCALAR, "task": "t", "metric": metric, "variant": variant, "iter": iteration,
            "value": value, "timestamp": timestamp}


def fold(events: list[dict], doc: dict | None = None, x_axis_label: str | None = None) -> dict:
    stats = ev._Stats()
    for event in events:
        stats.add(ev._stored(dict(event), "c", "w", "now"), x_axis_label)
    doc = doc if doc is not None else {"id": "t", "company": "c"}
    stats.apply(doc, with_metric_stats=True)
    return doc


def test_out_of_order_events_keep_the_latest_value_and_the_earliest_first_value() -> None:
    doc = fold([scalar(5, 2.0, 50), scalar(2, 9.0, 20), scalar(5, 1.0, 60), scalar(3, -1.0, 30)], x_axis_label="epoch")
    entry = doc["last_metrics"][md5("loss")][md5("train")]
    assert entry == {
        "metric": "loss", "variant": "train", "value": 1.0, "x_axis_label": "epoch",
        "first_value": 9.0, "first_value_iteration": 2,
        "min_value": -1.0, "min_value_iteration": 3, "max_value": 9.0, "max_value_iteration": 2,
        "count": 4, "mean_value": 2.75,
    }
    assert doc["last_iteration"] == 5 and doc["unique_metrics"] == ["loss/train"]
    assert doc["metric_stats"][md5("loss")] == {"metric": "loss", "event_stats_by_type": {ev.SCALAR: {"last_update": 60}}}


def test_a_later_batch_merges_with_what_the_task_holds() -> None:
    doc = fold([scalar(0, 4.0, 1), scalar(1, 2.0, 2)])
    doc["last_iteration"] = 10  # e.g. set by another writer: never lowered
    fold([scalar(2, 3.0, 3), scalar(3, 0.5, 4)], doc)
    entry = doc["last_metrics"][md5("loss")][md5("train")]
    assert (entry["value"], entry["first_value"], entry["first_value_iteration"]) == (0.5, 4.0, 0)
    assert (entry["min_value"], entry["min_value_iteration"], entry["max_value"], entry["max_value_iteration"]) == (0.5, 3, 4.0, 0)
    assert (entry["count"], entry["mean_value"]) == (4, 2.38)  # rounded to 2 places, as ClearML does
    assert doc["last_iteration"] == 10


def test_non_scalar_events_move_only_the_iteration_and_metric_stats() -> None:
    doc = fold([{"type": ev.LOG, "task": "t", "msg": "hi", "timestamp": 7, "iter": 4},
                {"type": "training_stats_vector", "task": "t", "metric": "hist", "values": [1, 2], "timestamp": 8}])
    assert "last_metrics" not in doc and doc["last_iteration"] == 4
    assert doc["metric_stats"][md5("")]["event_stats_by_type"] == {ev.LOG: {"last_update": 7}}
    assert doc["metric_stats"][md5("hist")]["event_stats_by_type"] == {"training_stats_vector": {"last_update": 8}}


def test_the_number_of_tracked_metrics_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "MAX_LAST_METRICS", 2)
    doc = fold([scalar(0, 1.0, 1, variant=v) for v in ("a", "b", "c")])
    assert doc["unique_metrics"] == ["loss/a", "loss/b"] and md5("c") not in doc["last_metrics"][md5("loss")]
    fold([scalar(1, 2.0, 2, variant="a")], doc)  # a known pair still updates
    assert doc["last_metrics"][md5("loss")][md5("a")]["value"] == 2.0


def test_stored_events_take_defaults_and_drop_unknown_keys() -> None:
    doc = ev._stored({"type": ev.LOG, "task": "t", "ts": 5, "msg": "m", "method": "get", "iter": 3}, "c", "host", "now")
    assert doc["timestamp"] == 5 and doc["worker"] == "host" and doc["metric"] == doc["variant"] == ""
    assert "method" not in doc and "ts" not in doc and doc["@timestamp"] == "now" and doc["company"] == "c"
    assert ev._stored({"type": ev.LOG, "task": "t", "worker": "own"}, "c", "host", "now")["worker"] == "own"


def test_event_ids_sort_in_creation_order() -> None:
    ids = [ev.event_id() for _ in range(2000)]
    assert ids == sorted(ids) and len(set(ids)) == 2000 and all(len(i) == 32 for i in ids)


def test_a_scroll_id_is_bound_to_its_task_and_direction() -> None:
    scroll = ev._make_scroll("t1", False, {"timestamp": 12, "id": "abc"})
    assert ev._read_scroll(scroll, "t1", False) == (12, "abc")
    assert ev._read_scroll(ev._make_scroll("t1", True, None), "t1", True) is None
    for task, descending, raw in (("t2", False, scroll), ("t1", True, scroll), ("t1", False, "%%%")):
        with pytest.raises(ApiError) as caught:
            ev._read_scroll(raw, task, descending)
        assert caught.value.code.subcode == 12


def test_inconsistent_allow_locked_or_model_event_settings_are_refused() -> None:
    with pytest.raises(ApiError, match="allow_locked"):
        ev._targets([{"task": "t"}, {"task": "t", "allow_locked": True}])
    with pytest.raises(ApiError, match="model_event"):
        ev._targets([{"task": "t"}, {"task": "t", "model_event": True}])
    tasks, models = ev._targets([{"task": "t", "allow_locked": True}, {"model_event": True, "model": "m"}])
    assert tasks == {"t": True} and models == {"m": False}
