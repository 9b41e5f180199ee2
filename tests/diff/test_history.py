"""Regression cases from ClearML server's schema history (schema-diff.md §4), replayed on small synthetic trees.

Each folder under ``history/`` holds a ``base`` and a ``head`` spec tree written for specgate (never copied
from ClearML) that reproduces the *kind* of change a ClearML commit made; the commit is named in each
fixture's first comment and in the test's docstring. Cases 18-24 are the fixture-only cases listed after
the table. Assertions stick to what the table fixes: rule, level, endpoint, pins, tags, root cause, exit.

Non-info findings are compared as an exact set of (rule, endpoint, level), so a wrong level, a missing
finding or a spurious one fails; info findings are checked for presence (and for absence where the table
says "no findings" or "only").
"""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

HISTORY = Path(__file__).parent / "history"
RANK = {"info": 0, "safe": 1, "dangerous": 2, "breaking": 3}

Finding = dict[str, Any]


# --- helpers -------------------------------------------------------------------------------------------


def run(diff_json, case: str, *flags: str, base: str = "base", head: str = "head") -> tuple[int, list[Finding], dict]:
    code, report = diff_json(HISTORY / case / base, HISTORY / case / head, *flags)
    assert report, f"{case}: no JSON report (exit {code})"
    return code, report["findings"], report


def of(findings: list[Finding], rule: str | None = None, endpoint: str | None = None, **match: Any) -> list[Finding]:
    return [
        f
        for f in findings
        if (rule is None or f["rule"] == rule)
        and (endpoint is None or f["endpoint"] == endpoint)
        and all(f.get(k) == v for k, v in match.items())
    ]


def one(findings: list[Finding], rule: str, endpoint: str | None = None, **match: Any) -> Finding:
    found = of(findings, rule, endpoint, **match)
    assert len(found) == 1, f"expected one {rule} {endpoint or ''} {match or ''}, got {_brief(found) or 'none'}; all: {_brief(findings)}"
    return found[0]


def non_info(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f["level"] != "info"]


def keyed(findings: list[Finding]) -> set[tuple[str, str, str]]:
    """(rule, endpoint, level) of every non-info finding."""
    return {(f["rule"], f["endpoint"], f["level"]) for f in non_info(findings)}


def _ver(pin: str) -> tuple[int, ...]:
    return tuple(int(x) for x in pin.split("."))


def pins(findings: list[Finding]) -> list[str]:
    """Union of the pins of some findings, ascending (a finding may be split per pin or grouped)."""
    return sorted({p for f in findings for p in f["pins"]}, key=_ver)


def locations(findings: list[Finding]) -> set[str]:
    return {f["location"] for f in findings}


def _brief(findings: list[Finding]) -> list[str]:
    return [f"{f['rule']}:{f['endpoint']}:{f['level']}:{','.join(f['pins'])}:{f['location']}" for f in findings]


def assert_keyed(findings: list[Finding], expected: set[tuple[str, str, str]], allowed: set = frozenset()) -> None:
    got = keyed(findings)
    missing, extra = expected - got, got - expected - set(allowed)
    assert not missing and not extra, f"missing {sorted(missing)}, unexpected {sorted(extra)}; all: {_brief(findings)}"


def assert_all_info(findings: list[Finding]) -> None:
    assert non_info(findings) == [], f"expected only info findings: {_brief(non_info(findings))}"


@contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging (recursive schemas hung or crashed several anchor tools)."""

    def expire(signum, frame):
        raise TimeoutError(f"diff did not finish within {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- 1. 9a181c0: action added under the draft key only ------------------------------------------------


def test_01_action_added_only_as_draft_is_info(diff_json):
    code, fs, _ = run(diff_json, "01_draft_action_added")
    assert code == 0
    assert_all_info(fs)
    added = one(fs, "action.added", "tasks.edit_runtime")
    assert added["level"] == "info"
    assert "unreleased" in added["tags"]
    assert added["pins"] == ["999.0"]
    assert {f["rule"] for f in fs} == {"action.added"}, _brief(fs)

    code, _, _ = run(diff_json, "01_draft_action_added", "--fail-on", "info")
    assert code == 1


# --- 2. 9997dcc / d2053d9: draft keys released as "2.31" ----------------------------------------------

CASE2_RENAMED = {"queues.add_task": "2.4", "queues.remove_task": "2.4", "tasks.enqueue": "2.30"}


def test_02_drafts_released_above_released_max_are_info(diff_json):
    code, fs, report = run(diff_json, "02_draft_released")
    assert code == 0
    assert report["base"].get("released_max") in (None, "2.30")
    assert_all_info(fs)
    released = of(fs, "version.released")
    assert sorted(f["endpoint"] for f in released) == sorted([*CASE2_RENAMED, "queues.clear_queue"])
    for f in released:
        assert f["level"] == "info"
        assert f["pins"] == ["2.31"]
        assert (f["old"], f["new"]) == ("999.0", "2.31")
    assert not of(fs, "version.inserted") and not of(fs, "action.added")


def test_02_same_rename_at_released_max_2_31_is_an_insertion(diff_json):
    code, fs, _ = run(diff_json, "02_draft_released", "--released-max", "2.31")
    assert code == 0
    expected = {("version.inserted", ep, "safe") for ep in CASE2_RENAMED} | {("action.added", "queues.clear_queue", "safe")}
    # the optional defaulted flag each insertion brings may also be listed on its own
    allowed = {("req.prop.added-optional", ep, "safe") for ep in CASE2_RENAMED}
    assert_keyed(fs, expected, allowed)
    for endpoint, before in CASE2_RENAMED.items():
        f = one(fs, "version.inserted", endpoint)
        assert f["pins"] == ["2.31"]
        assert (f["old"], f["new"]) == (before, "2.31")
        assert "existing-pin-reresolved" in f["tags"]
    assert one(fs, "action.added", "queues.clear_queue")["pins"] == ["2.31"]
    assert not of(fs, "version.released")


# --- 3. 893ba48: queue display_name ---------------------------------------------------------------------

CASE3 = {
    ("resp.prop.added", "queues.get_by_id"),
    ("resp.prop.added", "queues.get_all"),
    ("req.prop.added-optional", "queues.create"),
    ("version.inserted", "queues.create"),
}


def test_03_display_name_additions_are_safe(diff_json):
    code, fs, _ = run(diff_json, "03_queue_display_name")
    assert code == 0
    assert_keyed(fs, {(rule, ep, "safe") for rule, ep in CASE3})

    # (a) one root cause in the shared definition, projected into every response that reads it
    added = of(fs, "resp.prop.added")
    assert {f["root_cause"] for f in added} == {"definitions/queue/display_name"}
    assert pins(of(added, endpoint="queues.get_by_id")) == ["2.4"]
    assert pins(of(added, endpoint="queues.get_all")) == ["2.4", "2.15"]
    assert locations(of(added, endpoint="queues.get_by_id")) == {"/response/properties/queue/properties/display_name"}
    assert locations(of(added, endpoint="queues.get_all")) == {"/response/properties/queues/items/properties/display_name"}
    assert all(f["direction"] == "response" for f in added)

    # (b) the version-level `metadata` moved under request.properties of the existing key 2.13
    # (pin 2.31 also gains it by re-resolving from 2.13 to 2.31; that one may be listed separately)
    meta = of(fs, "req.prop.added-optional", "queues.create", location="/request/properties/metadata")
    assert pins(meta) in (["2.13"], ["2.13", "2.31"]), _brief(meta)
    at_213 = [f for f in meta if "2.13" in f["pins"]]
    assert len(at_213) == 1 and "existing-version" in at_213[0]["tags"]
    assert all(f["root_cause"] is None for f in meta)
    assert pins(of(fs, "req.prop.added-optional", "queues.create", location="/request/properties/display_name")) in ([], ["2.31"])

    # (c) new key at the released maximum: pins at 2.31 re-resolve from 2.13
    ins = one(fs, "version.inserted", "queues.create")
    assert ins["pins"] == ["2.31"]
    assert (ins["old"], ins["new"]) == ("2.13", "2.31")
    assert "existing-pin-reresolved" in ins["tags"]


def test_03_strict_versions_makes_every_released_change_breaking(diff_json):
    code, fs, _ = run(diff_json, "03_queue_display_name", "--strict-versions")
    assert code == 1
    assert_keyed(fs, {(rule, ep, "breaking") for rule, ep in CASE3})
    assert {f["default_level"] for f in of(fs, "resp.prop.added")} == {"safe"}


# --- 4. af09fba: metadata list -> map -------------------------------------------------------------------

CASE4 = {
    ("resp.type.changed", "queues.get_by_id", "breaking"),
    ("resp.type.changed", "queues.get_all", "breaking"),
    ("lint.version-no-op", "queues.create", "dangerous"),
    ("req.prop.added-optional", "queues.add_or_update_metadata", "safe"),
}


def test_04_definition_type_change_is_breaking(diff_json):
    code, fs, _ = run(diff_json, "04_metadata_list_to_map")
    assert code == 1
    # the no-op insertion itself may be listed; it re-resolves to an identical schema, so never above safe
    assert_keyed(fs, CASE4, allowed={("version.inserted", "queues.create", "safe")})

    changed = of(fs, "resp.type.changed")
    assert {f["root_cause"] for f in changed} == {"definitions/queue/metadata"}
    assert pins(of(changed, endpoint="queues.get_by_id")) == ["2.4"]
    assert pins(of(changed, endpoint="queues.get_all")) == ["2.4", "2.15"]
    assert locations(of(changed, endpoint="queues.get_by_id")) == {"/response/properties/queue/properties/metadata/type"}
    assert locations(of(changed, endpoint="queues.get_all")) == {"/response/properties/queues/items/properties/metadata/type"}
    assert all(f["direction"] == "response" for f in changed)

    noop = one(fs, "lint.version-no-op", "queues.create")
    assert noop["pins"] == ["2.13"]
    assert of(fs, "lint.stray-version-key", "queues.create"), _brief(fs)

    opt = one(fs, "req.prop.added-optional", "queues.add_or_update_metadata")
    assert opt["pins"] == ["2.13"]
    assert opt["location"] == "/request/properties/replace_metadata"
    assert "existing-version" in opt["tags"]


def test_04_waiver_accepts_the_type_change(diff_json, tmp_path):
    waivers = tmp_path / "waivers.conf"
    waivers.write_text(
        """
waivers = [
  {
    id = "W-0004"
    rule = "resp.type.changed"
    endpoint = "queues.*"
    versions = "<=2.16"
    reason = "The server still answers clients pinned at 2.16 or lower with a list; a per-pin response schema follows."
    owner = "api-platform"
    expires = "2026-04-30"
  }
]
"""
    )
    code, fs, report = run(diff_json, "04_metadata_list_to_map", "--waivers", str(waivers))
    assert code == 0
    changed = of(fs, "resp.type.changed")
    assert {f["endpoint"] for f in changed} == {"queues.get_by_id", "queues.get_all"}
    for f in changed:
        assert f["level"] == "breaking"  # still reported at its level, just not counted
        assert f["waiver"] and f["waiver"]["id"] == "W-0004"
    assert all(f["waiver"] is None for f in fs if f["rule"] != "resp.type.changed")
    assert report["summary"]["waived"] == len(changed)
    assert report["summary"]["breaking"] == 0
    assert report["stale_waivers"] == [] and report["expired_waivers"] == []


# --- 5. f4bf16c: the request/response asymmetry -----------------------------------------------------------

CASE5 = {
    "tasks.create": {("req.extra.narrowed", "breaking")},
    "tasks.get_by_id": {("resp.extra.narrowed", "safe")},
    "tasks.get_all": {("resp.extra.narrowed", "safe"), ("req.deps.removed", "safe")},
    "pipelines.start_pipeline": {("req.type.narrowed", "breaking")},
    "reports.get_task_data": {("req.extra.closed", "breaking")},
    "events.add": {("req.const.dropped", "safe")},
    "projects.get_task_parents": {("resp.prop.added", "safe")},
}


def test_05_exit_and_complete_finding_set(diff_json):
    code, fs, _ = run(diff_json, "05_swagger_fixes")
    assert code == 1
    assert_keyed(fs, {(rule, ep, level) for ep, rules in CASE5.items() for rule, level in rules})


@pytest.mark.parametrize("endpoint", sorted(CASE5))
def test_05_per_endpoint(diff_json, endpoint):
    _, fs, _ = run(diff_json, "05_swagger_fixes")
    mine = of(fs, endpoint=endpoint)
    assert {(f["rule"], f["level"]) for f in non_info(mine)} == CASE5[endpoint], _brief(mine)

    if endpoint == "tasks.create":
        f = one(mine, "req.extra.narrowed")
        assert f["pins"] == ["2.13"] and f["direction"] == "request"
        assert f["location"] == "/request/properties/container/additionalProperties/type"
        assert f["root_cause"] is None
        # the misspelled `descritpion` was ignored before; now it is a description
        doc = one(mine, "doc.description-added")
        assert doc["location"] == "/request/properties/name/description"
    elif endpoint in ("tasks.get_by_id", "tasks.get_all"):
        f = one(mine, "resp.extra.narrowed")
        assert f["direction"] == "response" and f["pins"] == ["2.1"]
        assert (f["root_cause"] or "").startswith("definitions/task/container"), f["root_cause"]
        prefix = "/response/properties/task" if endpoint == "tasks.get_by_id" else "/response/properties/tasks/items"
        assert f["location"] == prefix + "/properties/container/additionalProperties/type"
        if endpoint == "tasks.get_all":
            deps = one(mine, "req.deps.removed")
            assert deps["pins"] == ["2.1"] and deps["direction"] == "request"
    elif endpoint == "pipelines.start_pipeline":
        f = one(mine, "req.type.narrowed")
        assert f["pins"] == ["2.17"]
        assert f["location"] == "/request/properties/args/items/properties/value/type"
        assert sorted(f["old"]) == ["null", "string"] and f["new"] in ("string", ["string"])
    elif endpoint == "reports.get_task_data":
        f = one(mine, "req.extra.closed")
        assert f["pins"] == ["2.25", "2.26"]
        assert f["location"] == "/request/properties/scalar_metrics/additionalProperties"
    elif endpoint == "events.add":
        dropped = of(mine, "req.const.dropped")
        assert pins(dropped) == ["2.1"]
        assert {loc.rsplit("/", 1)[-1] for loc in locations(dropped)} == {"const"}
        assert len(locations(dropped)) == 2  # one per anyOf branch
    elif endpoint == "projects.get_task_parents":
        added = of(mine, "resp.prop.added")
        base = "/response/properties/parents/items/properties/project/properties/"
        assert locations(added) == {base + "id", base + "name"}


# --- 6. 74200a2 + 6664c62: an unreleased key reworked ------------------------------------------------------


def test_06_new_key_above_released_max_is_info(diff_json):
    code, fs, _ = run(diff_json, "06_unreleased_rework", head="mid")
    assert code == 0
    assert_all_info(fs)
    f = one(fs, "version.added-unreleased", "projects.get_all_ex")
    assert f["pins"] == ["2.24"]


def test_06_rework_on_unreleased_pin_is_info(diff_json):
    code, fs, _ = run(diff_json, "06_unreleased_rework", "--released-max", "2.23", base="mid")
    assert code == 0
    assert_all_info(fs)
    for rule, name in (("req.prop.removed-open", "children_condition"), ("req.prop.added-optional", "children_type")):
        f = one(fs, rule, "projects.get_all_ex")
        assert f["pins"] == ["2.24"]
        assert f["location"] == f"/request/properties/{name}"
        assert "unreleased" in f["tags"]


@pytest.mark.parametrize("flags", [("--released-max", "2.24"), ()], ids=["released-max-2.24", "default-from-base"])
def test_06_misconfigured_released_max_sees_a_released_change(diff_json, flags):
    # the mid tree's highest key is 2.24, so the default released maximum is 2.24 as well
    code, fs, _ = run(diff_json, "06_unreleased_rework", *flags, base="mid")
    assert code == 0
    assert_keyed(
        fs,
        {
            ("req.prop.removed-open", "projects.get_all_ex", "dangerous"),
            ("req.prop.added-optional", "projects.get_all_ex", "safe"),
        },
    )
    assert one(fs, "req.prop.removed-open")["location"] == "/request/properties/children_condition"
    assert one(fs, "req.prop.added-optional")["location"] == "/request/properties/children_type"


def test_06_whole_range_shows_only_the_final_new_key(diff_json):
    code, fs, _ = run(diff_json, "06_unreleased_rework")
    assert code == 0
    assert_all_info(fs)
    # nothing about the intermediate children_condition; the tree's served maximum rising to 2.24 may be noted
    assert {f["rule"] for f in fs} - {"api.max-raised"} == {"version.added-unreleased"}, _brief(fs)
    assert one(fs, "version.added-unreleased", "projects.get_all_ex")["pins"] == ["2.24"]
    assert "children_condition" not in json.dumps(fs)


# --- 7. 60b9c8d: internal endpoint, nested property dropped and object opened --------------------------


def test_07_removed_from_open_object_is_dangerous_and_internal(diff_json):
    code, fs, _ = run(diff_json, "07_internal_filter_opened")
    assert code == 0
    assert_keyed(fs, {("req.prop.removed-open", "projects.get_all_ex", "dangerous")})
    f = one(fs, "req.prop.removed-open")
    assert f["pins"] == ["2.17"]
    assert f["location"] == "/request/properties/include_stats_filter/properties/system_tags"
    assert f["default_level"] == "dangerous"
    assert "internal" in f["tags"]
    doc = one(fs, "doc.description-changed", "projects.get_all_ex")
    assert doc["location"] == "/request/properties/include_stats_filter/description"
    assert doc["pins"] == ["2.17"]

    code, _, _ = run(diff_json, "07_internal_filter_opened", "--fail-on", "dangerous")
    assert code == 1


# --- 8. 5f21c3a: key inserted between two released keys ------------------------------------------------------


def test_08_inserted_key_and_rebased_successors(diff_json):
    code, fs, _ = run(diff_json, "08_version_inserted")
    assert code == 0
    assert_keyed(fs, {("version.inserted", "projects.get_all", "safe"), ("req.prop.added-optional", "projects.get_all", "safe")})

    ins = one(fs, "version.inserted")
    assert ins["pins"] == ["2.14"]
    assert (ins["old"], ins["new"]) == ("2.13", "2.14")
    assert "existing-pin-reresolved" in ins["tags"]

    added = of(fs, "req.prop.added-optional")
    assert locations(added) == {"/request/properties/search_hidden"}
    assert {"2.15", "2.17"} <= set(pins(added)) <= {"2.14", "2.15", "2.17"}
    for f in added:
        if "2.15" in f["pins"] or "2.17" in f["pins"]:
            assert "existing-version" in f["tags"], f

    rebased = of(fs, "version.rebased", "projects.get_all")
    assert rebased and "2.15" in pins(rebased)
    assert all(f["level"] == "info" for f in rebased)


def test_08_strict_versions(diff_json):
    code, fs, _ = run(diff_json, "08_version_inserted", "--strict-versions")
    assert code == 1
    assert_keyed(
        fs, {("version.inserted", "projects.get_all", "breaking"), ("req.prop.added-optional", "projects.get_all", "breaking")}
    )
    assert {"2.15", "2.17"} <= set(pins(of(fs, "req.prop.added-optional")))


# --- 9. c7cd949: definitions moved into an include, descriptions re-indented -----------------------------


def test_09_move_is_silent_and_hidden_changes_are_found(diff_json):
    code, fs, _ = run(diff_json, "09_definitions_moved")
    assert code == 0
    assert_keyed(
        fs,
        {
            ("req.prop.added-optional", "tasks.delete", "safe"),
            ("req.prop.added-optional", "tasks.reset", "safe"),
            ("resp.prop.added", "tasks.archive_many", "safe"),
        },
    )
    for endpoint in ("tasks.delete", "tasks.reset"):
        added = of(fs, "req.prop.added-optional", endpoint)
        assert pins(added) == ["2.13", "2.21"]
        assert locations(added) == {"/request/properties/delete_output_models"}
    moved = one(fs, "resp.prop.added", "tasks.archive_many")
    assert moved["pins"] == ["2.13"]
    assert moved["location"] == "/response/properties/succeeded/items/properties/archived"

    # the only info findings: the one real description change, in both responses reading `task`
    info = [f for f in fs if f["level"] == "info"]
    assert {f["rule"] for f in info} == {"doc.description-changed"}, _brief(info)
    assert locations(info) == {
        "/response/properties/task/properties/started/description",
        "/response/properties/tasks/items/properties/started/description",
    }


# --- 10. 17cd48d: duplicate property removed ------------------------------------------------------------------


def test_10_duplicate_key_removal_has_no_findings(diff_json):
    code, fs, _ = run(diff_json, "10_duplicate_property")
    assert code == 0
    assert fs == [], _brief(fs)


# --- 11. e3cc689: duplicates consolidated with a new description ------------------------------------------------


def test_11_only_description_changes_in_responses(diff_json):
    code, fs, _ = run(diff_json, "11_duplicate_consolidated")
    assert code == 0
    assert fs, "expected doc.description-changed findings"
    assert {(f["rule"], f["level"]) for f in fs} == {("doc.description-changed", "info")}, _brief(fs)
    assert {f["endpoint"] for f in fs} == {"projects.get_all", "projects.get_all_ex"}
    assert all(f["direction"] == "response" for f in fs)
    assert all((f["root_cause"] or "").startswith("definitions/project/last_update") for f in fs), _brief(fs)
    assert pins(of(fs, endpoint="projects.get_all")) == ["2.1", "2.21"]

    code, _, _ = run(diff_json, "11_duplicate_consolidated", "--fail-on", "info")
    assert code == 1


# --- 12. 639b3d5 / c2b29bb: docstrings only --------------------------------------------------------------------


def test_12_docstring_changes_are_info(diff_json):
    code, fs, _ = run(diff_json, "12_docstrings")
    assert code == 0
    assert_all_info(fs)
    assert {f["rule"] for f in fs} == {"doc.description-changed", "lint.deprecated-in-prose"}, _brief(fs)
    reworded = of(fs, "doc.description-changed", "tasks.get_all")
    assert pins(reworded) == ["2.1", "2.29"]
    assert locations(reworded) == {"/request/properties/status_changed/description"}
    assert one(fs, "doc.description-changed", "projects.get_all_ex")["location"] == "/request/properties/stats_for_state/description"
    prose = of(fs, "lint.deprecated-in-prose")
    assert {f["endpoint"] for f in prose} == {"projects.get_all_ex"}


# --- 13. 62d5779: counters moved into each project item ----------------------------------------------------------


def test_13_moved_response_fields(diff_json):
    code, fs, _ = run(diff_json, "13_counts_moved")
    assert code == 0
    assert_keyed(
        fs,
        {
            ("resp.prop.moved", "projects.get_all_ex", "dangerous"),
            ("resp.prop.added", "projects.get_all_ex", "safe"),
            ("resp.prop.added", "projects.get_all", "safe"),
            ("req.prop.added-optional", "projects.get_all", "safe"),
        },
    )
    moved = of(fs, "resp.prop.moved")
    assert all("internal" in f["tags"] for f in moved)
    assert pins(moved) == ["2.13", "2.17"]
    text = json.dumps(moved)
    assert "own_tasks" in text and "own_models" in text
    assert not [f for f in fs if f["rule"].startswith("resp.prop.removed")], "a move is one finding, not a removal"

    item = "/response/properties/projects/items/properties/"
    assert locations(of(fs, "resp.prop.added", "projects.get_all_ex")) == {item + "basename"}
    assert locations(of(fs, "resp.prop.added", "projects.get_all")) == {item + n for n in ("basename", "own_tasks", "own_models")}
    req = one(fs, "req.prop.added-optional", "projects.get_all")
    assert req["pins"] == ["2.1"] and req["location"] == "/request/properties/basename"

    code, _, _ = run(diff_json, "13_counts_moved", "--fail-on", "dangerous")
    assert code == 1


# --- 14. 3b0cc7c: server.info now requires authorization (internal service) ---------------------------------------


def test_14_auth_required_is_capped_on_internal_endpoints(diff_json):
    code, fs, _ = run(diff_json, "14_auth_required_internal")
    assert code == 0
    assert_keyed(fs, {("attr.auth-required", "server.info", "dangerous")})
    f = one(fs, "attr.auth-required", "server.info")
    assert f["default_level"] == "breaking"
    assert "internal" in f["tags"]
    assert f["pins"] == ["2.1", "2.8", "2.12"]
    assert f["location"] == "/attributes/authorize"


def test_14_include_internal_restores_breaking(diff_json):
    code, fs, _ = run(diff_json, "14_auth_required_internal", "--include-internal")
    assert code == 1
    assert_keyed(fs, {("attr.auth-required", "server.info", "breaking")})


# --- 15. ec14f32: authorize false -> null ------------------------------------------------------------------------------


def test_15_auth_false_to_null_is_info(diff_json):
    code, fs, _ = run(diff_json, "15_auth_optional")
    assert code == 0
    assert_all_info(fs)
    assert {f["rule"] for f in fs} == {"attr.auth-optional"}, _brief(fs)
    assert one(fs, "attr.auth-optional", "login.supported_modes")["pins"] == ["2.1", "2.26"]
    assert one(fs, "attr.auth-optional", "login.logout")["pins"] == ["2.13"]
    assert all(f["location"] == "/attributes/authorize" for f in fs)


# --- 16. 0ef018c: allow_roles written inside a version block -------------------------------------------------------------


def test_16_attribute_inside_version_is_a_load_error(diff_json):
    code, _ = diff_json(HISTORY / "16_version_level_roles" / "base", HISTORY / "16_version_level_roles" / "head")
    assert code == 3
    code, _ = diff_json(HISTORY / "16_version_level_roles" / "head", HISTORY / "16_version_level_roles" / "base")
    assert code == 3


# --- 17. 207b9e4: storage roles dropped; the release lock knows storage never shipped ----------------------------------------

STORAGE = ("storage.get_settings", "storage.set_settings", "storage.reset_settings")


@pytest.fixture
def release_lock(tmp_path) -> Path:
    from specgate_codegen.compiler import compile_tree

    _, artefacts = compile_tree(HISTORY / "17_storage_roles" / "release", tmp_path)
    lock = tmp_path / "specgate.release.lock.json"
    lock.write_bytes(dict(artefacts)["specgate.lock.json"])
    return lock


def test_17_without_release_lock_2_22_looks_released(diff_json):
    code, fs, _ = run(diff_json, "17_storage_roles", "--released-max", "2.30")
    assert code == 0
    assert_keyed(fs, {("attr.roles-widened", "storage.get_settings", "dangerous")})
    f = one(fs, "attr.roles-widened", "storage.get_settings")
    assert "security" in f["tags"]
    assert f["pins"] == ["2.22"]
    assert f["location"] == "/attributes/allow_roles"
    for endpoint in STORAGE[1:]:
        g = one(fs, "attr.roles-widened", endpoint)
        assert g["level"] == "info" and "unreleased" in g["tags"] and g["pins"] == ["2.31"]


@pytest.mark.parametrize("flags", [("--released-max", "2.30"), ()], ids=["with-released-max", "lock-only"])
def test_17_with_release_lock_everything_is_unreleased(diff_json, release_lock, flags):
    code, fs, _ = run(diff_json, "17_storage_roles", "--release-lock", str(release_lock), *flags)
    assert code == 0
    assert_all_info(fs)
    widened = of(fs, "attr.roles-widened")
    assert sorted(f["endpoint"] for f in widened) == sorted(STORAGE)
    assert all("unreleased" in f["tags"] for f in widened)
    assert not of(fs, endpoint="queues.get_by_id")


# --- fixture-only cases --------------------------------------------------------------------------------------------------------


def test_18_highest_key_removed(diff_json):
    code, fs, _ = run(diff_json, "18_highest_key_removed")
    assert code == 1
    f = one(fs, "version.removed", "tasks.get_stats")
    assert f["level"] == "breaking"
    assert f["pins"] == ["2.5"]
    assert {g["endpoint"] for g in fs} == {"tasks.get_stats"}, _brief(fs)
    assert set(pins(fs)) == {"2.5"}, "pins below the removed key are untouched"
    assert not of(fs, "api.max-lowered")
    # whatever else is listed for the fallen-back pins may not be milder than what was lost
    lost = of(fs, "resp.prop.removed-required")
    assert all(g["level"] == "breaking" for g in lost)


def test_19_lowest_key_removed(diff_json):
    code, fs, _ = run(diff_json, "19_lowest_key_removed")
    assert code == 1
    f = one(fs, "action.unavailable-for-pins", "tasks.get_stats")
    assert f["level"] == "breaking"
    assert f["pins"] == ["2.1"]
    assert set(pins(fs)) == {"2.1"}, "pin 2.5 keeps the same schema"
    assert {g["level"] for g in of(fs, "version.removed")} <= {"breaking"}


def test_20_api_max_lowered(diff_json):
    code, fs, _ = run(diff_json, "20_api_max_lowered")
    assert code == 1
    f = one(fs, "api.max-lowered")
    assert f["level"] == "breaking"
    assert "2.9" in json.dumps(f["old"]) and "2.5" in json.dumps(f["new"])
    assert one(fs, "version.removed", "tasks.get_stats")["pins"] == ["2.9"]
    assert not of(fs, "api.max-raised")


def test_21_recursive_definition_changed(diff_json):
    with time_limit(60):
        code, fs, _ = run(diff_json, "21_recursive_definition")
    assert code == 0
    assert_keyed(fs, {("resp.prop.added", "projects.get_tree", "safe"), ("req.prop.added-optional", "projects.set_tree", "safe")})
    assert len(non_info(fs)) == 2, f"reported once per use, not per recursion level: {_brief(fs)}"
    resp = one(fs, "resp.prop.added", "projects.get_tree")
    assert resp["location"] == "/response/properties/root/properties/size"
    assert resp["root_cause"] == "definitions/node/size"
    req = one(fs, "req.prop.added-optional", "projects.set_tree")
    assert req["location"] == "/request/properties/root/properties/size"
    assert req["root_cause"] == "definitions/node/size"


def test_21_recursive_definition_changed_reverse(diff_json):
    with time_limit(60):
        code, fs, _ = run(diff_json, "21_recursive_definition", base="head", head="base")
    assert code == 0
    assert_keyed(
        fs,
        {("resp.prop.removed-optional", "projects.get_tree", "dangerous"), ("req.prop.removed-open", "projects.set_tree", "dangerous")},
    )
    assert len(non_info(fs)) == 2, _brief(fs)


def test_22_inline_ref_refactor_has_no_findings(diff_json):
    code, fs, _ = run(diff_json, "22_inline_ref_refactor")
    assert code == 0
    assert fs == [], _brief(fs)


def test_23_rename_is_removal_plus_addition_with_a_hint(diff_json):
    code, fs, _ = run(diff_json, "23_property_renamed")
    assert code == 1
    assert_keyed(
        fs,
        {
            ("req.prop.removed-open", "tasks.update", "dangerous"),
            ("req.prop.removed-closed", "tasks.update", "breaking"),
            ("req.prop.added-optional", "tasks.update", "safe"),
        },
    )
    top = one(fs, "req.prop.removed-open")
    assert top["location"] == "/request/properties/name"
    nested = one(fs, "req.prop.removed-closed")
    assert nested["location"] == "/request/properties/display/properties/color"
    assert locations(of(fs, "req.prop.added-optional")) == {
        "/request/properties/title",
        "/request/properties/display/properties/colour",
    }
    # rename detection: the removal names the likely new name
    assert "title" in f"{top['hint']} {top['message']}", top
    assert "colour" in f"{nested['hint']} {nested['message']}", nested


def test_24_enum_value_added_in_shared_definition(diff_json):
    code, fs, _ = run(diff_json, "24_enum_both_directions")
    assert code == 0
    assert_keyed(fs, {("req.enum.value-added", "tasks.get_all", "safe"), ("resp.enum.value-added", "tasks.get_all", "dangerous")})
    req = one(fs, "req.enum.value-added")
    assert req["direction"] == "request"
    assert req["location"] == "/request/properties/status/items/enum"
    resp = one(fs, "resp.enum.value-added")
    assert resp["direction"] == "response"
    assert resp["location"] == "/response/properties/tasks/items/properties/status/enum"
    for f in (req, resp):
        assert f["pins"] == ["2.1"]
        assert (f["root_cause"] or "").startswith("definitions/task_status"), f["root_cause"]

    code, _, _ = run(diff_json, "24_enum_both_directions", "--fail-on", "dangerous")
    assert code == 1
