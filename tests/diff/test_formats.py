"""Renderers: one report, four formats that agree, byte-stable whatever order the findings arrive in."""

from __future__ import annotations

import json
import random

import pytest

from specgate.core import canonical
from specgate_codegen.diff import formats
from specgate_codegen.diff.formats import github_outputs, pin_range, render
from specgate_codegen.diff.model import Finding, Report

WAIVER = {"id": "W-0012", "reason": "Typo fix; no client sends keys.", "owner": "api", "expires": "2026-03-31"}


def owner_removed(endpoint: str, pins: list[str], pointer: str) -> Finding:
    return Finding(
        "resp.prop.removed-optional", "dangerous", "response", endpoint, pins, pointer, {"type": "string"}, None,
        f"{endpoint}: response property 'owner' removed", root_cause="definitions/queue/owner",
        source={"file": "queues.conf", "line": 12},
    )


def findings() -> list[Finding]:
    return [
        Finding("doc.description-changed", "info", None, "queues.get_all", ["2.4"], "/description", "a", "b",
                "queues.get_all: description changed"),
        Finding("req.prop.added-optional", "safe", "request", "queues.create", ["2.31"],
                "/request/properties/display_name", None, {"type": "string"},
                "queues.create: new optional request property 'display_name'"),
        Finding("version.inserted", "safe", None, "queues.create", ["2.31"], "", "2.30", "2.31",
                "queues.create: new version 2.31"),
        owner_removed("queues.get_all", ["2.4", "2.13", "2.20"], "/response/properties/queues/items/properties/owner"),
        owner_removed("queues.get_by_id", ["2.4", "2.13"], "/response/properties/queue/properties/owner"),
        Finding("req.type.narrowed", "breaking", "request", "tasks.create", ["2.13", "2.14", "2.20"],
                "/request/properties/container/additionalProperties/type", ["string", "null"], "string",
                "tasks.create: values of 'container' no longer accept null", tags=["existing-version"],
                source={"file": "schema/tasks.conf", "line": 667}, hint="Keep the old type in existing versions."),
        Finding("req.extra.closed", "breaking", "request", "reports.get_task_data", ["2.25"],
                "/request/properties/metrics", None, False, "reports.get_task_data: request object now closed",
                waiver=dict(WAIVER)),
    ]


def report(items: list[Finding] | None = None, fail_on: str = "breaking", **kw) -> Report:
    base = {"ref": "lock:origin/main:specgate.lock.json", "released_max": "2.30"}
    return Report(base, {"ref": "schema"}, fail_on, findings() if items is None else items, **kw)


def test_pin_range():
    assert pin_range(["2.13", "2.14", "2.20"]) == "2.13–2.20"
    assert pin_range(["2.13", "2.15"]) == "2.13, 2.15"
    assert pin_range(["2.4"]) == "2.4" and pin_range([]) == ""


@pytest.mark.parametrize("fmt", formats.FORMATS)
def test_deterministic_whatever_the_input_order(fmt):
    shuffled = findings()
    random.Random(7).shuffle(shuffled)
    assert render(report(shuffled), fmt) == render(report(), fmt)


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown format 'sarif'"):
        render(report(), "sarif")


def test_json_is_canonical_and_sorted():
    out = render(report(), "json")
    data = json.loads(out)
    assert out == canonical.dumps(data, indent=2) + "\n"
    assert [f["rule"] for f in data["findings"]][:3] == ["req.extra.closed", "req.type.narrowed", "resp.prop.removed-optional"]
    assert data["summary"] == {"breaking": 1, "dangerous": 2, "safe": 2, "info": 1, "waived": 1}
    assert data["findings"][0]["waiver"] == WAIVER


def test_text_blocks():
    out = render(report(), "text")
    lines = out.splitlines()
    assert lines[0] == "specgate diff: 1 breaking, 2 dangerous, 2 safe, 1 info, 1 waived — fails at --fail-on breaking"
    assert [x for x in lines if x and not x.startswith(" ")][1:5] == ["BREAKING (2)", "DANGEROUS (2)", "SAFE (2)", "INFO (1)"]
    assert "    req.type.narrowed  [2.13–2.20]  /request/properties/container/additionalProperties/type" in lines
    assert '      ["string","null"] → "string"' in lines
    assert "      hint: Keep the old type in existing versions." in lines
    assert "      at schema/tasks.conf:667" in lines and "      tags: existing-version" in lines
    assert "      accepted by waiver W-0012: Typo fix; no client sends keys." in lines
    assert "    resp.prop.removed-optional  [2.4, 2.13]  /response/properties/queue/properties/owner" in lines
    assert lines.index("  reports.get_task_data") < lines.index("  tasks.create")
    assert "api-breaking-approved" in lines[-1] and "--emit-waivers" in lines[-1]
    assert "\x1b[" not in out


def test_text_colour_and_quiet():
    assert "\x1b[1;31mreq.type.narrowed\x1b[0m" in render(report(), "text", color=True)
    quiet = render(report(), "text", quiet=True)
    assert quiet.count("\n") == 1 and quiet.startswith("specgate diff: 1 breaking")


def test_no_label_line_when_breaking_does_not_fail():
    for r in (report(fail_on="none"), report(findings()[:5])):
        assert "api-breaking-approved" not in render(r, "text") + render(r, "markdown")
    assert render(report([]), "text") == "specgate diff: 0 breaking, 0 dangerous, 0 safe, 0 info, 0 waived — passes at --fail-on breaking\n"


def test_waiver_notes():
    r = report(expired_waivers=[{"id": "W-1", "expires": "2026-01-01", "findings": [{}]}], stale_waivers=[{"id": "W-2"}])
    text = render(r, "text")
    assert "expired waiver W-1 (expired 2026-01-01): 1 finding(s) count again" in text
    assert "stale waiver W-2: matches no finding; remove it" in text
    gh = render(r, "github").splitlines()
    assert "::warning title=specgate waiver expired::expired waiver W-1 (expired 2026-01-01): 1 finding(s) count again" in gh
    assert "### Waivers" in render(r, "markdown")


def test_markdown_sections():
    out = render(report(), "markdown")
    lines = out.splitlines()
    assert lines[0] == formats.MARKER
    headings = [x for x in lines if x.startswith("### ")]
    assert headings == ["### Breaking (2)", "### Dangerous (2)", "### New and changed (2)", "### Other (1)", "### Migration notes"]
    assert "#### tasks" in lines and "- **`tasks.create`**" in lines
    info = out[out.index("### Other"):out.index("### Migration notes")]
    assert "<details><summary>1 informational finding(s)</summary>" in info and "</details>" in info
    assert "api-breaking-approved" in lines[-1] and "--emit-waivers" in lines[-1]
    assert "\n\n\n" not in out


def test_markdown_root_cause_listed_once():
    out = render(report(), "markdown")
    assert out.count("**`definitions/queue/owner`**") == 1
    block = out[out.index("**`definitions/queue/owner`**"):out.index("</details>")]
    assert "2 affected endpoint(s)" in block
    assert "`queues.get_all` · `resp.prop.removed-optional` · 2.4–2.20" in block
    assert "`queues.get_by_id` · `resp.prop.removed-optional` · 2.4, 2.13" in block
    assert "#### queues\n\n- **`queues.get_by_id`**" not in out


def test_markdown_migration_notes():
    extra = [
        Finding("version.added-unreleased", "info", None, "queues.purge", ["999.0"], "", None, "999.0", "queues.purge: draft"),
        Finding("req.prop.removed-open", "info", "request", "queues.purge", ["999.0"], "/request/properties/force",
                message="queues.purge: request property 'force' removed", default_level="dangerous", tags=["unreleased"]),
    ]
    out = render(report(findings() + extra), "markdown")
    notes = out[out.index("### Migration notes"):]
    assert notes.index("#### 2.31") < notes.index("#### 999.0")
    assert "Clients moving their pin to 2.31 gain:\n\n- queues.create: new optional request property 'display_name'" in notes
    assert "Clients moving their pin to 999.0 must adapt to:\n\n- queues.purge: request property 'force' removed" in notes


def test_markdown_escapes_html_and_backticks():
    f = Finding("doc.other-changed", "safe", None, "a.b", ["2.1"], "/x`y", message="<script> & co")
    out = render(report([f]), "markdown")
    assert "&lt;script&gt; &amp; co" in out and "`` /x`y ``" in out


def test_github_annotations():
    lines = render(report(), "github").splitlines()
    assert lines == [
        "::error file=schema/tasks.conf,line=667,title=req.type.narrowed::"
        "tasks.create: values of 'container' no longer accept null [2.13–2.20]",
        "::warning file=queues.conf,line=12,title=resp.prop.removed-optional::queues.get_all: response property "
        "'owner' removed [2.4–2.20] (root cause definitions/queue/owner; also queues.get_by_id)",
        "::notice title=req.extra.closed::reports.get_task_data: request object now closed [2.25] — breaking, "
        "accepted by waiver W-0012: Typo fix; no client sends keys.",
        "::notice title=req.prop.added-optional::queues.create: new optional request property 'display_name' [2.31]",
        "::notice title=version.inserted::queues.create: new version 2.31 [2.31]",
    ]
    with_info = render(report(), "github", include_info=True).splitlines()
    assert with_info[-1] == "::notice title=doc.description-changed::queues.get_all: description changed [2.4]"


def test_github_label_and_endpoint_prefix():
    f = Finding("action.removed", "breaking", None, "tasks.delete", ["2.1"], message="action removed", tags=["waived-by-label"])
    assert render(report([f]), "github") == (
        "::notice title=action.removed::tasks.delete action removed [2.1] — breaking, accepted by label api-breaking-approved\n"
    )


def test_github_escaping():
    f = Finding("req.other-changed", "dangerous", "request", "a.b", [], message="50% of\r\nthings",
                source={"file": "dir,x/a:b.conf", "line": 3})
    assert render(report([f]), "github") == (
        "::warning file=dir%2Cx/a%3Ab.conf,line=3,title=req.other-changed::a.b 50%25 of things\n"
    )
    assert formats._escape_data("a%\r\nb") == "a%25%0D%0Ab"
    assert formats._escape_property("t: a, b%") == "t%3A a%2C b%25"


def test_github_outputs(tmp_path):
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    output.write_text("earlier=1\n")
    github_outputs(report(), env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)})
    assert summary.read_text() == render(report(), "markdown")
    assert output.read_text() == "earlier=1\nbreaking=1\ndangerous=2\nsafe=2\ninfo=1\nwaived=1\n"
    github_outputs(report(), env={})  # nothing to write to: no error
