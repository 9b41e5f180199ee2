"""One fixture pair per rule: ``tests/diff/rules/<rule-id>[@variant]/{base,head}/*.conf`` + ``expected.json``.

``expected.json`` holds ``args`` (extra CLI flags; ``{dir}`` stands for the fixture's own directory, e.g. for
``--config {dir}/specgate.conf``), the ``exit`` code and *every* finding the diff must produce, compared as
an exact multiset on (rule, level, direction, endpoint, pins, location). With ``"ignore_info_docs": true``
info-level ``doc.*``/``lint.*`` findings are left out of the comparison. ``note`` says what the fixture
does. Directory names are a rule id, optionally ``@variant`` (another level of the same rule, or a
modifier such as ``--strict-versions``); ``no-findings@...`` fixtures pin down refactors that must stay
silent.

The trees are small synthetic services (``widgets``, ``gadgets``), unrelated to any real project's files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specgate_codegen.diff.model import LEVELS
from specgate_codegen.diff.rules import RULES

RULES_DIR = Path(__file__).parent / "rules"
FIELDS = ("rule", "level", "direction", "endpoint", "pins", "location")
NO_FINDINGS = "no-findings"

# Rules without a fixture directory, each with the reason it cannot be reached from a pair of spec trees.
# Every rule in RULES is reachable today (lint.duplicate-key too: the differ sees the raw text), so this
# stays empty; an entry here must say why, and test_no_fixture_entries_are_stale keeps it honest.
NO_FIXTURE: dict[str, str] = {}


def _cases() -> list[Path]:
    return sorted(p for p in RULES_DIR.iterdir() if p.is_dir() and (p / "expected.json").is_file())


CASES = _cases()


def _rule_of(case: Path) -> str:
    return case.name.split("@", 1)[0]


def _key(f: dict) -> str:
    return json.dumps({k: f.get(k) for k in FIELDS}, sort_keys=True)


def _is_info_doc(f: dict) -> bool:
    return f.get("level") == "info" and f.get("rule", "").startswith(("doc.", "lint."))


def _show(rows: list[str]) -> str:
    return "\n".join("    " + r for r in rows) or "    (none)"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_fixture(case: Path, diff_json) -> None:
    expected = json.loads((case / "expected.json").read_text())
    args = [a.replace("{dir}", str(case)) for a in expected.get("args", [])]
    code, report = diff_json(case / "base", case / "head", *args)
    assert report, f"no JSON report (exit {code}); the differ failed on {case.name}"
    got = report["findings"]
    want = expected["findings"]
    if expected.get("ignore_info_docs"):
        got = [f for f in got if not _is_info_doc(f)]
    got_keys, want_keys = sorted(map(_key, got)), sorted(map(_key, want))
    missing = [k for k in want_keys if k not in got_keys]
    unexpected = [k for k in got_keys if k not in want_keys]
    assert got_keys == want_keys, (
        f"{case.name}: {expected.get('note', '')}\n"
        f"  missing:\n{_show(missing)}\n  unexpected:\n{_show(unexpected)}"
    )
    assert code == expected["exit"], f"{case.name}: exit {code}, expected {expected['exit']}"


def test_every_rule_has_a_fixture() -> None:
    covered = {_rule_of(c) for c in CASES}
    missing = sorted(set(RULES) - covered - set(NO_FIXTURE))
    assert not missing, f"rules without a fixture directory under {RULES_DIR}: {missing}"


def test_no_fixture_entries_are_stale() -> None:
    covered = {_rule_of(c) for c in CASES}
    assert not set(NO_FIXTURE) - set(RULES), "NO_FIXTURE names unknown rules"
    assert not set(NO_FIXTURE) & covered, "NO_FIXTURE lists rules that do have a fixture"
    assert all(reason.strip() for reason in NO_FIXTURE.values())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fixture_is_well_formed(case: Path) -> None:
    """Names are rule ids, findings use known rules and levels, and the named rule is exercised."""
    expected = json.loads((case / "expected.json").read_text())
    rule = _rule_of(case)
    assert rule in RULES or rule == NO_FINDINGS, f"{case.name}: {rule} is no rule id"
    assert list((case / "base").glob("*.conf")) and list((case / "head").glob("*.conf"))
    for f in expected["findings"]:
        assert set(FIELDS) <= set(f), f
        assert f["rule"] in RULES, f
        assert f["level"] in LEVELS, f
        assert f["direction"] in ("request", "response", None), f
    assert isinstance(expected["exit"], int) and isinstance(expected.get("args", []), list)
    if rule == NO_FINDINGS:
        assert expected["findings"] == []
    elif expected["findings"]:
        assert rule in {f["rule"] for f in expected["findings"]}, f"{case.name} never reports {rule}"
    breaking = any(f["level"] == "breaking" for f in expected["findings"])
    if not expected.get("args"):
        assert expected["exit"] == (1 if breaking else 0), f"{case.name}: exit does not follow --fail-on breaking"
