"""Waivers: strict validation, structural matching, expiry and staleness, and stubs that must be edited."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from specgate.core.versions import parse_key
from specgate_codegen.diff import waivers
from specgate_codegen.diff.model import Finding
from specgate_codegen.diff.waivers import Waiver, WaiverError

TODAY = date(2026, 1, 15)
GOOD = {
    "id": "W-0012",
    "rule": "req.extra.closed",
    "endpoint": "reports.get_task_data",
    "versions": ">=2.25",
    "location": "/request/properties/*",
    "reason": "Typo fix makes the documented contract real; no client sends keys here.",
    "owner": "api-platform",
    "ticket": "API-431",
    "expires": "2026-03-31",
}


def finding(rule="req.extra.closed", endpoint="reports.get_task_data", pins=("2.25",), **kw) -> Finding:
    kw.setdefault("location", "/request/properties/m")
    return Finding(rule=rule, level="breaking", direction="request", endpoint=endpoint, pins=list(pins), **kw)


def waiver(**changes) -> Waiver:
    fields = {**GOOD, **changes}
    return waivers.parse([{k: v for k, v in fields.items() if v is not None}], today=TODAY, max_days=180)[0]


def write(tmp_path: Path, text: str, name: str = "waivers.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(**changes) -> list[str]:
    entry = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    with pytest.raises(WaiverError) as e:
        waivers.parse([entry], today=TODAY, max_days=180)
    return e.value.messages


def test_load_hocon_file(tmp_path):
    path = write(
        tmp_path,
        """waivers = [
  {
    id = "W-0012"
    rule = "req.*"
    endpoint = "reports.get_task_data"   # selectors are globs
    versions = ">=2.25"
    reason = "Typo fix makes the documented contract real; nobody sends keys here."
    owner = "api-platform"
    ticket = 431
    expires = 2026-03-31
  }
]
""",
    )
    [w] = waivers.load(path, today=TODAY, max_days=180)
    assert (w.id, w.rule, w.ticket, w.expires) == ("W-0012", "req.*", "431", date(2026, 3, 31))
    assert w.location is None and w.fingerprint is None


def test_load_plain_json(tmp_path):
    path = write(tmp_path, json.dumps({"waivers": [GOOD]}), "waivers.json")
    assert waivers.load(path, today=TODAY, max_days=180)[0].owner == "api-platform"


@pytest.mark.parametrize(
    "changes, needle",
    [
        ({"reason": None}, "reason is missing"),
        ({"reason": "   "}, "reason is missing"),
        ({"reason": "TODO: explain why this change is acceptable"}, "placeholder"),
        ({"reason": "tbd, will ask the UI team first"}, "placeholder"),
        ({"reason": "FIXME before release of 2.32"}, "placeholder"),
        ({"reason": "Reason"}, "placeholder"),
        ({"reason": "needed"}, "placeholder"),
        ({"owner": None}, "owner is missing"),
        ({"id": None}, "id is missing"),
        ({"expires": None}, "expires is missing"),
        ({"expires": "31/03/2026"}, "not a date"),
        ({"expires": "2026-12-31"}, "more than max_waiver_days = 180 days"),
        ({"rule": "req.extra.close"}, "matches no rule id"),
        ({"rule": None}, "needs a rule"),
        ({"fingerprint": "abc"}, "not of the form sg1:"),
        ({"versions": ">=2.x"}, "versions:"),
        ({"versions": "2.15-2.4"}, "is empty"),
        ({"endpiont": "x.y"}, "unknown key 'endpiont'"),
    ],
)
def test_invalid_entries(changes, needle):
    messages = problems(**changes)
    assert len(messages) == 1 and needle in messages[0], messages


def test_errors_name_file_and_waiver_and_are_collected(tmp_path):
    entries = [{**GOOD, "reason": "TODO"}, {**GOOD, "owner": ""}, "nope", {"reason": "x"}]
    path = write(tmp_path, json.dumps({"waivers": entries}))
    with pytest.raises(WaiverError) as e:
        waivers.load(path, today=TODAY, max_days=180)
    text = "\n".join(e.value.messages)
    assert f"{path}: waiver W-0012: reason 'TODO' is a placeholder" in text
    assert "waiver W-0012: owner is missing" in text and "waiver W-0012: duplicate id" in text
    assert "entry #3 is not an object" in text and "waiver #4: id is missing" in text


def test_file_problems(tmp_path):
    for text in ("other = []\n", "waivers = {}\n"):
        with pytest.raises(WaiverError, match="expected `waivers"):
            waivers.load(write(tmp_path, text), today=TODAY, max_days=180)
    with pytest.raises(WaiverError, match="cannot read"):
        waivers.load(write(tmp_path, "waivers = [ {\n"), today=TODAY, max_days=180)
    with pytest.raises(WaiverError, match="cannot read"):
        waivers.load(tmp_path / "absent.conf", today=TODAY, max_days=180)
    assert waivers.load(write(tmp_path, "waivers = []\n"), today=TODAY, max_days=180) == []


def test_expired_waiver_loads_but_does_not_match():
    old = waiver(expires="2026-01-14")
    f = finding()
    expired, stale = waivers.apply([f], [old], TODAY)
    assert f.waiver is None and f.counts and stale == []
    brief = {"rule": f.rule, "endpoint": f.endpoint, "pins": ["2.25"], "fingerprint": f.fingerprint}
    assert expired == [{**old.describe(), "findings": [brief]}]
    assert old.describe()["expires"] == "2026-01-14"


def test_waiver_valid_through_its_expiry_day():
    f = finding()
    waivers.apply([f], [waiver(expires="2026-01-15")], TODAY)
    assert f.waiver == {"id": "W-0012", "reason": GOOD["reason"], "owner": "api-platform", "expires": "2026-01-15"}
    assert not f.counts


@pytest.mark.parametrize(
    "selector, hit, miss",
    [
        ({"rule": "req.*"}, {}, {"rule": "resp.prop.added"}),
        ({"endpoint": "reports.*"}, {}, {"endpoint": "tasks.get_task_data"}),
        ({"location": "/request/properties/m"}, {}, {"location": "/request/properties/n"}),
        ({"versions": ">=2.25"}, {"pins": ("2.20", "2.25")}, {"pins": ("2.13", "2.24")}),
        ({"versions": "<=2.13"}, {"pins": ("2.4",)}, {"pins": ("2.14",)}),
        ({"versions": "2.13"}, {"pins": ("2.13",)}, {"pins": ("2.14",)}),
        ({"versions": "2.4-2.15"}, {"pins": ("2.15",)}, {"pins": ("2.16", "2.20")}),
        ({"versions": ">2.4"}, {"pins": ("2.5",)}, {"pins": ("2.4",)}),
    ],
)
def test_selectors(selector, hit, miss):
    w = waiver(**{"rule": "*", "endpoint": None, "versions": None, "location": None, **selector})
    assert w.matches(finding(**hit))
    assert not w.matches(finding(**miss))


def test_fingerprint_waiver_matches_one_finding():
    target, other = finding(), finding(location="/request/properties/other")
    w = waiver(rule=None, endpoint=None, versions=None, location=None, fingerprint=target.fingerprint)
    assert w.matches(target) and not w.matches(other)
    # selectors next to a fingerprint narrow it further
    assert not waiver(rule="resp.*", fingerprint=target.fingerprint).matches(target)


def test_apply_first_match_wins_and_stale_reported():
    a, b = waiver(id="W-1", rule="req.*"), waiver(id="W-2")
    unused = waiver(id="W-3", rule="resp.*")
    f = finding()
    expired, stale = waivers.apply([f], [a, b, unused], TODAY)
    assert f.waiver["id"] == "W-1"
    assert expired == [] and [s["id"] for s in stale] == ["W-2", "W-3"]
    selectors = {k: GOOD[k] for k in ("endpoint", "versions", "location")}
    assert stale[1] == {"id": "W-3", "owner": "api-platform", "expires": "2026-03-31", "rule": "resp.*", **selectors}


def test_stub_fails_until_edited_then_matches(tmp_path):
    f = finding(message="reports.get_task_data: request object now closed\n(extra keys rejected)")
    text = waivers.stubs([f, finding(endpoint="")], today=TODAY)
    assert 'reason = "TODO: explain why this change is acceptable"' in text
    assert 'expires = "2026-04-15"' in text and f'fingerprint = "{f.fingerprint}"' in text
    path = write(tmp_path, text)
    with pytest.raises(WaiverError) as e:
        waivers.load(path, today=TODAY, max_days=180)
    assert len(e.value.messages) == 4
    assert all("owner is missing" in m or "is a placeholder" in m for m in e.value.messages)
    text = text.replace(waivers.STUB_REASON, "Closing the object was the documented intent.")
    write(tmp_path, text.replace('owner = ""', 'owner = "api"'))
    loaded = waivers.load(path, today=TODAY, max_days=180)
    assert len(loaded) == 2 and loaded[0].matches(f) and not loaded[1].matches(f)
    assert loaded[0].id == "W-" + f.fingerprint[4:12]


@pytest.mark.parametrize(
    "text, inside, outside", [(">=2.25", "2.25", "2.24"), ("< 2.9", "2.8", "2.9"), ("2.4 - 2.15", "2.9", "2.16")]
)
def test_pin_filter(text, inside, outside):
    keep = waivers.pin_filter(text)
    assert keep(parse_key(inside)) and not keep(parse_key(outside))
